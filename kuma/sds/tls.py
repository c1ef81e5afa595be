"""The SDS server's own TLS certificate (port 5677 is gRPC over TLS, always).

    server_tls = sds_server_tls(cfg.sds_server.tls_cert_file, cfg.sds_server.tls_key_file,
                                hosts=sds_hosts(xds_host, cfg.api_server.catalog.sds.url))
    await tg.start(partial(sds.run, sock=sock, ssl=server_tls.ssl_context()))
    server_tls.cert_pem   # what Envoy trusts for the SDS channel (inline root_certs)

With no `sdsServer.tlsCertFile`, a self-signed certificate (CN `kuma-sds`, valid 10 years, its
own trust root) is generated at every start, with SANs for the SDS host and `localhost`
(Envoy's Google gRPC client checks the server name against them; an IP address becomes an IP
SAN). Envoys get the new certificate inline with their next SDS config, so nothing is stored.
"""

from __future__ import annotations

import os
import ssl
import tempfile
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kuma.ca.datasource import go_os_error
from kuma.ca.pki import InvalidKeyPairError, KeyPair, load_key_pair, new_self_signed_cert

__all__ = [
    "SDS_COMMON_NAME",
    "SdsServerTls",
    "SdsTlsError",
    "sds_hosts",
    "sds_server_tls",
    "server_ssl_context",
]

SDS_COMMON_NAME = "kuma-sds"


class SdsTlsError(Exception):
    """The configured SDS certificate or key cannot be used (the message says why)."""


@dataclass(frozen=True, slots=True)
class SdsServerTls:
    """The SDS server's certificate and key, loaded or generated."""

    pair: KeyPair
    generated: bool
    """True when generated at start (no `sdsServer.tlsCertFile`)."""

    @property
    def cert_pem(self) -> bytes:
        """The server certificate (PEM): Envoy's trusted root for the SDS channel."""
        return self.pair.cert_pem

    def ssl_context(self) -> ssl.SSLContext:
        """A server SSLContext offering ALPN `h2` (what grpclib and Envoy need)."""
        return server_ssl_context(self.pair)


def sds_hosts(xds_host: str, sds_url: str = "") -> list[str]:
    """Kuma's SANs for a generated SDS certificate: the host of `apiServer.catalog.sds.url`
    when set, else the xDS host handed to dataplanes; then `localhost`."""
    host = ""
    if sds_url:
        parsed = urllib.parse.urlsplit(sds_url if "//" in sds_url else f"//{sds_url}")
        host = parsed.hostname or ""
    host = host or xds_host
    return [h for h in (host, "localhost") if h]


def sds_server_tls(
    cert_file: str = "", key_file: str = "", *, hosts: Sequence[str] = ("localhost",)
) -> SdsServerTls:
    """Load `cert_file` + `key_file`, or generate a self-signed certificate for `hosts` when
    `cert_file` is empty. Raises SdsTlsError for unreadable or mismatched files."""
    if not cert_file:
        if key_file:
            raise SdsTlsError("sdsServer.tlsKeyFile is set without sdsServer.tlsCertFile")
        pair = new_self_signed_cert(SDS_COMMON_NAME, "server", list(hosts))
        return SdsServerTls(pair, generated=True)
    if not key_file:
        raise SdsTlsError("sdsServer.tlsCertFile is set without sdsServer.tlsKeyFile")
    parts = []
    for path in (cert_file, key_file):
        try:
            parts.append(Path(path).read_bytes())
        except OSError as e:
            raise SdsTlsError(
                f"failed to load TLS certificate: {go_os_error('open', path, e)}"
            ) from None
    pair = KeyPair(parts[0], parts[1])
    try:
        load_key_pair(pair)
    except InvalidKeyPairError as e:
        raise SdsTlsError(f"failed to load TLS certificate: {e}") from None
    return SdsServerTls(pair, generated=False)


def server_ssl_context(pair: KeyPair) -> ssl.SSLContext:
    """A TLS 1.2+ server context for `pair` with ALPN `h2`."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["h2"])
    # ssl loads certificates from files only: a private directory, removed at once
    with tempfile.TemporaryDirectory(prefix="kuma-sds-") as tmp:
        cert_path = os.path.join(tmp, "tls.crt")
        key_path = os.path.join(tmp, "tls.key")
        for path, data in ((cert_path, pair.cert_pem), (key_path, pair.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)
    return ctx
