"""Topology: what one dataplane's Envoy config is made of, before any Envoy message exists.

`build_proxy(ctx, dataplane, metadata)` resolves, for one dataplane of a mesh (Kuma 0.7.3's
`pkg/xds/topology` + the proxy assembly in `pkg/xds/server/components.go`):

* its inbounds: where each listens and forwards, its service and protocol;
* for each outbound, the TrafficRoute that applies (the most specific one, by the rules of
  `kuma.model.policy`, answered from per-type indexes) or Kuma's implicit default route (weight 100
  to the outbound's own tags), the cluster subsets it sends traffic to (weight > 0), and the
  protocol inferred from the endpoints (http/http2/grpc only when all of them agree);
* the destination selectors per service (every route destination of every outbound);
* the endpoints of each destination service (the MeshContext's shared tuples);
* the policies that apply, by Kuma's selection rules (`kuma.model.policy`):
  - per inbound: TrafficPermission and FaultInjection (best destination match);
  - per destination service: HealthCheck, CircuitBreaker and Retry (best source + destination);
  - per outbound service (plus `pass_through`): TrafficLog (resolved to the mesh's logging
    backend, the default one when the policy names none) and Timeout;
  - per dataplane: TrafficTrace (resolved to the mesh's tracing backend) and ProxyTemplate;
  - whether the mesh has mTLS on (`mtls.enabledBackend`).

`build_endpoints` / `endpoints_of` compute the MeshContext's endpoint map: every inbound of
every dataplane that is neither a gateway nor an ingress, per service.

Everything here is pure: same inputs, same Proxy; nothing is cached or mutated.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kuma.model.policy import select_dataplane_policy
from kuma.model.resource import Resource
from kuma.model.selectors import (
    MATCH_ALL,
    PASS_THROUGH_SERVICE,
    PROTOCOL_TAG,
    SERVICE_TAG,
    InboundInterface,
    Rank,
    dataplane_matches,
    dataplane_tags,
    inbound_interface,
    outbound_tags,
    rank,
    selector_matches,
)
from kuma.xds.core import DataplaneMetadata, Endpoint, MeshContext, ProxyId
from kuma.xds.envoy.common import ClusterSubset

__all__ = [
    "DEFAULT_OUTBOUND_ADDRESS",
    "IMPLICIT_ROUTE_NAME",
    "PROTOCOL_GRPC",
    "PROTOCOL_HTTP",
    "PROTOCOL_HTTP2",
    "PROTOCOL_TCP",
    "PROTOCOL_UNKNOWN",
    "VIP_PORT",
    "Proxy",
    "ProxyInbound",
    "ProxyOutbound",
    "Route",
    "build_endpoints",
    "build_proxy",
    "common_protocol",
    "endpoints_of",
    "infer_protocol",
    "logging_backend",
    "mtls_enabled",
    "parse_protocol",
    "select_connection_policies_indexed",
    "select_inbound_policy_indexed",
    "tracing_backend",
]

PROTOCOL_TCP = "tcp"
PROTOCOL_HTTP = "http"
PROTOCOL_HTTP2 = "http2"
PROTOCOL_GRPC = "grpc"
PROTOCOL_UNKNOWN = "<unknown>"
_KNOWN = frozenset((PROTOCOL_TCP, PROTOCOL_HTTP, PROTOCOL_HTTP2, PROTOCOL_GRPC))
# Each protocol with the protocols it runs over, most specific first.
_STACKS = {
    PROTOCOL_GRPC: (PROTOCOL_GRPC, PROTOCOL_HTTP2, PROTOCOL_TCP),
    PROTOCOL_HTTP2: (PROTOCOL_HTTP2, PROTOCOL_TCP),
    PROTOCOL_HTTP: (PROTOCOL_HTTP, PROTOCOL_TCP),
    PROTOCOL_TCP: (PROTOCOL_TCP,),
}

DEFAULT_OUTBOUND_ADDRESS = "127.0.0.1"
IMPLICIT_ROUTE_NAME = "(implicit default route)"
VIP_PORT = 80
"""Port of the VIP outbounds added to transparent-proxy dataplanes."""


def parse_protocol(value: str | None) -> str:
    """A `kuma.io/protocol` value (any case) as a known protocol, else `<unknown>`."""
    if not value:
        return PROTOCOL_UNKNOWN
    lowered = value.lower()
    return lowered if lowered in _KNOWN else PROTOCOL_UNKNOWN


def common_protocol(one: str, other: str) -> str:
    """The most specific protocol both run over: grpc+http2 -> http2, http+http2 -> tcp,
    anything with `<unknown>` -> `<unknown>`."""
    if one == other:
        return one
    one_stack = _STACKS.get(one)
    other_stack = _STACKS.get(other)
    if one_stack is None or other_stack is None:
        return PROTOCOL_UNKNOWN
    for candidate in one_stack:
        if candidate in other_stack:
            return candidate
    return PROTOCOL_UNKNOWN


def infer_protocol(endpoints: Iterable[Endpoint]) -> str:
    """The common protocol of endpoints' `kuma.io/protocol` tags; `<unknown>` when there are
    none, or when one endpoint has no (or an unknown) protocol."""
    result: str | None = None
    for ep in endpoints:
        protocol = parse_protocol(ep.tags.get(PROTOCOL_TAG))
        result = protocol if result is None else common_protocol(result, protocol)
        if result == PROTOCOL_UNKNOWN:
            return result
    return PROTOCOL_UNKNOWN if result is None else result


# -- endpoints ----------------------------------------------------------------------------------


def endpoints_of(dataplane: Resource) -> list[tuple[str, Endpoint]]:
    """`(service, endpoint)` for each inbound of a dataplane, in inbound order.

    Gateways and ingresses are never endpoints (a gateway has no inbounds anyway). The
    endpoint is the inbound's data-plane side (`inbound.address` or `networking.address`,
    `inbound.port`), tagged with the inbound's tags, weight 1.
    """
    networking = dataplane.spec.networking
    if networking is None or networking.gateway is not None or networking.ingress is not None:
        return []
    result = []
    for inbound in networking.inbound:
        tags = dict(inbound.tags)
        result.append(
            (
                tags.get(SERVICE_TAG, ""),
                Endpoint(inbound.address or networking.address, inbound.port, tags, 1),
            )
        )
    return result


def build_endpoints(dataplanes: Iterable[Resource]) -> dict[str, tuple[Endpoint, ...]]:
    """Every endpoint of every service, ordered by dataplane name, then inbound order."""
    grouped: dict[str, list[Endpoint]] = {}
    for dp in sorted(dataplanes, key=lambda d: d.meta.name):
        for service, ep in endpoints_of(dp):
            grouped.setdefault(service, []).append(ep)
    return {service: tuple(eps) for service, eps in grouped.items()}


# -- proxy --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """The traffic route of one outbound: a TrafficRoute, or Kuma's implicit default route."""

    name: str
    conf: tuple[tuple[int, Mapping[str, str]], ...]
    """`(weight, destination tags)` pairs, in the route's order."""
    resource: Resource | None = None
    """The TrafficRoute; None for the implicit default route."""

    @property
    def implicit(self) -> bool:
        return self.resource is None


