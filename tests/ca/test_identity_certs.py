"""Dataplane identity certificates: what a builtin CA issues, checked with cryptography."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

from kuma.ca import (
    CaError,
    dataplane_services,
    dp_cert_validity,
    enabled_backend,
    issue_workload_cert,
    new_root_ca,
)
from kuma.manager import ResourceManager
from kuma.model import registry as r

from .support import dataplane, mesh_yaml, open_manager

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2020, 10, 22, 12, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
async def manager(request: pytest.FixtureRequest) -> AsyncIterator[ResourceManager]:
    async with open_manager("memory", request) as m:
        await m.create(
            mesh_yaml(
                "demo",
                """
enabledBackend: ca-1
backends:
- name: ca-1
  type: builtin
  dpCert:
    rotation: {expiration: 1h}
- name: ca-2
  type: builtin
""",
            )
        )
        yield m


def uris(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


async def test_identity_certificate_properties(manager: ResourceManager) -> None:
    dp = dataplane("web-1", "demo", "web", "web-api", "web")
    await manager.create(dp)
    services = dataplane_services((await manager.get(r.DATAPLANE, "web-1", "demo")).spec)
    assert services == ["web", "web-api"]  # every distinct kuma.io/service, sorted

    mesh = await manager.get(r.MESH, "demo")
    backend = enabled_backend(mesh.spec)
    assert backend is not None
    assert backend.name == "ca-1"
    ca = manager.mesh_ca.ca_managers["builtin"]  # type: ignore[union-attr]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # the CA was made just now
    pair = await ca.generate_dataplane_cert("demo", backend, services, now=now)
    (root_pem,) = await ca.get_root_certs("demo", backend)

    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    root = x509.load_pem_x509_certificate(root_pem)
    assert cert.subject == x509.Name([])  # deliberately empty
    assert uris(cert) == ["spiffe://demo/web", "spiffe://demo/web-api"]
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical
    assert cert.not_valid_before_utc == now - dt.timedelta(seconds=10)
    assert cert.not_valid_after_utc == now + dt.timedelta(hours=1)  # dpCert.rotation.expiration
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.key_encipherment
    assert usage.key_agreement
    assert not usage.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]

    key = serialization.load_pem_private_key(pair.key_pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]

    # the chain verifies against the mesh CA (web PKI rules, at a time the cert is valid)
    cert.verify_directly_issued_by(root)
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(now + dt.timedelta(minutes=1))
        .build_client_verifier()
    )
    verified = verifier.verify(cert, [])
    assert [str(s.value) for s in verified.subjects] == uris(cert)


async def test_default_validity_is_24_hours(manager: ResourceManager) -> None:
    mesh = await manager.get(r.MESH, "demo")
    (_, ca2) = mesh.spec.mtls.backends
    assert dp_cert_validity(ca2) == dt.timedelta(hours=24)
    ca = manager.mesh_ca.ca_managers["builtin"]  # type: ignore[union-attr]
    await ca.ensure("demo", ca2)
    pair = await ca.generate_dataplane_cert("demo", ca2, ["web"], now=NOW)
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(hours=24)


async def test_gateway_services_are_in_the_identity(manager: ResourceManager) -> None:
    await manager.create(dataplane("gw", "demo", gateway="edge"))
    spec = (await manager.get(r.DATAPLANE, "gw", "demo")).spec
    assert dataplane_services(spec) == ["edge"]


async def test_issuing_without_the_ca_secrets_names_what_is_missing(
    manager: ResourceManager,
) -> None:
    mesh = await manager.get(r.MESH, "demo")
    (_, ca2) = mesh.spec.mtls.backends  # never enabled: no CA created
    ca = manager.mesh_ca.ca_managers["builtin"]  # type: ignore[union-attr]
    with pytest.raises(CaError) as e:
        await ca.generate_dataplane_cert("demo", ca2, ["web"])
    assert str(e.value) == (
        'failed to load CA key pair for Mesh "demo" and backend "ca-2": Resource not found: '
        'type="Secret" name="demo.ca-builtin-cert-ca-2" mesh="demo"'
    )


def test_each_issue_gets_a_new_key_and_serial() -> None:
    ca = new_root_ca("demo", now=NOW)
    one = issue_workload_cert(ca, "demo", ["web"], now=NOW)
    two = issue_workload_cert(ca, "demo", ["web"], now=NOW)
    assert one.key_pem != two.key_pem
    a = x509.load_pem_x509_certificate(one.cert_pem)
    b = x509.load_pem_x509_certificate(two.cert_pem)
    assert a.serial_number != b.serial_number
    with pytest.raises(ValueError):
        issue_workload_cert(ca, "demo", [], now=NOW)
