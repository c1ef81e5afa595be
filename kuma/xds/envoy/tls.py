"""mTLS pieces (Kuma's `pkg/xds/envoy/tls.go` and `tls/sni.go`, in Envoy's v3 API).

Both sides of a mesh connection present the dataplane's identity certificate (`identity_cert`)
and check the peer against the mesh CA (`mesh_ca`); Envoy fetches both over SDS from the control
plane, through a Google gRPC channel secured with TLS (it trusts the SDS server's certificate,
given inline) and authenticated with the dataplane token, read by Envoy from its file and sent
as the `authorization` header.

* server side (inbound): a client certificate is required; its URI SAN must start with
  `spiffe://<mesh>/` (any service of the mesh; TrafficPermission narrows it down with RBAC);
* client side (outbound): the server's URI SAN must be exactly `spiffe://<mesh>/<service>`,
  and the SNI names the destination Kuma-style: `<service>{mesh=<mesh>,<tag>=<value>...}`.
"""

from __future__ import annotations

from collections.abc import Mapping

from envoy.config.core.v3 import base_pb2, config_source_pb2, grpc_service_pb2
from envoy.config.grpc_credential.v3 import file_based_metadata_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2, tls_pb2
from google.protobuf import any_pb2

from kuma.model.selectors import SERVICE_TAG
from kuma.xds.envoy.common import pack
from kuma.xds.names import sanitize_metric

__all__ = [
    "FILE_BASED_METADATA",
    "IDENTITY_CERT",
    "MESH_CA",
    "TLS_TRANSPORT_SOCKET",
    "SdsLocation",
    "downstream_tls_context",
    "mesh_spiffe_prefix",
    "service_spiffe_id",
    "sni_from_tags",
    "tags_from_sni",
    "tls_transport_socket",
    "upstream_tls_context",
]

MESH_CA = "mesh_ca"
"""SDS secret: the mesh CA certificate(s), a validation context."""
IDENTITY_CERT = "identity_cert"
"""SDS secret: the dataplane's own certificate and key."""
TLS_TRANSPORT_SOCKET = "envoy.transport_sockets.tls"
FILE_BASED_METADATA = "envoy.grpc_credentials.file_based_metadata"
AUTHORIZATION_HEADER = "authorization"


def mesh_spiffe_prefix(mesh: str) -> str:
    return f"spiffe://{mesh}/"


def service_spiffe_id(mesh: str, service: str) -> str:
    return f"spiffe://{mesh}/{service}"


def sni_from_tags(tags: Mapping[str, str]) -> str:
    """`<service>{k1=v1,k2=v2}` (other tags sorted by key), or just `<service>` without any."""
    service = tags.get(SERVICE_TAG, "")
    extra = ",".join(f"{k}={tags[k]}" for k in sorted(tags) if k != SERVICE_TAG)
    return f"{service}{{{extra}}}" if extra else service


def tags_from_sni(sni: str) -> dict[str, str]:
    """The inverse of `sni_from_tags`."""
    if not sni.endswith("}") or "{" not in sni:
        return {SERVICE_TAG: sni}
    service, _, rest = sni[:-1].partition("{")
    tags = {SERVICE_TAG: service}
    for pair in rest.split(","):
        key, _, value = pair.partition("=")
        tags[key] = value
    return tags


class SdsLocation:
    """Where and how Envoy fetches `mesh_ca` and `identity_cert`; builds SdsSecretConfigs."""

    __slots__ = ("ca_pem", "target", "token_path")

    def __init__(self, target: str, ca_pem: bytes, token_path: str = "") -> None:
        self.target = target
        self.ca_pem = ca_pem
        self.token_path = token_path

    def secret_config(self, name: str) -> secret_pb2.SdsSecretConfig:
        google = grpc_service_pb2.GrpcService.GoogleGrpc(
            target_uri=self.target, stat_prefix=sanitize_metric(f"sds_{name}")
        )
        google.channel_credentials.ssl_credentials.root_certs.inline_bytes = self.ca_pem
        if self.token_path:
            metadata = file_based_metadata_pb2.FileBasedMetadataConfig(
                header_key=AUTHORIZATION_HEADER
            )
            metadata.secret_data.filename = self.token_path
            plugin = google.call_credentials.add().from_plugin
            plugin.name = FILE_BASED_METADATA
            plugin.typed_config.Pack(metadata)
            # without the factory name Envoy ignores the plugin's call credentials
            google.credentials_factory_name = FILE_BASED_METADATA
        sds = secret_pb2.SdsSecretConfig(name=name)
        source = sds.sds_config
        source.resource_api_version = config_source_pb2.V3
        api = source.api_config_source
        api.api_type = config_source_pb2.ApiConfigSource.GRPC
        api.transport_api_version = config_source_pb2.V3
        api.grpc_services.add().google_grpc.CopyFrom(google)
        return sds

    def common_tls_context(self, san: common_pb2.SubjectAltNameMatcher) -> tls_pb2.CommonTlsContext:
        common = tls_pb2.CommonTlsContext()
        combined = common.combined_validation_context
        combined.default_validation_context.match_typed_subject_alt_names.append(san)
        combined.validation_context_sds_secret_config.CopyFrom(self.secret_config(MESH_CA))
        common.tls_certificate_sds_secret_configs.append(self.secret_config(IDENTITY_CERT))
        return common


def _uri_san(*, exact: str = "", prefix: str = "") -> common_pb2.SubjectAltNameMatcher:
    san = common_pb2.SubjectAltNameMatcher(san_type=common_pb2.SubjectAltNameMatcher.URI)
    if exact:
        san.matcher.exact = exact
    else:
        san.matcher.prefix = prefix
    return san


def downstream_tls_context(sds: SdsLocation, mesh: str) -> tls_pb2.DownstreamTlsContext:
    """Server side: require a client certificate of any service of `mesh`."""
    context = tls_pb2.DownstreamTlsContext()
    context.require_client_certificate.value = True
    context.common_tls_context.CopyFrom(
        sds.common_tls_context(_uri_san(prefix=mesh_spiffe_prefix(mesh)))
    )
    return context


def upstream_tls_context(
    sds: SdsLocation, mesh: str, service: str, sni: str = ""
) -> tls_pb2.UpstreamTlsContext:
    """Client side: the server must be `service` of `mesh` (`*`: any service of the mesh)."""
    if service == "*":
        san = _uri_san(prefix=mesh_spiffe_prefix(mesh))
    else:
        san = _uri_san(exact=service_spiffe_id(mesh, service))
    context = tls_pb2.UpstreamTlsContext(sni=sni)
    context.common_tls_context.CopyFrom(sds.common_tls_context(san))
    return context


def tls_transport_socket(
    context: tls_pb2.DownstreamTlsContext | tls_pb2.UpstreamTlsContext,
) -> base_pb2.TransportSocket:
    socket = base_pb2.TransportSocket(name=TLS_TRANSPORT_SOCKET)
    packed: any_pb2.Any = pack(context)
    socket.typed_config.CopyFrom(packed)
    return socket