@dataclass(frozen=True, slots=True)
class ProxyInbound:
    interface: InboundInterface
    service: str
    protocol: str
    """`http`, `http2`, `grpc`, `tcp` or `<unknown>` (treated as tcp)."""
    tags: Mapping[str, str]
    index: int
    """Position in `networking.inbound` (for error paths)."""
    permission: Resource | None = None
    """The TrafficPermission selected for this inbound (enforced only with mTLS)."""
    fault_injection: Resource | None = None
    """The FaultInjection selected for this inbound (HTTP inbounds only)."""


@dataclass(frozen=True, slots=True)
class ProxyOutbound:
    address: str
    port: int
    service: str
    tags: Mapping[str, str]
    route: Route
    subsets: tuple[ClusterSubset, ...]
    """Route destinations with weight > 0 (Envoy rejects weight 0), in the route's order."""
    protocol: str
    """`http`, `http2` or `grpc` when every endpoint of every subset says so; else `tcp`."""
    log: Any | None = None
    """The mesh LoggingBackend of the TrafficLog selected for this outbound's service."""
    timeout: Resource | None = None
    """The Timeout selected for this outbound's service."""
    retry: Resource | None = None
    """The Retry selected for this outbound's service."""


@dataclass(slots=True)
class Proxy:
    """Everything the generators need about one dataplane, resolved against its mesh."""

    id: ProxyId
    dataplane: Resource
    metadata: DataplaneMetadata
    tags: Mapping[str, list[str]]
    """The dataplane's tags (inbounds and gateway): `{tag: sorted distinct values}`."""
    inbounds: tuple[ProxyInbound, ...]
    outbounds: tuple[ProxyOutbound, ...]
    destinations: Mapping[str, tuple[Mapping[str, str], ...]]
    """Service -> distinct destination selectors of all routes (Kuma's OutboundSelectors)."""
    endpoints: Mapping[str, tuple[Endpoint, ...]]
    """Service -> every endpoint of that service, for each destination service; the
    MeshContext's tuples themselves (shared, never copied). Unlike Kuma, not narrowed to the
    destination selectors: subset load balancing does that in Envoy."""
    transparent_proxying: Any | None = None
    """`networking.transparentProxying` (None when absent)."""
    mtls: bool = False
    """The mesh has mTLS on (`mtls.enabledBackend` set)."""
    health_checks: Mapping[str, Resource] = field(default_factory=dict)
    """Destination service -> the HealthCheck selected for it."""
    circuit_breakers: Mapping[str, Resource] = field(default_factory=dict)
    """Destination service -> the CircuitBreaker selected for it."""
    passthrough_log: Any | None = None
    """The LoggingBackend for traffic leaving through `outbound:passthrough`."""
    traffic_trace: Resource | None = None
    tracing_backend: Any | None = None
    """The mesh TracingBackend the selected TrafficTrace names (or the default one)."""
    proxy_template: Resource | None = None
    """The ProxyTemplate selected for this dataplane (None: Kuma's default template)."""

    @property
    def address(self) -> str:
        networking = self.dataplane.spec.networking
        return networking.address if networking is not None else ""

    @property
    def gateway(self) -> bool:
        networking = self.dataplane.spec.networking
        return networking is not None and networking.gateway is not None


