"""Listener and filter chain builders (Kuma's `pkg/xds/envoy/listeners`, in Envoy's v3 API).

    listener = (
        listener_builder()
        .configure(
            outbound_listener("outbound:127.0.0.1:18080", "127.0.0.1", 18080),
            filter_chain(filter_chain_builder().configure(tcp_proxy("backend", subsets))),
            transparent_proxying(networking.transparent_proxying),
        )
        .build()
    )

Filter chain configurers work on a `FilterChainDraft`: the network filters are kept as plain
messages until `build()` packs them into `typed_config`, so a later configurer (routes, gRPC
stats, and later RBAC, fault injection, tracing, access logs) can amend an earlier one's
HttpConnectionManager or TcpProxy in place instead of unpacking and repacking it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2 as grpc_stats_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from kuma.xds.envoy.common import Builder, ClusterSubset, Configurer, lb_metadata, pack
from kuma.xds.envoy.routes import (
    common_route_configuration,
    common_virtual_host,
    default_route,
    reset_tags_header,
    route_configuration_builder,
    tags_header,
    virtual_host,
    virtual_host_builder,
)
from kuma.xds.names import inbound_route_name, outbound_route_name, sanitize_metric

__all__ = [
    "GRPC_STATS",
    "HTTP_CONNECTION_MANAGER",
    "ROUTER",
    "TCP_PROXY",
    "FilterChainConfigurer",
    "FilterChainDraft",
    "ListenerConfigurer",
    "filter_chain",
    "filter_chain_builder",
    "grpc_stats",
    "http_connection_manager",
    "http_inbound_route",
    "http_outbound_route",
    "inbound_listener",
    "listener_builder",
    "original_dst_forwarder",
    "outbound_listener",
    "tcp_proxy",
    "transparent_proxying",
]

# Canonical v3 filter names.
TCP_PROXY = "envoy.filters.network.tcp_proxy"
HTTP_CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
ROUTER = "envoy.filters.http.router"
GRPC_STATS = "envoy.filters.http.grpc_stats"

_ROUTER_CONFIG = pack(router_pb2.Router())
_GRPC_STATS_CONFIG = pack(
    grpc_stats_pb2.FilterConfig(emit_filter_state=True, stats_for_all_methods={"value": True})
)

Listener = listener_pb2.Listener
ListenerConfigurer = Configurer[listener_pb2.Listener]


class FilterChainDraft:
    """A filter chain under construction: `chain` (match, transport socket, ...) plus the
    ordered network filters as `(name, config message)` pairs."""

    __slots__ = ("chain", "filters")

    def __init__(self) -> None:
        self.chain = listener_components_pb2.FilterChain()
        self.filters: list[tuple[str, Any]] = []

    def add_filter(self, name: str, config: Any, *, first: bool = False) -> None:
        if first:
            self.filters.insert(0, (name, config))
        else:
            self.filters.append((name, config))

    def find(self, name: str) -> Any | None:
        for filter_name, config in self.filters:
            if filter_name == name:
                return config
        return None

    def http_connection_manager(self) -> hcm_pb2.HttpConnectionManager:
        """The chain's HttpConnectionManager; configure one before asking for it."""
        hcm = self.find(HTTP_CONNECTION_MANAGER)
        if hcm is None:
            raise ValueError("the filter chain has no HttpConnectionManager to configure")
        return hcm

    def to_proto(self) -> listener_components_pb2.FilterChain:
        for name, config in self.filters:
            network_filter = self.chain.filters.add()
            network_filter.name = name
            network_filter.typed_config.Pack(config)
        return self.chain


FilterChainConfigurer = Configurer[FilterChainDraft]


def listener_builder() -> Builder[listener_pb2.Listener]:
    return Builder(Listener)


def filter_chain_builder() -> Builder[FilterChainDraft]:
    return Builder(FilterChainDraft)


# -- listener configurers -----------------------------------------------------------------------


def _listener(
    name: str, address: str, port: int, direction: int
) -> Configurer[listener_pb2.Listener]:
    def configure(listener: listener_pb2.Listener) -> None:
        listener.name = name
        listener.traffic_direction = direction
        socket = listener.address.socket_address
        socket.address = address
        socket.port_value = port

    return configure


def inbound_listener(name: str, address: str, port: int) -> ListenerConfigurer:
    return _listener(name, address, port, base_pb2.INBOUND)


def outbound_listener(name: str, address: str, port: int) -> ListenerConfigurer:
    return _listener(name, address, port, base_pb2.OUTBOUND)


