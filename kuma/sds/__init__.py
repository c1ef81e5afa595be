"""The SDS server (port 5677): mesh CA roots and dataplane identity certificates for Envoy.

See docs/mtls.md. `server` serves Envoy's v3 SecretDiscoveryService with grpclib, `identity`
decides what each dataplane gets and when it is renewed, `tls` is the server's own certificate.
"""

from kuma.sds.identity import (
    IDENTITY_CERT,
    MESH_CA,
    MtlsDisabledError,
    NoServicesError,
    ProxyIdentity,
    record_certificate,
)
from kuma.sds.server import SDS_STREAM_METHOD, SdsServer, SdsStream
from kuma.sds.tls import SdsServerTls, SdsTlsError, sds_hosts, sds_server_tls, server_ssl_context

__all__ = [
    "IDENTITY_CERT",
    "MESH_CA",
    "SDS_STREAM_METHOD",
    "MtlsDisabledError",
    "NoServicesError",
    "ProxyIdentity",
    "SdsServer",
    "SdsServerTls",
    "SdsStream",
    "SdsTlsError",
    "record_certificate",
    "sds_hosts",
    "sds_server_tls",
    "server_ssl_context",
]