def mtls_enabled(mesh: Resource) -> bool:
    mtls = mesh.spec.mtls
    return mtls is not None and bool(mtls.enabled_backend)


def logging_backend(mesh: Resource, name: str) -> Any | None:
    """The mesh logging backend `name` (`""`: the default backend), or None."""
    logging = mesh.spec.logging
    if logging is None:
        return None
    wanted = name or logging.default_backend
    if not wanted:
        return None
    for backend in logging.backends:
        if backend.name == wanted:
            return backend
    return None


def tracing_backend(mesh: Resource, name: str) -> Any | None:
    """The mesh tracing backend `name` (`""`: the default backend), or None."""
    tracing = mesh.spec.tracing
    if tracing is None:
        return None
    wanted = name or tracing.default_backend
    for backend in tracing.backends:
        if backend.name == wanted:
            return backend
    return None


def _conf_backend(policy: Resource) -> str:
    conf = policy.spec.conf
    return conf.backend if conf is not None else ""


def _implicit_route(tags: Mapping[str, str]) -> Route:
    return Route(IMPLICIT_ROUTE_NAME, ((100, dict(tags)),))


def _route_of(resource: Resource) -> Route:
    conf = tuple((entry.weight, dict(entry.destination)) for entry in resource.spec.conf)
    return Route(resource.meta.name, conf, resource)


def _vip_outbounds(
    ctx: MeshContext, dataplane: Resource, vips: Mapping[str, str]
) -> list[tuple[str, int, dict[str, str]]]:
    """Kuma's VIP outbounds: `<vip>:80` for every service of every other dataplane that has a
    VIP, sorted by service."""
    services = set()
    for name, dp in ctx.dataplanes.items():
        if name == dataplane.meta.name:
            continue
        networking = dp.spec.networking
        if networking is None:
            continue
        for inbound in networking.inbound:
            service = inbound.tags.get(SERVICE_TAG)
            if service is not None and service in vips:
                services.add(service)
    return [(vips[s], VIP_PORT, {SERVICE_TAG: s}) for s in sorted(services)]


def _matching(
    endpoints: Sequence[Endpoint], selectors: Sequence[Mapping[str, str]], service: str
) -> Iterable[Endpoint]:
    # Most selectors are just {kuma.io/service: <svc>}, which every endpoint of svc matches.
    if all(len(s) == 1 and s.get(SERVICE_TAG) == service for s in selectors):
        return endpoints
    return [ep for ep in endpoints if any(selector_matches(s, ep.tags) for s in selectors)]


