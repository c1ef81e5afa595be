"""Inbound listeners and local clusters (Kuma's InboundProxyGenerator).

For each `networking.inbound[i]`:

* cluster `localhost:<workload port>` (STATIC, one endpoint at the workload's
  `serviceAddress or 127.0.0.1` : `servicePort or port`), speaking HTTP/2 upstream when the
  inbound's protocol is http2 or grpc;
* listener `inbound:<address>:<port>` (INBOUND) with one filter chain:
  http/http2: HttpConnectionManager (stat prefix `localhost_<port>`) with the fault filter of
  the FaultInjection selected for the inbound (if any), tracing (if a TrafficTrace applies) and
  the inline route config `inbound:<service>` sending everything to the local cluster and
  removing `x-kuma-tags`; grpc: the same plus the gRPC stats filter; anything else: tcp_proxy to
  the local cluster. With mTLS on, the chain terminates the mesh's TLS (client certificate of
  the mesh required) and starts with the RBAC filter of the inbound's TrafficPermission (no
  permission: everything is denied). With transparent proxying (both redirect ports), the
  listener does not bind its own socket.

An inbound on the reserved port 49151 is the placeholder Kubernetes mode gives a pod no Service
selects (Kuma 1.1's "service-less" inbound): it carries the pod's identity (tags, SANs) but no
listener or local cluster.
"""

from __future__ import annotations

from typing import Any

from kuma.xds.core import CLUSTER, LISTENER, MeshContext, XdsResource
from kuma.xds.envoy import Builder, ClusterSubset
from kuma.xds.envoy import clusters as c
from kuma.xds.envoy import listeners as lst
from kuma.xds.envoy.tls import downstream_tls_context, tls_transport_socket
from kuma.xds.generators.base import ORIGIN_INBOUND, GenerationError, sds_location
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
SERVICE_LESS_PORT = 49151
"""IANA-reserved port of the service-less inbound (Kuma's `TCPPortReserved`)."""


def _fault(inbound: ProxyInbound) -> lst.FilterChainConfigurer | None:
    policy = inbound.fault_injection
    if policy is None:
        return None
    return lst.fault_injection(policy.spec.conf, [s.match for s in policy.spec.sources])


def _filter_chain(
    proxy: Proxy,
    inbound: ProxyInbound,
    cluster_name: str,
    listener_name: str,
    tls_socket: Any | None,
) -> Builder[lst.FilterChainDraft]:
    chain = lst.filter_chain_builder()
    local = ClusterSubset(cluster_name)
    if inbound.protocol in (PROTOCOL_HTTP, PROTOCOL_HTTP2, PROTOCOL_GRPC):
        chain.configure(
            lst.http_connection_manager(cluster_name),
            lst.grpc_stats if inbound.protocol == PROTOCOL_GRPC else None,
            _fault(inbound),
            lst.tracing(proxy.tracing_backend),
            lst.http_inbound_route(inbound.service, local),
        )
    else:
        chain.configure(lst.tcp_proxy(cluster_name, [local]))
    chain.configure(
        lst.server_side_mtls(tls_socket),
        lst.network_rbac(listener_name, proxy.mtls, proxy.id.mesh, inbound.permission),
    )
    return chain


def generate_inbound(ctx: MeshContext, proxy: Proxy, shared: SharedResources) -> list[XdsResource]:
    resources = []
    sds = sds_location(proxy, shared)
    tls_socket = None
    if sds is not None:
        mesh = proxy.id.mesh
        tls_socket = shared.memo(
            ("downstream-tls", mesh, sds.token_path),
            lambda: tls_transport_socket(downstream_tls_context(sds, mesh)),
        )
    for inbound in proxy.inbounds:
        iface = inbound.interface
        if iface.data_plane_port == SERVICE_LESS_PORT:
            continue
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
        try:
            listener = (
                lst.listener_builder()
                .configure(
                    lst.inbound_listener(listener_name, iface.data_plane_ip, iface.data_plane_port),
                    lst.filter_chain(
                        _filter_chain(proxy, inbound, cluster_name, listener_name, tls_socket)
                    ),
                    lst.transparent_proxying(proxy.transparent_proxying),
                )
                .build()
            )
        except ValueError as e:
            raise GenerationError(
                f"dataplane.networking.inbound[{inbound.index}]: could not generate listener "
                f"{listener_name}: {e}"
            ) from e
        resources.append(XdsResource(listener_name, LISTENER, listener, ORIGIN_INBOUND))
    return resources
