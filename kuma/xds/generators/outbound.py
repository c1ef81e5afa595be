"""Outbound listeners, clusters and endpoints (Kuma's OutboundProxyGenerator).

For each `networking.outbound[i]` (resolved by topology into a route, subsets, protocol and
the policies of its service):

* listener `outbound:<address or 127.0.0.1>:<port>` (OUTBOUND) with one filter chain:
  tcp: tcp_proxy (stat prefix `<service>`) to the subset's cluster, or weighted clusters, with
  the TrafficLog's access log, a Retry's `tcp.maxConnectAttempts` and a Timeout's idle timeout;
  http/http2: HttpConnectionManager (stat prefix `<service>`) with tracing, the access log and
  the inline route config `outbound:<service>` (adds `x-kuma-tags` with the dataplane's tags,
  prefix `/` to the subsets, a Timeout's request timeout, a Retry's retry policy); grpc: the
  same plus the gRPC stats filter. With transparent proxying (both redirect ports) the listener
  does not bind its own socket. An outbound whose route has no destination of positive weight
  gets no listener (there is nowhere to send its traffic).

Then, for every cluster (destination service) of every outbound, sorted by name:

* cluster `<service>`: EDS over ADS, subset load balancing when some route picks endpoints by
  tags besides `kuma.io/service` (one selector per distinct key set, across all of this
  proxy's outbounds to that service), mTLS to the upstream (when the mesh has it on), outlier
  detection (CircuitBreaker), active TCP health checks (HealthCheck), HTTP/2 upstream, and a
  Timeout's connect/idle timeouts;
* ClusterLoadAssignment `<service>`: every endpoint of the service.

Clusters and load assignments are the same for every proxy with the same configuration, so
they come from `SharedResources` (built and serialised once per mesh). The cluster cache key is
every input of the cluster: name, subset key sets, mTLS tag sets and token path, and the
HealthCheck, CircuitBreaker and Timeout resources (by identity) with the cluster's protocol.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from kuma.model.resource import Resource
from kuma.xds.core import CLUSTER, LISTENER, MeshContext, XdsResource
from kuma.xds.envoy import Builder
from kuma.xds.envoy import accesslog as al
from kuma.xds.envoy import clusters as c
from kuma.xds.envoy import listeners as lst
from kuma.xds.envoy.tls import SdsLocation
from kuma.xds.generators.base import (
    ORIGIN_OUTBOUND,
    GenerationError,
    access_log_variables,
    sds_location,
)
from kuma.xds.generators.shared import SharedResources
from kuma.xds.names import outbound_listener_name
from kuma.xds.topology import (
    PROTOCOL_GRPC,
    PROTOCOL_HTTP,
    PROTOCOL_HTTP2,
    Proxy,
    ProxyOutbound,
    infer_protocol,
)

__all__ = ["build_outbound_cluster", "generate_outbound"]


def _conf(policy: Resource | None) -> Any | None:
    return policy.spec.conf if policy is not None else None


def _request_timeout(outbound: ProxyOutbound) -> dt.timedelta | None:
    conf = _conf(outbound.timeout)
    if conf is None:
        return None
    # Kuma 1.1: with a Timeout, the route timeout is its http.requestTimeout (unset: 0, none)
    http = conf.http
    return (http.request_timeout if http is not None else None) or dt.timedelta()


def _filter_chain(proxy: Proxy, outbound: ProxyOutbound) -> Builder[lst.FilterChainDraft]:
    chain = lst.filter_chain_builder()
    service = outbound.service
    protocol = outbound.protocol
    log = None
    if outbound.log is not None:
        http = protocol in (PROTOCOL_HTTP, PROTOCOL_HTTP2, PROTOCOL_GRPC)
        log = lst.access_log(
            outbound.log,
            al.DEFAULT_HTTP_FORMAT if http else al.DEFAULT_TCP_FORMAT,
            access_log_variables(proxy, service),
            http=http,
        )
    if protocol in (PROTOCOL_HTTP, PROTOCOL_HTTP2, PROTOCOL_GRPC):
        chain.configure(
            lst.http_connection_manager(service),
            lst.tracing(proxy.tracing_backend),
            lst.http_access_log(log),
            lst.http_outbound_route(
                service, outbound.subsets, proxy.tags, _request_timeout(outbound)
            ),
            lst.retry(_conf(outbound.retry), protocol),
            lst.grpc_stats if protocol == PROTOCOL_GRPC else None,
        )
    else:
        chain.configure(
            lst.tcp_proxy(service, outbound.subsets),
            lst.network_access_log(log),
            lst.max_connect_attempts(_conf(outbound.retry)),
        )
    chain.configure(lst.timeout(_conf(outbound.timeout), protocol))
    return chain


def build_outbound_cluster(
    name: str,
    key_sets: Sequence[Sequence[str]],
    *,
    mesh: str = "",
    sds: SdsLocation | None = None,
    tag_sets: Sequence[Mapping[str, str]] = (),
    health_check: Resource | None = None,
    circuit_breaker: Resource | None = None,
    timeout: Resource | None = None,
    protocol: str = "",
) -> XdsResource:
    cluster = (
        c.cluster_builder()
        .configure(
            c.eds_cluster(name),
            c.lb_subset(key_sets),
            c.client_side_mtls(sds, mesh, name, tag_sets),
            c.outlier_detection(_conf(circuit_breaker)),
            c.health_check(_conf(health_check)),
            c.http2,
            c.timeout(protocol, _conf(timeout)),
        )
        .build()
    )
    return XdsResource(name, CLUSTER, cluster, ORIGIN_OUTBOUND)


class _ClusterInfo:
    __slots__ = ("key_sets", "tag_sets", "timeout")

    def __init__(self, timeout: Resource | None) -> None:
        self.key_sets: list[tuple[str, ...]] = []
        self.tag_sets: list[tuple[tuple[str, str], ...]] = []
        self.timeout = timeout


def generate_outbound(ctx: MeshContext, proxy: Proxy, shared: SharedResources) -> list[XdsResource]:
    resources = []
    sds = sds_location(proxy, shared)
    clusters: dict[str, _ClusterInfo] = {}
    for i, outbound in enumerate(proxy.outbounds):
        if not outbound.subsets:
            continue
        for subset in outbound.subsets:
            info = clusters.get(subset.cluster)
            if info is None:
                info = clusters[subset.cluster] = _ClusterInfo(outbound.timeout)
            keys = tuple(k for k, _ in subset.lb_tags)
            if keys and keys not in info.key_sets:
                info.key_sets.append(keys)
            if sds is not None:
                tags = tuple(sorted((subset.tags or {}).items()))
                if tags not in info.tag_sets:
                    info.tag_sets.append(tags)
        name = outbound_listener_name(outbound.address, outbound.port)
        try:
            listener = (
                lst.listener_builder()
                .configure(
                    lst.outbound_listener(name, outbound.address, outbound.port),
                    lst.filter_chain(_filter_chain(proxy, outbound)),
                    lst.transparent_proxying(proxy.transparent_proxying),
                )
                .build()
            )
        except ValueError as e:
            raise GenerationError(
                f"dataplane.networking.outbound[{i}]: could not generate listener {name} for "
                f"service {outbound.service}: {e}"
            ) from e
        resources.append(XdsResource(name, LISTENER, listener, ORIGIN_OUTBOUND))

    names = sorted(clusters)
    mesh = proxy.id.mesh
    for name in names:
        info = clusters[name]
        subset_keys = tuple(info.key_sets)
        tag_sets = tuple(info.tag_sets)
        health_check = proxy.health_checks.get(name)
        circuit_breaker = proxy.circuit_breakers.get(name)
        timeout = info.timeout
        protocol = ""
        if timeout is not None:
            protocol = infer_protocol(proxy.endpoints.get(name, ()))
        key = (
            "cluster",
            name,
            subset_keys,
            (sds.token_path, tag_sets) if sds is not None else None,
            health_check,
            circuit_breaker,
            (timeout, protocol) if timeout is not None else None,
        )

        def build(
            name: str = name,
            subset_keys: tuple[tuple[str, ...], ...] = subset_keys,
            tag_sets: tuple[tuple[tuple[str, str], ...], ...] = tag_sets,
            health_check: Resource | None = health_check,
            circuit_breaker: Resource | None = circuit_breaker,
            timeout: Resource | None = timeout,
            protocol: str = protocol,
        ) -> XdsResource:
            return build_outbound_cluster(
                name,
                subset_keys,
                mesh=mesh,
                sds=sds,
                tag_sets=[dict(t) for t in tag_sets],
                health_check=health_check,
                circuit_breaker=circuit_breaker,
                timeout=timeout,
                protocol=protocol,
            )

        try:
            resources.append(shared.resource(key, build))
        except ValueError as e:
            raise GenerationError(f"could not generate cluster {name}: {e}") from e
    for name in names:
        resources.append(
            shared.load_assignment(name, proxy.endpoints.get(name, ()), ORIGIN_OUTBOUND)
        )
    return resources