# -- policy selection, indexed --------------------------------------------------------------------
#
# kuma.model.policy states Kuma's rules; these indexes give the same answers without scanning
# every policy of a type for every dataplane (a TrafficPermission change regenerates every proxy
# of the mesh). An index is built once per policy tuple (the catalog replaces a type's tuple when
# one of its policies changes) and kept in a small cache holding the tuple, so its id stays valid.

_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)
_INDEX_CACHE_SIZE = 256


def _created(policy: Resource) -> dt.datetime:
    return policy.meta.creation_time or _EPOCH


_Entry = tuple[int, int, Rank]
"""(position of the policy in name order, position of the selector in the policy, its rank)"""


def _merge(*lists: Sequence[_Entry]) -> list[_Entry]:
    merged = [e for entries in lists for e in entries]
    merged.sort(key=lambda e: (e[0], e[1]))
    return merged


class _ConnectionIndex:
    """Connection policies (sources + destinations) of one type, by destination service."""

    __slots__ = ("by_service", "policies", "source_selectors", "sources", "wildcard")

    def __init__(self, policies: Sequence[Resource]) -> None:
        self.policies = sorted(policies, key=lambda p: p.meta.name)  # stable, like Kuma
        selectors: dict[tuple[tuple[str, str], ...], int] = {}
        self.source_selectors: list[tuple[dict[str, str], Rank]] = []
        self.sources: list[list[int]] = []  # per policy: indexes into source_selectors
        self.by_service: dict[str, list[_Entry]] = {}
        self.wildcard: list[_Entry] = []
        for i, policy in enumerate(self.policies):
            refs = []
            for source in policy.spec.sources:
                key = tuple(sorted(source.match.items()))
                ref = selectors.get(key)
                if ref is None:
                    ref = selectors[key] = len(self.source_selectors)
                    self.source_selectors.append((dict(source.match), rank(source.match)))
                refs.append(ref)
            self.sources.append(refs)
            for j, destination in enumerate(policy.spec.destinations):
                match = destination.match
                if any(k != SERVICE_TAG for k in match):
                    continue  # matches no `{kuma.io/service: x}`
                entry = (i, j, rank(match))
                value = match.get(SERVICE_TAG)
                if value is None or value == MATCH_ALL:
                    self.wildcard.append(entry)
                else:
                    self.by_service.setdefault(value, []).append(entry)

    def select(self, dataplane: Any, services: Iterable[str]) -> dict[str, Resource]:
        """`kuma.model.policy.select_connection_policies`, answered from the index."""
        matched = [dataplane_matches(dataplane, sel) for sel, _ in self.source_selectors]
        source_rank: list[Rank | None] = []
        for refs in self.sources:
            best: Rank | None = None
            for ref in refs:
                if matched[ref]:
                    r = self.source_selectors[ref][1]
                    if best is None or r.compare(best) > 0:
                        best = r
            source_rank.append(best)
        result: dict[str, Resource] = {}
        for service in services:
            if service in result:
                continue
            exact = self.by_service.get(service, ())
            entries = (
                _merge(exact, self.wildcard)
                if exact and self.wildcard
                else (exact or self.wildcard)
            )
            chosen: Resource | None = None
            chosen_rank = Rank()
            for i, _, dest_rank in entries:
                src = source_rank[i]
                if src is None:
                    continue
                aggregate = dest_rank + src
                policy = self.policies[i]
                if (
                    chosen is None
                    or aggregate.compare(chosen_rank) > 0
                    or (aggregate.compare(chosen_rank) == 0 and _created(policy) > _created(chosen))
                ):
                    chosen, chosen_rank = policy, aggregate
            if chosen is not None:
                result[service] = chosen
        return result


