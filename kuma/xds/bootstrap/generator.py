"""The Envoy (v3) bootstrap a dataplane starts from (Kuma's `pkg/xds/bootstrap` generator).

    bootstrap = await generate_bootstrap(manager, settings, BootstrapRequest("default", "web-01"))
    text = bootstrap_to_yaml(bootstrap)          # what POST /bootstrap answers

The bootstrap tells Envoy who it is (node id `<mesh>.<name>`, cluster = the dataplane's
identifying service, metadata the control plane reads back over ADS), where its admin API listens
(only when an admin port is known), and how to reach the ADS server (`ads_cluster`, HTTP/2, TCP
keepalive, TLS when the xDS server has a certificate). Listeners and clusters then come over ADS.
With a dataplane token, the ADS gRPC service sends it as `authorization` initial metadata on
every stream (Kuma 1.3+); the token file's path goes into the node metadata (`dataplaneTokenPath`)
for the SDS channel, which reads the file itself.
`access_log_sink` points at kuma-dp's access-log socket (TCP traffic logs).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import anyio
import yaml
from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, tls_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.selectors import identifying_service, inbound_interface
from kuma.xds.bootstrap.settings import BootstrapSettings
from kuma.xds.bootstrap.types import (
    ACCESS_LOG_SINK_CLUSTER,
    ADS_CLUSTER,
    BootstrapRequest,
    access_log_socket_path,
)
from kuma.xds.core import ProxyId

__all__ = [
    "AUTHORIZATION_HEADER",
    "STATS_TAGS",
    "AdminPortConflictError",
    "BootstrapParams",
    "bootstrap_to_yaml",
    "build_bootstrap",
    "check_admin_port",
    "generate_bootstrap",
]

STATS_TAGS: tuple[tuple[str, str], ...] = (
    ("name", r"^grpc\.((.+)\.)"),
    ("status", r"^grpc.*streams_closed(_([0-9]+))"),
    ("worker", r"(worker_([0-9]+)\.)"),
    ("listener", r"((.+?)\.)rbac\."),
)
"""Kuma's extra stats tags (tag name, regex), in Kuma's order."""

AUTHORIZATION_HEADER = "authorization"
"""The metadata key Envoy sends the dataplane token under."""

_HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_LOOPBACK = "127.0.0.1"


class AdminPortConflictError(Exception):
    """The admin port would collide with one of the dataplane's own listeners (HTTP 422)."""

    def __init__(self, port: int, direction: str) -> None:
        self.port = port
        self.direction = direction
        super().__init__(
            f"Resource precondition failed: Port {port} requested as both admin and "
            f"{direction} port."
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class BootstrapParams:
    """Everything one bootstrap is made of (Kuma's template parameters)."""

    node_id: str
    service: str
    admin_address: str
    admin_port: int
    """0: no admin API (no `admin` section, no `dataplane.admin.port` metadata)."""
    admin_access_log_path: str
    xds_host: str
    xds_port: int
    xds_connect_timeout_s: float
    access_log_pipe: str
    dataplane_token_path: str = ""
    dataplane_token: str = ""
    """Sent by Envoy as `authorization` metadata on its ADS stream; empty: none."""
    xds_ca_cert: bytes = b""
    """PEM bytes Envoy trusts for the ADS server; empty: plaintext ADS."""


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _overlap(a: str, b: str) -> bool:
    """Whether sockets bound to `a` and `b` (same port) collide: equal, or either is a wildcard."""
    ip_a, ip_b = _ip(a), _ip(b)
    if (ip_a is not None and ip_a.is_unspecified) or (ip_b is not None and ip_b.is_unspecified):
        return True
    return ip_a is not None and ip_a == ip_b


def check_admin_port(dataplane: Any, port: int, admin_address: str = _LOOPBACK) -> None:
    """Raise AdminPortConflictError when Envoy's admin API on `admin_address:port` would collide
    with an inbound (its dataplane side or its workload side) or an outbound of `dataplane`.

    Kuma compares against 127.0.0.1 (where kuma-dp binds the admin API); kuma-py compares
    against the configured admin address, which is 127.0.0.1 unless changed.
    """
    networking = dataplane.networking
    if port == 0 or networking is None:
        return
    for inbound in networking.inbound:
        iface = inbound_interface(networking, inbound)
        if (port == iface.data_plane_port and _overlap(admin_address, iface.data_plane_ip)) or (
            port == iface.workload_port and _overlap(admin_address, iface.workload_ip)
        ):
            raise AdminPortConflictError(port, "inbound")
    for outbound in networking.outbound:
        if port == outbound.port and _overlap(admin_address, outbound.address or _LOOPBACK):
            raise AdminPortConflictError(port, "outbound")


def _http2_options(cluster: cluster_pb2.Cluster) -> None:
    options = http_protocol_options_pb2.HttpProtocolOptions()
    options.explicit_http_config.http2_protocol_options.SetInParent()
    cluster.typed_extension_protocol_options[_HTTP_PROTOCOL_OPTIONS].Pack(options)


def _static_cluster(
    name: str, discovery: int, timeout_s: float
) -> tuple[cluster_pb2.Cluster, endpoint_components_pb2.LbEndpoint]:
    cluster = cluster_pb2.Cluster(
        name=name, type=discovery, lb_policy=cluster_pb2.Cluster.ROUND_ROBIN
    )
    cluster.connect_timeout.FromNanoseconds(round(timeout_s * 1e9))
    _http2_options(cluster)
    # a TCP keepalive notices a half-open connection to the control plane and reconnects
    cluster.upstream_connection_options.tcp_keepalive.SetInParent()
    cluster.load_assignment.cluster_name = name
    lb_endpoint = cluster.load_assignment.endpoints.add().lb_endpoints.add()
    return cluster, lb_endpoint


def build_bootstrap(params: BootstrapParams) -> bootstrap_pb2.Bootstrap:
    """The bootstrap for `params` (pure; no I/O)."""
    bootstrap = bootstrap_pb2.Bootstrap()

    node = bootstrap.node
    node.id = params.node_id
    node.cluster = params.service
    if params.dataplane_token_path:
        node.metadata.fields["dataplaneTokenPath"].string_value = params.dataplane_token_path
    if params.admin_port:
        node.metadata.fields["dataplane.admin.port"].string_value = str(params.admin_port)

    if params.admin_port:
        admin = bootstrap.admin
        file_log = file_pb2.FileAccessLog(path=params.admin_access_log_path)
        log = accesslog_pb2.AccessLog(name="envoy.access_loggers.file")
        log.typed_config.Pack(file_log)
        admin.access_log.append(log)
        admin.address.socket_address.protocol = address_pb2.SocketAddress.TCP
        admin.address.socket_address.address = params.admin_address
        admin.address.socket_address.port_value = params.admin_port

    for tag_name, regex in STATS_TAGS:
        bootstrap.stats_config.stats_tags.add(tag_name=tag_name, regex=regex)

    dynamic = bootstrap.dynamic_resources
    for source in (dynamic.lds_config, dynamic.cds_config):
        source.ads.SetInParent()
        source.resource_api_version = config_source_pb2.V3
    dynamic.ads_config.api_type = config_source_pb2.ApiConfigSource.GRPC
    dynamic.ads_config.transport_api_version = config_source_pb2.V3
    ads_service = dynamic.ads_config.grpc_services.add()
    ads_service.envoy_grpc.cluster_name = ADS_CLUSTER
    if params.dataplane_token:
        ads_service.initial_metadata.add(key=AUTHORIZATION_HEADER, value=params.dataplane_token)

    ads, ads_endpoint = _static_cluster(
        ADS_CLUSTER, cluster_pb2.Cluster.STRICT_DNS, params.xds_connect_timeout_s
    )
    ads_endpoint.endpoint.address.socket_address.address = params.xds_host
    ads_endpoint.endpoint.address.socket_address.port_value = params.xds_port
    if params.xds_ca_cert:
        tls = tls_pb2.UpstreamTlsContext(sni=params.xds_host)
        tls.common_tls_context.tls_params.tls_minimum_protocol_version = (
            common_pb2.TlsParameters.TLSv1_2
        )
        tls.common_tls_context.validation_context.trusted_ca.inline_bytes = params.xds_ca_cert
        ads.transport_socket.name = "envoy.transport_sockets.tls"
        ads.transport_socket.typed_config.Pack(tls)

    sink, sink_endpoint = _static_cluster(
        ACCESS_LOG_SINK_CLUSTER, cluster_pb2.Cluster.STATIC, params.xds_connect_timeout_s
    )
    sink_endpoint.endpoint.address.pipe.path = params.access_log_pipe

    bootstrap.static_resources.clusters.extend([ads, sink])
    return bootstrap


async def generate_bootstrap(
    manager: ResourceManager, settings: BootstrapSettings, request: BootstrapRequest
) -> bootstrap_pb2.Bootstrap:
    """The bootstrap for the dataplane `request` names.

    Raises ResourceNotFoundError (no such dataplane), AdminPortConflictError, or OSError (the
    xDS CA file cannot be read).
    """
    proxy_id = ProxyId(request.mesh, request.name)
    dataplane = await manager.get(registry.DATAPLANE, request.name, request.mesh)
    admin_port = request.admin_port or settings.admin_port
    check_admin_port(dataplane.spec, admin_port, settings.admin_address)
    ca_cert = b""
    if settings.xds_ca_cert_file:
        ca_cert = await anyio.Path(settings.xds_ca_cert_file).read_bytes()
    params = BootstrapParams(
        node_id=str(proxy_id),
        service=identifying_service(dataplane.spec),
        admin_address=settings.admin_address,
        admin_port=admin_port,
        admin_access_log_path=settings.admin_access_log_path,
        xds_host=settings.xds_host,
        xds_port=settings.xds_port,
        xds_connect_timeout_s=settings.xds_connect_timeout.total_seconds(),
        access_log_pipe=access_log_socket_path(request.name, request.mesh),
        dataplane_token_path=request.dataplane_token_path,
        dataplane_token=request.dataplane_token,
        xds_ca_cert=ca_cert,
    )
    return build_bootstrap(params)


def _plain(value: Any) -> Any:
    """MessageToDict renders Any fields as OrderedDicts, which yaml.safe_dump refuses."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def bootstrap_to_yaml(bootstrap: bootstrap_pb2.Bootstrap) -> str:
    """Proto3 JSON (camelCase, `@type` on Any) rendered as YAML with sorted keys, like Kuma."""
    data = _plain(json_format.MessageToDict(bootstrap))
    return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)
