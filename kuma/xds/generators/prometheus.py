"""Envoy's own stats for Prometheus (Kuma's PrometheusEndpointGenerator).

When the mesh's `metrics.enabledBackend` is a `prometheus` backend, every dataplane whose Envoy
has an admin API (kuma-dp reports its port in the node metadata, `dataplane.admin.port`) gets:

* cluster `kuma:envoy:admin`: STATIC, `127.0.0.1:<admin port>`. Always loopback: the admin
  address a dataplane could report is not trusted, or the endpoint would proxy to any host;
* listener `kuma:metrics:prometheus` (INBOUND) on `<networking.address>:<port>`: an
  HttpConnectionManager whose only route sends the prefix `<path>` to that cluster, rewritten to
  `/stats/prometheus` (Envoy's Prometheus text exposition).

The port, path, tags and `skipMTLS` come from the mesh backend's `conf`, overridden field by field
by the dataplane's own `metrics` (when it is of type `prometheus`): a non-zero port or non-empty
path replaces the mesh's, tags are merged (the dataplane's win), an explicit `skipMTLS` replaces
the mesh's. Port, path and tags the mesh left unset get the mesh defaults (5670, `/metrics`,
`kuma.io/service: dataplane-metrics`), which the resource manager normally stored already.

With mTLS on (and `skipMTLS` not true) the listener has two filter chains: connections from the
dataplane's own address (a Prometheus running next to it) in plain HTTP; any other in the mesh's
mTLS, allowed by the TrafficPermission selected for the "Prometheus inbound" (the tags above, the
dataplane's address, the metrics port) like any inbound, so without one RBAC denies everything.

Nothing is generated (the dataplane is not scrapeable, nothing else changes) when the Envoy has
no admin port, or when `<address>:<port>` would clash with one of the dataplane's own inbounds
(its listener or its application) or outbounds: Kuma prefers no endpoint to a listener
shadowing traffic.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any

from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2

from kuma.errors import ValidationError
from kuma.model.metrics import PrometheusEndpoint, dataplane_prometheus, mesh_prometheus
from kuma.model.resource import Resource
from kuma.xds.core import CLUSTER, LISTENER, MeshContext, XdsResource
from kuma.xds.envoy import Builder
from kuma.xds.envoy import clusters as c
from kuma.xds.envoy import listeners as lst
from kuma.xds.envoy.routes import route_configuration_builder, virtual_host, virtual_host_builder
from kuma.xds.envoy.tls import SdsLocation, downstream_tls_context, tls_transport_socket
from kuma.xds.generators.base import ORIGIN_PROMETHEUS, GenerationError, sds_location
from kuma.xds.generators.shared import SharedResources
from kuma.xds.names import ENVOY_ADMIN_CLUSTER, PROMETHEUS_LISTENER
from kuma.xds.topology import DEFAULT_OUTBOUND_ADDRESS, Proxy, select_inbound_policy_indexed

__all__ = [
    "ADMIN_ADDRESS",
    "PROMETHEUS_STATS_PATH",
    "PrometheusEndpoint",
    "generate_prometheus_endpoint",
    "prometheus_endpoint",
    "uses_interface",
]

PROMETHEUS_STATS_PATH = "/stats/prometheus"
"""Envoy's admin endpoint serving its stats in Prometheus' text format."""
ADMIN_ADDRESS = "127.0.0.1"
"""Where the admin cluster points, whatever the dataplane reports (kuma-dp binds it there)."""
VIRTUAL_HOST = "envoy_admin"


def _mesh_endpoint(mesh: Resource) -> PrometheusEndpoint | None:
    try:
        return mesh_prometheus(mesh)
    except ValidationError as e:
        raise GenerationError(f"could not get prometheus endpoint of the mesh: {e}") from e


def _dataplane_endpoint(
    mesh_endpoint: PrometheusEndpoint, dataplane: Resource
) -> PrometheusEndpoint:
    try:
        return dataplane_prometheus(mesh_endpoint, dataplane)
    except ValidationError as e:
        raise GenerationError(f"could not get prometheus endpoint of the dataplane: {e}") from e


def prometheus_endpoint(mesh: Resource, dataplane: Resource) -> PrometheusEndpoint | None:
    """The Prometheus endpoint of `dataplane` (of `mesh`), or None when the mesh has no
    prometheus metrics backend enabled (`kuma.model.metrics` has the rules).

    Raises GenerationError when a `conf` does not decode (validation prevents that on writes).
    """
    endpoint = _mesh_endpoint(mesh)
    return None if endpoint is None else _dataplane_endpoint(endpoint, dataplane)


def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | str:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return address


def _overlap(one: str, other: str) -> bool:
    """Same address, or either is a wildcard (`0.0.0.0`, `::`)."""
    a, b = _ip(one), _ip(other)
    for ip in (a, b):
        if not isinstance(ip, str) and ip.is_unspecified:
            return True
    return a == b


def uses_interface(dataplane: Resource, address: str, port: int) -> bool:
    """Whether `address:port` is taken by one of the dataplane's inbounds (the listener or the
    application behind it) or outbounds (Kuma's `DataplaneResource.UsesInterface`)."""
    networking = dataplane.spec.networking
    if networking is None:
        return False
    for inbound in networking.inbound:
        if port == inbound.port and _overlap(address, inbound.address or networking.address):
            return True
        workload_port = inbound.service_port or inbound.port
        workload_ip = inbound.service_address or "127.0.0.1"
        if port == workload_port and _overlap(address, workload_ip):
            return True
    return any(
        port == outbound.port and _overlap(address, outbound.address or DEFAULT_OUTBOUND_ADDRESS)
        for outbound in networking.outbound
    )


@functools.lru_cache(maxsize=64)
def _admin_route_config(path: str) -> route_pb2.RouteConfiguration:
    """Route prefix `path` to the admin cluster, as `/stats/prometheus` (shared: only copied)."""

    def configure_vh(vh: route_components_pb2.VirtualHost) -> None:
        vh.name = VIRTUAL_HOST
        vh.domains.append("*")
        route = vh.routes.add()
        route.match.prefix = path
        route.route.cluster = ENVOY_ADMIN_CLUSTER
        route.route.prefix_rewrite = PROMETHEUS_STATS_PATH

    def configure_rc(rc: route_pb2.RouteConfiguration) -> None:
        rc.validate_clusters.value = False

    return (
        route_configuration_builder()
        .configure(configure_rc, virtual_host(virtual_host_builder().configure(configure_vh)))
        .build()
    )


def _admin_route(path: str) -> lst.FilterChainConfigurer:
    rc = _admin_route_config(path)

    def configure(draft: lst.FilterChainDraft) -> None:
        draft.http_connection_manager().route_config.CopyFrom(rc)

    return configure


def _source_is(address: str) -> lst.FilterChainConfigurer:
    """Match connections whose source is exactly `address`."""
    prefix_len = 128 if ":" in address else 32  # IPv6 or IPv4 (the address is validated)

    def configure(draft: lst.FilterChainDraft) -> None:
        source = draft.chain.filter_chain_match.source_prefix_ranges.add()
        source.address_prefix = address
        source.prefix_len.value = prefix_len

    return configure


def _http_chain(path: str) -> Builder[lst.FilterChainDraft]:
    return lst.filter_chain_builder().configure(
        lst.http_connection_manager(PROMETHEUS_LISTENER), _admin_route(path)
    )


def _listener(
    address: str,
    endpoint: PrometheusEndpoint,
    mesh: str,
    tls_socket: Any | None,
    permission: Resource | None,
) -> listener_pb2.Listener:
    builder = lst.listener_builder().configure(
        lst.inbound_listener(PROMETHEUS_LISTENER, address, endpoint.port)
    )
    if tls_socket is None:
        builder.configure(lst.filter_chain(_http_chain(endpoint.path)))
    else:
        builder.configure(
            # a Prometheus next to the dataplane scrapes it without a mesh certificate
            lst.filter_chain(_http_chain(endpoint.path).configure(_source_is(address))),
            lst.filter_chain(
                _http_chain(endpoint.path).configure(
                    lst.server_side_mtls(tls_socket),
                    lst.network_rbac(PROMETHEUS_LISTENER, True, mesh, permission),
                )
            ),
        )
    return builder.build()


def _tls_socket(shared: SharedResources, sds: SdsLocation, mesh: str) -> Any:
    # the same memo key as the inbound generator: one packed context per mesh and token path
    return shared.memo(
        ("downstream-tls", mesh, sds.token_path),
        lambda: tls_transport_socket(downstream_tls_context(sds, mesh)),
    )


def generate_prometheus_endpoint(
    ctx: MeshContext, proxy: Proxy, shared: SharedResources
) -> list[XdsResource]:
    admin_port = proxy.metadata.admin_port
    if not admin_port or ctx.mesh.spec.metrics is None:
        return []  # no admin API to expose, or metrics off: the cheap common case
    # decoded once per mesh version (the catalog publishes a new Mesh object on change)
    config = shared.memo(("prometheus-mesh-config", ctx.mesh), lambda: _mesh_endpoint(ctx.mesh))
    if config is None:
        return []
    endpoint = _dataplane_endpoint(config, proxy.dataplane)
    address = proxy.address
    if not address or uses_interface(proxy.dataplane, address, endpoint.port):
        return []
    mesh = proxy.id.mesh
    tls_socket = None
    permission = None
    if proxy.mtls and not endpoint.skip_mtls:
        sds = sds_location(proxy, shared)
        assert sds is not None  # mTLS is on
        tls_socket = _tls_socket(shared, sds, mesh)
        permissions = ctx.policies_of("TrafficPermission")
        if permissions:
            permission = select_inbound_policy_indexed(endpoint.tags, permissions)
    cluster = shared.resource(
        ("prometheus-admin-cluster", admin_port),
        lambda: XdsResource(
            ENVOY_ADMIN_CLUSTER,
            CLUSTER,
            c.cluster_builder()
            .configure(c.static_cluster(ENVOY_ADMIN_CLUSTER, ADMIN_ADDRESS, admin_port))
            .build(),
            ORIGIN_PROMETHEUS,
        ),
    )
    listener = XdsResource(
        PROMETHEUS_LISTENER,
        LISTENER,
        _listener(address, endpoint, mesh, tls_socket, permission),
        ORIGIN_PROMETHEUS,
    )
    return [cluster, listener]
