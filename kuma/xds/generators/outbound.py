"""Outbound listeners, clusters and endpoints (Kuma's OutboundProxyGenerator).

For each `networking.outbound[i]` (resolved by topology into a route, subsets and protocol):

* listener `outbound:<address or 127.0.0.1>:<port>` (OUTBOUND) with one filter chain:
  tcp: tcp_proxy (stat prefix `<service>`) to the subset's cluster, or weighted clusters;
  http/http2: HttpConnectionManager (stat prefix `<service>`) with inline route config
  `outbound:<service>` (adds `x-kuma-tags` with the dataplane's tags, prefix `/` to the
  subsets); grpc: the same plus the gRPC stats filter. With transparent proxying (both
  redirect ports) the listener does not bind its own socket. An outbound whose route has no
  destination of positive weight gets no listener (there is nowhere to send its traffic).

Then, for every cluster (destination service) of every outbound, sorted by name:

* cluster `<service>`: EDS over ADS, HTTP/2 upstream, and subset load balancing when some
  route picks endpoints by tags besides `kuma.io/service` (one selector per distinct key set,
  across all of this proxy's outbounds to that service);
* ClusterLoadAssignment `<service>`: every endpoint of the service.

Clusters and load assignments are the same for every proxy with the same configuration, so
they come from `SharedResources` (built and serialised once per mesh). The cluster cache key
is `("cluster", name, key sets)`; later configurers (health check, circuit breaker, mTLS) must
add their inputs to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from kuma.xds.core import CLUSTER, LISTENER, MeshContext, XdsResource
from kuma.xds.envoy import Builder
from kuma.xds.envoy import clusters as c
from kuma.xds.envoy import listeners as lst
from kuma.xds.generators.base import ORIGIN_OUTBOUND
from kuma.xds.generators.shared import SharedResources
from kuma.xds.names import outbound_listener_name
from kuma.xds.topology import (
    PROTOCOL_GRPC,
    PROTOCOL_HTTP,
    PROTOCOL_HTTP2,
    Proxy,
    ProxyOutbound,
)

__all__ = ["build_outbound_cluster", "generate_outbound"]


def _filter_chain(proxy: Proxy, outbound: ProxyOutbound) -> Builder[lst.FilterChainDraft]:
    chain = lst.filter_chain_builder()
    service = outbound.service
    if outbound.protocol in (PROTOCOL_HTTP, PROTOCOL_HTTP2):
        chain.configure(
            lst.http_connection_manager(service),
            lst.http_outbound_route(service, outbound.subsets, proxy.tags),
        )
    elif outbound.protocol == PROTOCOL_GRPC:
        chain.configure(
            lst.http_connection_manager(service),
            lst.http_outbound_route(service, outbound.subsets, proxy.tags),
            lst.grpc_stats,
        )
    else:
        chain.configure(lst.tcp_proxy(service, outbound.subsets))
    return chain


def build_outbound_cluster(name: str, key_sets: Sequence[Sequence[str]]) -> XdsResource:
    cluster = (
        c.cluster_builder().configure(c.eds_cluster(name), c.lb_subset(key_sets), c.http2).build()
    )
    return XdsResource(name, CLUSTER, cluster, ORIGIN_OUTBOUND)


def generate_outbound(ctx: MeshContext, proxy: Proxy, shared: SharedResources) -> list[XdsResource]:
    resources = []
    # cluster name -> distinct non-empty subset key sets, in order of first use
    clusters: dict[str, list[tuple[str, ...]]] = {}
    for outbound in proxy.outbounds:
        if not outbound.subsets:
            continue
        for subset in outbound.subsets:
            key_sets = clusters.setdefault(subset.cluster, [])
            keys = tuple(k for k, _ in subset.lb_tags)
            if keys and keys not in key_sets:
                key_sets.append(keys)
        name = outbound_listener_name(outbound.address, outbound.port)
        listener = (
            lst.listener_builder()
            .configure(
                lst.outbound_listener(name, outbound.address, outbound.port),
                lst.filter_chain(_filter_chain(proxy, outbound)),
                lst.transparent_proxying(proxy.transparent_proxying),
            )
            .build()
        )
        resources.append(XdsResource(name, LISTENER, listener, ORIGIN_OUTBOUND))

    names = sorted(clusters)
    for name in names:
        subset_keys = tuple(clusters[name])
        resources.append(
            shared.resource(
                ("cluster", name, subset_keys), partial(build_outbound_cluster, name, subset_keys)
            )
        )
    for name in names:
        resources.append(
            shared.load_assignment(name, proxy.endpoints.get(name, ()), ORIGIN_OUTBOUND)
        )
    return resources