class _InboundIndex:
    """Inbound policies (best destination match per inbound), by the destination's service."""

    __slots__ = ("by_service", "other", "policies", "selectors", "wildcard")

    def __init__(self, policies: Sequence[Resource]) -> None:
        self.policies = sorted(policies, key=lambda p: p.meta.name)
        self.selectors: dict[tuple[int, int], Mapping[str, str]] = {}
        self.by_service: dict[str, list[_Entry]] = {}
        self.wildcard: list[_Entry] = []
        self.other: list[_Entry] = []  # selectors without a service tag: checked every time
        for i, policy in enumerate(self.policies):
            for j, destination in enumerate(policy.spec.destinations):
                match = destination.match
                self.selectors[(i, j)] = match
                entry = (i, j, rank(match))
                value = match.get(SERVICE_TAG)
                if value is None:
                    self.other.append(entry)
                elif value == MATCH_ALL:
                    self.wildcard.append(entry)
                else:
                    self.by_service.setdefault(value, []).append(entry)

    def select(self, tags: Mapping[str, str]) -> Resource | None:
        """The policy `kuma.model.policy.select_inbound_policies` picks for an inbound."""
        service = tags.get(SERVICE_TAG)
        exact = self.by_service.get(service, ()) if service is not None else ()
        entries = _merge(exact, self.wildcard, self.other)
        best: Resource | None = None
        best_rank = Rank()
        for i, j, r in entries:
            if not selector_matches(self.selectors[(i, j)], tags):
                continue
            policy = self.policies[i]
            if (
                r.compare(best_rank) > 0
                or best is None
                or (r.compare(best_rank) == 0 and _created(policy) > _created(best))
            ):
                best, best_rank = policy, r
        return best


_index_cache: dict[tuple[str, int], tuple[tuple[Resource, ...], Any]] = {}


