"""Which policy applies where: Kuma 0.7.3's selection, ranking and tie-breaking.

Three families:

* connection policies on outbounds (TrafficRoute, HealthCheck, CircuitBreaker, TrafficLog): the
  best source selector matching the dataplane plus the best destination selector matching the
  outbound service;
* connection policies on inbounds (TrafficPermission, FaultInjection): the best destination
  selector matching the inbound's tags; sources are compiled into Envoy config later;
* dataplane policies (TrafficTrace, ProxyTemplate): the best selector matching the dataplane.

Ties go to the policy created later; at equal creation time, the first by name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from kuma.model.resource import Resource
from kuma.model.selectors import (
    PASS_THROUGH_SERVICE,
    SERVICE_TAG,
    InboundInterface,
    Rank,
    dataplane_matches,
    inbound_interface,
    outbound_service,
    rank,
    selector_matches,
)

__all__ = [
    "outbound_services",
    "select_connection_policies",
    "select_dataplane_policy",
    "select_inbound_policies",
]

_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def _created(policy: Resource) -> dt.datetime:
    return policy.meta.creation_time or _EPOCH


def _by_name(policies: Iterable[Resource]) -> list[Resource]:
    return sorted(policies, key=lambda p: p.meta.name)  # stable, like Go's sort.Stable


def outbound_services(dataplane: Any) -> list[str]:
    """The services a dataplane's outbounds point at, plus the implicit `pass_through`."""
    networking = dataplane.networking
    services = [outbound_service(o) for o in (networking.outbound if networking else [])]
    return [*services, PASS_THROUGH_SERVICE]


def select_connection_policies(
    dataplane: Any, services: Iterable[str], policies: Iterable[Resource]
) -> dict[str, Resource]:
    """The single most specific policy for each destination service (outbound side)."""
    candidates: list[tuple[Resource, Rank]] = []
    for policy in _by_name(policies):
        best: Rank | None = None
        for source in policy.spec.sources:
            if dataplane_matches(dataplane, source.match):
                r = rank(source.match)
                if best is None or r.compare(best) > 0:
                    best = r
        if best is not None:
            candidates.append((policy, best))

    chosen: dict[str, tuple[Resource, Rank]] = {}
    for service in services:
        if service in chosen:
            continue
        tags = {SERVICE_TAG: service}
        for policy, source_rank in candidates:
            for destination in policy.spec.destinations:
                if not selector_matches(destination.match, tags):
                    continue
                aggregate = rank(destination.match) + source_rank
                current = chosen.get(service)
                if (
                    current is None
                    or aggregate.compare(current[1]) > 0
                    or (
                        aggregate.compare(current[1]) == 0
                        and _created(policy) > _created(current[0])
                    )
                ):
                    chosen[service] = (policy, aggregate)
    return {service: pr[0] for service, pr in chosen.items()}


def select_inbound_policies(
    dataplane: Any, policies: Sequence[Resource], inbounds: Iterable[Any] | None = None
) -> dict[InboundInterface, Resource]:
    """The single most specific policy (by destination) for each inbound of a dataplane."""
    networking = dataplane.networking
    ordered = _by_name(policies)
    result: dict[InboundInterface, Resource] = {}
    for inbound in networking.inbound if inbounds is None else inbounds:
        best: Resource | None = None
        best_rank = Rank()
        for policy in ordered:
            for destination in policy.spec.destinations:
                if not selector_matches(destination.match, inbound.tags):
                    continue
                r = rank(destination.match)
                if (
                    r.compare(best_rank) > 0
                    or best is None
                    or (r.compare(best_rank) == 0 and _created(policy) > _created(best))
                ):
                    best, best_rank = policy, r
        if best is not None:
            result[inbound_interface(networking, inbound)] = best
    return result


def select_dataplane_policy(dataplane: Any, policies: Iterable[Resource]) -> Resource | None:
    """The most specific policy whose `selectors` match the dataplane (no selectors = rank 0)."""
    best: Resource | None = None
    best_rank = Rank()

    def same_rank_later(policy: Resource, r: Rank) -> bool:
        return best is not None and r.compare(best_rank) == 0 and _created(policy) > _created(best)

    for policy in _by_name(policies):
        selectors = policy.spec.selectors
        if not selectors:
            if best is None or same_rank_later(policy, Rank()):
                best = policy
            continue
        for selector in selectors:
            if not selector.match:
                if best is None or same_rank_later(policy, Rank()):
                    best = policy
                continue
            if dataplane_matches(dataplane, selector.match):
                r = rank(selector.match)
                if r.compare(best_rank) > 0 or same_rank_later(policy, r):
                    best, best_rank = policy, r
    return best
