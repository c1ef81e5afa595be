"""Inbound listeners and local clusters (Kuma's InboundProxyGenerator).

For each `networking.inbound[i]`:

* cluster `localhost:<workload port>` (STATIC, one endpoint at the workload's
  `serviceAddress or 127.0.0.1` : `servicePort or port`), speaking HTTP/2 upstream when the
  inbound's protocol is http2 or grpc;
* listener `inbound:<address>:<port>` (INBOUND) with one filter chain:
  http/http2: HttpConnectionManager (stat prefix `localhost_<port>`) with inline route config
  `inbound:<service>` sending everything to the local cluster and removing `x-kuma-tags`;
  grpc: the same plus the gRPC stats filter; anything else: tcp_proxy to the local cluster.
  With transparent proxying (both redirect ports), the listener does not bind its own socket.

Extension points for the next policies: server-side mTLS and RBAC (TrafficPermission) are more
filter chain configurers on the same chain; fault injection and tracing more HTTP configurers.
"""

from __future__ import annotations

from kuma.xds.core import CLUSTER, LISTENER, MeshContext, XdsResource
from kuma.xds.envoy import Builder, ClusterSubset
from kuma.xds.envoy import clusters as c
from kuma.xds.envoy import listeners as lst
from kuma.xds.generators.base import ORIGIN_INBOUND
from kuma.xds.generators.shared import SharedResources
from kuma.xds.names import inbound_listener_name, local_cluster_name
from kuma.xds.topology import (
    PROTOCOL_GRPC,
    PROTOCOL_HTTP,
    PROTOCOL_HTTP2,
    Proxy,
    ProxyInbound,
)

__all__ = ["generate_inbound"]

_HTTP2_UPSTREAM = (PROTOCOL_HTTP2, PROTOCOL_GRPC)


def _filter_chain(inbound: ProxyInbound, cluster_name: str) -> Builder[lst.FilterChainDraft]:
    chain = lst.filter_chain_builder()
    local = ClusterSubset(cluster_name)
    if inbound.protocol in (PROTOCOL_HTTP, PROTOCOL_HTTP2):
        chain.configure(
            lst.http_connection_manager(cluster_name),
            lst.http_inbound_route(inbound.service, local),
        )
    elif inbound.protocol == PROTOCOL_GRPC:
        chain.configure(
            lst.http_connection_manager(cluster_name),
            lst.grpc_stats,
            lst.http_inbound_route(inbound.service, local),
        )
    else:
        chain.configure(lst.tcp_proxy(cluster_name, [local]))
    return chain


def generate_inbound(ctx: MeshContext, proxy: Proxy, shared: SharedResources) -> list[XdsResource]:
    resources = []
    for inbound in proxy.inbounds:
        iface = inbound.interface
        cluster_name = local_cluster_name(iface.workload_port)
        cluster = (
            c.cluster_builder()
            .configure(
                c.static_cluster(cluster_name, iface.workload_ip, iface.workload_port),
                c.http2 if inbound.protocol in _HTTP2_UPSTREAM else None,
            )
            .build()
        )
        resources.append(XdsResource(cluster_name, CLUSTER, cluster, ORIGIN_INBOUND))

        listener_name = inbound_listener_name(iface.data_plane_ip, iface.data_plane_port)
        listener = (
            lst.listener_builder()
            .configure(
                lst.inbound_listener(listener_name, iface.data_plane_ip, iface.data_plane_port),
                lst.filter_chain(_filter_chain(inbound, cluster_name)),
                lst.transparent_proxying(proxy.transparent_proxying),
            )
            .build()
        )
        resources.append(XdsResource(listener_name, LISTENER, listener, ORIGIN_INBOUND))
    return resources