def _index(kind: str, policies: tuple[Resource, ...]) -> Any:
    key = (kind, id(policies))
    cached = _index_cache.get(key)
    if cached is not None and cached[0] is policies:
        return cached[1]
    index = _ConnectionIndex(policies) if kind == "connection" else _InboundIndex(policies)
    if len(_index_cache) >= _INDEX_CACHE_SIZE:
        for old in list(_index_cache)[: _INDEX_CACHE_SIZE // 2]:
            del _index_cache[old]
    _index_cache[key] = (policies, index)
    return index


def select_connection_policies_indexed(
    dataplane: Any, services: Iterable[str], policies: tuple[Resource, ...]
) -> dict[str, Resource]:
    """Same answer as `kuma.model.policy.select_connection_policies` (indexed, cached)."""
    index: _ConnectionIndex = _index("connection", policies)
    return index.select(dataplane, services)


def select_inbound_policy_indexed(
    tags: Mapping[str, str], policies: tuple[Resource, ...]
) -> Resource | None:
    """Same answer as `kuma.model.policy.select_inbound_policies` for one inbound's tags."""
    index: _InboundIndex = _index("inbound", policies)
    return index.select(tags)


def build_proxy(
    ctx: MeshContext,
    dataplane: Resource,
    metadata: DataplaneMetadata | None = None,
    *,
    vips: Mapping[str, str] | None = None,
) -> Proxy:
    """Resolve one dataplane against its mesh (see the module docstring).

    `vips` (service -> virtual IP) adds Kuma's VIP outbounds to a dataplane with transparent
    proxying; without it (kuma-py has no VIP allocator yet) none are added.
    """
    spec = dataplane.spec
    networking = spec.networking
    metadata = metadata if metadata is not None else DataplaneMetadata()
    proxy_id = ProxyId(dataplane.meta.mesh or ctx.name, dataplane.meta.name)
    if networking is None:
        return Proxy(proxy_id, dataplane, metadata, {}, (), (), {}, {}, mtls=mtls_enabled(ctx.mesh))

    # Inbound policies: the best destination match per inbound.
    permissions = ctx.policies_of("TrafficPermission")
    faults = ctx.policies_of("FaultInjection")
    inbounds = []
    for i, inbound in enumerate(networking.inbound):
        inbounds.append(
            ProxyInbound(
                interface=inbound_interface(networking, inbound),
                service=inbound.tags.get(SERVICE_TAG, ""),
                protocol=parse_protocol(inbound.tags.get(PROTOCOL_TAG)),
                tags=inbound.tags,
                index=i,
                permission=(
                    select_inbound_policy_indexed(inbound.tags, permissions)
                    if permissions
                    else None
                ),
                fault_injection=(
                    select_inbound_policy_indexed(inbound.tags, faults) if faults else None
                ),
            )
        )

    raw_outbounds = [
        (o.address or DEFAULT_OUTBOUND_ADDRESS, o.port, outbound_tags(o))
        for o in networking.outbound
    ]
    tp = networking.transparent_proxying
    if tp is not None and vips:
        raw_outbounds += _vip_outbounds(ctx, dataplane, vips)

    # The most specific TrafficRoute per outbound service.
    traffic_routes = ctx.policies_of("TrafficRoute")
    chosen: dict[str, Resource] = {}
    if traffic_routes and raw_outbounds:
        services = sorted({tags.get(SERVICE_TAG, "") for _, _, tags in raw_outbounds})
        chosen = select_connection_policies_indexed(spec, services, traffic_routes)

    routes: list[tuple[str, int, dict[str, str], Route]] = []
    destinations: dict[str, list[Mapping[str, str]]] = {}
    routes_by_resource: dict[int, Route] = {}
    for address, port, tags in raw_outbounds:
        service = tags.get(SERVICE_TAG, "")
        policy = chosen.get(service)
        if policy is None:
            route = _implicit_route(tags)
        else:
            route = routes_by_resource.get(id(policy)) or _route_of(policy)
            routes_by_resource[id(policy)] = route
        routes.append((address, port, tags, route))
        for _, destination in route.conf:
            target = destination.get(SERVICE_TAG)
            if target is None:
                continue  # validation requires it; Kuma ignores such destinations too
            selectors = destinations.setdefault(target, [])
            if destination not in selectors:
                selectors.append(destination)

    endpoints = {service: ctx.endpoints.get(service, ()) for service in destinations}

    # Connection policies per destination service (HealthCheck, CircuitBreaker, Retry) and per
    # outbound service plus pass_through (TrafficLog, Timeout).
    def per_service(type_name: str, services: Iterable[str]) -> dict[str, Resource]:
        policies = ctx.policies_of(type_name)
        if not policies:
            return {}
        return select_connection_policies_indexed(spec, services, policies)

    destination_services = sorted(destinations)
    health_checks = per_service("HealthCheck", destination_services)
    circuit_breakers = per_service("CircuitBreaker", destination_services)
    retries = per_service("Retry", destination_services)
    outbound_services = sorted({tags.get(SERVICE_TAG, "") for _, _, tags in raw_outbounds})
    timeouts = per_service("Timeout", outbound_services)
    traffic_logs = per_service("TrafficLog", [*outbound_services, PASS_THROUGH_SERVICE])
    logs = {
        service: backend
        for service, policy in traffic_logs.items()
        if (backend := logging_backend(ctx.mesh, _conf_backend(policy))) is not None
    }

    outbounds = []
    for address, port, tags, route in routes:
        subsets = tuple(
            ClusterSubset(destination[SERVICE_TAG], weight, destination)
            for weight, destination in route.conf
            if weight > 0 and SERVICE_TAG in destination
        )
        protocol = PROTOCOL_UNKNOWN
        if subsets:
            protocol = infer_protocol(
                ep
                for subset in subsets
                for ep in _matching(
                    endpoints[subset.cluster], destinations[subset.cluster], subset.cluster
                )
            )
        outbounds.append(
            ProxyOutbound(
                address=address,
                port=port,
                service=tags.get(SERVICE_TAG, ""),
                tags=tags,
                route=route,
                subsets=subsets,
                protocol=protocol if protocol != PROTOCOL_UNKNOWN else PROTOCOL_TCP,
                log=logs.get(tags.get(SERVICE_TAG, "")),
                timeout=timeouts.get(tags.get(SERVICE_TAG, "")),
                retry=retries.get(tags.get(SERVICE_TAG, "")),
            )
        )

    traces = ctx.policies_of("TrafficTrace")
    trace = select_dataplane_policy(spec, traces) if traces else None
    templates = ctx.policies_of("ProxyTemplate")

    return Proxy(
        id=proxy_id,
        dataplane=dataplane,
        metadata=metadata,
        tags=dataplane_tags(spec),
        inbounds=tuple(inbounds),
        outbounds=tuple(outbounds),
        destinations={s: tuple(sel) for s, sel in destinations.items()},
        endpoints=endpoints,
        transparent_proxying=tp,
        mtls=mtls_enabled(ctx.mesh),
        health_checks=health_checks,
        circuit_breakers=circuit_breakers,
        passthrough_log=logs.get(PASS_THROUGH_SERVICE),
        traffic_trace=trace,
        tracing_backend=tracing_backend(ctx.mesh, _conf_backend(trace)) if trace else None,
        proxy_template=select_dataplane_policy(spec, templates) if templates else None,
    )
