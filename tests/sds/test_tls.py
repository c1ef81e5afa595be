"""The SDS server's own certificate: generated (Kuma's kuma-sds cert) or loaded from files."""

from __future__ import annotations

import contextlib
import ssl
from pathlib import Path

import anyio
import anyio.abc
import pytest
import trustme
from anyio.streams.tls import TLSAttribute, TLSStream
from cryptography import x509
from cryptography.x509.oid import NameOID

from kuma.sds import SdsTlsError, sds_hosts, sds_server_tls

from .harness import client_ssl

pytestmark = pytest.mark.anyio


def test_hosts_follow_kumas_choice() -> None:
    assert sds_hosts("cp.internal") == ["cp.internal", "localhost"]
    assert sds_hosts("cp.internal", "grpcs://sds.example.com:5677") == [
        "sds.example.com",
        "localhost",
    ]
    assert sds_hosts("") == ["localhost"]


def test_a_generated_certificate_names_the_hosts() -> None:
    tls = sds_server_tls(hosts=sds_hosts("10.1.2.3"))
    assert tls.generated
    cert = x509.load_pem_x509_certificate(tls.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kuma-sds"
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.1.2.3"]
    # its own trust root: Envoy is handed it as root_certs
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(cert)


def test_configured_files_are_loaded_and_checked(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("sds.internal")
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(leaf.cert_chain_pems[0].bytes())
    key_file.write_bytes(leaf.private_key_pem.bytes())
    tls = sds_server_tls(str(cert_file), str(key_file))
    assert not tls.generated
    assert tls.cert_pem == leaf.cert_chain_pems[0].bytes()
    tls.ssl_context()  # usable by the ssl module

    other = ca.issue_cert("other")
    key_file.write_bytes(other.private_key_pem.bytes())
    with pytest.raises(SdsTlsError) as e:
        sds_server_tls(str(cert_file), str(key_file))
    assert str(e.value) == (
        "failed to load TLS certificate: tls: private key does not match public key"
    )
    with pytest.raises(SdsTlsError) as e:
        sds_server_tls(str(tmp_path / "missing.crt"), str(key_file))
    assert str(e.value) == (
        f"failed to load TLS certificate: open {tmp_path / 'missing.crt'}: "
        "no such file or directory"
    )
    with pytest.raises(SdsTlsError):
        sds_server_tls(str(cert_file), "")


async def test_the_context_offers_h2_and_only_its_certificate_is_trusted() -> None:
    tls = sds_server_tls(hosts=["127.0.0.1"])
    server_ctx = tls.ssl_context()

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            with contextlib.suppress(Exception):
                wrapped = await TLSStream.wrap(
                    stream, server_side=True, ssl_context=server_ctx, standard_compatible=False
                )
                await wrapped.receive()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        with anyio.fail_after(5):
            stream = await anyio.connect_tcp(
                "127.0.0.1",
                port,
                ssl_context=client_ssl(tls.cert_pem),
                tls_standard_compatible=False,
            )
            async with stream:
                assert stream.extra(TLSAttribute.alpn_protocol) == "h2"
                await stream.send(b"x")
            # a client trusting only the system roots refuses the self-signed certificate
            with pytest.raises(ssl.SSLCertVerificationError):
                await anyio.connect_tcp("127.0.0.1", port, ssl_context=ssl.create_default_context())
        tg.cancel_scope.cancel()