def filter_chain(builder: Builder[FilterChainDraft]) -> ListenerConfigurer:
    def configure(listener: listener_pb2.Listener) -> None:
        listener.filter_chains.append(builder.build().to_proto())

    return configure


def transparent_proxying(tp: Any | None) -> ListenerConfigurer | None:
    """With both redirect ports set, iptables sends traffic to the passthrough listeners, which
    hand each connection to the listener of its original destination: such listeners must not
    bind their own sockets (v2's `deprecated_v1.bind_to_port: false`, v3's `bind_to_port`)."""
    if tp is None or not (tp.redirect_port_outbound and tp.redirect_port_inbound):
        return None
    return _no_bind


def _no_bind(listener: listener_pb2.Listener) -> None:
    listener.bind_to_port.value = False


def original_dst_forwarder(listener: listener_pb2.Listener) -> None:
    """Hand accepted connections to the listener matching their original destination."""
    listener.use_original_dst.value = True


# -- filter chain configurers ------------------------------------------------------------------


def tcp_proxy(stat_name: str, subsets: Sequence[ClusterSubset]) -> FilterChainConfigurer:
    """TcpProxy to one cluster (plus a metadata match for a tagged subset), or weighted
    clusters each with its own metadata match."""

    def configure(draft: FilterChainDraft) -> None:
        proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=sanitize_metric(stat_name))
        if len(subsets) == 1:
            proxy.cluster = subsets[0].cluster
            lb_metadata(subsets[0].tags, proxy.metadata_match)
        else:
            for subset in subsets:
                weighted = proxy.weighted_clusters.clusters.add()
                weighted.name = subset.cluster
                weighted.weight = subset.weight
                lb_metadata(subset.tags, weighted.metadata_match)
        draft.add_filter(TCP_PROXY, proxy)

    return configure


def http_connection_manager(stat_name: str) -> FilterChainConfigurer:
    """HttpConnectionManager (codec AUTO) with the router filter; routes come from another
    configurer."""

    def configure(draft: FilterChainDraft) -> None:
        hcm = hcm_pb2.HttpConnectionManager(stat_prefix=sanitize_metric(stat_name))
        router = hcm.http_filters.add()
        router.name = ROUTER
        router.typed_config.CopyFrom(_ROUTER_CONFIG)
        draft.add_filter(HTTP_CONNECTION_MANAGER, hcm)

    return configure


def _prepend_http_filter(hcm: hcm_pb2.HttpConnectionManager, name: str, typed_config: Any) -> None:
    existing = [hcm_pb2.HttpFilter() for _ in hcm.http_filters]
    for copy, original in zip(existing, hcm.http_filters, strict=True):
        copy.CopyFrom(original)
    del hcm.http_filters[:]
    first = hcm.http_filters.add()
    first.name = name
    first.typed_config.CopyFrom(typed_config)
    hcm.http_filters.extend(existing)


def grpc_stats(draft: FilterChainDraft) -> None:
    """gRPC per-method stats, placed before the other HTTP filters."""
    _prepend_http_filter(draft.http_connection_manager(), GRPC_STATS, _GRPC_STATS_CONFIG)


def _set_route_config(draft: FilterChainDraft, rc: route_pb2.RouteConfiguration) -> None:
    draft.http_connection_manager().route_config.CopyFrom(rc)


def http_inbound_route(service: str, cluster: ClusterSubset) -> FilterChainConfigurer:
    """Inline route config `inbound:<service>`: everything to the local cluster, with
    `x-kuma-tags` removed."""

    def configure(draft: FilterChainDraft) -> None:
        rc = (
            route_configuration_builder()
            .configure(
                common_route_configuration(inbound_route_name(service)),
                reset_tags_header,
                virtual_host(
                    virtual_host_builder().configure(
                        common_virtual_host(service), default_route([cluster])
                    )
                ),
            )
            .build()
        )
        _set_route_config(draft, rc)

    return configure


def http_outbound_route(
    service: str, subsets: Iterable[ClusterSubset], source_tags: Mapping[str, Sequence[str]]
) -> FilterChainConfigurer:
    """Inline route config `outbound:<service>`: everything to the route's subsets, with the
    source dataplane's tags added as `x-kuma-tags`."""
    subsets = list(subsets)

    def configure(draft: FilterChainDraft) -> None:
        rc = (
            route_configuration_builder()
            .configure(
                common_route_configuration(outbound_route_name(service)),
                tags_header(source_tags),
                virtual_host(
                    virtual_host_builder().configure(
                        common_virtual_host(service), default_route(subsets)
                    )
                ),
            )
            .build()
        )
        _set_route_config(draft, rc)

    return configure
