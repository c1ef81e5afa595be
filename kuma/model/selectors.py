"""Tag selectors, their ranks, and the tag helpers of Dataplanes (Kuma's dataplane_helpers).

A selector is a `{tag: value}` mapping; `"*"` as a value matches any value of that tag. An empty
selector matches everything. A more specific selector has a higher `Rank`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import total_ordering
from typing import Any

__all__ = [
    "MATCH_ALL",
    "PASS_THROUGH_SERVICE",
    "PROTOCOL_TAG",
    "SERVICE_TAG",
    "SERVICE_UNKNOWN",
    "Rank",
    "dataplane_matches",
    "dataplane_tags",
    "format_tags",
    "identifying_service",
    "inbound_interface",
    "outbound_service",
    "outbound_tags",
    "rank",
    "selector_matches",
]

SERVICE_TAG = "kuma.io/service"
PROTOCOL_TAG = "kuma.io/protocol"
ZONE_TAG = "kuma.io/zone"
INSTANCE_TAG = "kuma.io/instance"
MATCH_ALL = "*"
SERVICE_UNKNOWN = "unknown"
PASS_THROUGH_SERVICE = "pass_through"


@total_ordering
@dataclass(frozen=True, slots=True)
class Rank:
    """How specific a selector is: more tags beats fewer; on a tie, more exact values win."""

    exact: int = 0
    wildcard: int = 0

    def __add__(self, other: Rank) -> Rank:
        return Rank(self.exact + other.exact, self.wildcard + other.wildcard)

    def compare(self, other: Rank) -> int:
        mine, theirs = self.exact + self.wildcard, other.exact + other.wildcard
        if mine == theirs:
            return self.exact - other.exact
        return mine - theirs

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Rank):
            return NotImplemented
        return self.compare(other) < 0


def selector_matches(selector: Mapping[str, str], tags: Mapping[str, str]) -> bool:
    """Every selector tag is present in `tags` with an equal value, or the selector says `*`."""
    for key, want in selector.items():
        have = tags.get(key)
        if have is None:
            return False
        if want != have and want != MATCH_ALL:
            return False
    return True


def rank(selector: Mapping[str, str]) -> Rank:
    wildcard = sum(1 for v in selector.values() if v == MATCH_ALL)
    return Rank(len(selector) - wildcard, wildcard)


def _tag_maps(dataplane: Any) -> Iterable[Mapping[str, str]]:
    networking = dataplane.networking
    if networking is None:
        return []
    maps: list[Mapping[str, str]] = [inbound.tags for inbound in networking.inbound]
    if networking.gateway is not None:
        maps.append(networking.gateway.tags)
    return maps


def dataplane_matches(dataplane: Any, selector: Mapping[str, str]) -> bool:
    """A Dataplane matches when any inbound's tags, or its gateway's tags, match."""
    return any(selector_matches(selector, tags) for tags in _tag_maps(dataplane))


def dataplane_tags(dataplane: Any) -> dict[str, list[str]]:
    """All tag values of a Dataplane's inbounds and gateway: `{tag: sorted distinct values}`."""
    acc: dict[str, set[str]] = {}
    for tags in _tag_maps(dataplane):
        for k, v in tags.items():
            acc.setdefault(k, set()).add(v)
    return {k: sorted(v) for k, v in sorted(acc.items())}


def format_tags(tags: Mapping[str, list[str]]) -> str:
    """`kuma.io/service=backend version=v1,v2`: kumactl's TAGS column."""
    return " ".join(sorted(f"{k}={','.join(vs)}" for k, vs in tags.items()))


def identifying_service(dataplane: Any) -> str:
    """The first (sorted) `kuma.io/service` value, or `unknown`."""
    services = dataplane_tags(dataplane).get(SERVICE_TAG)
    return services[0] if services else SERVICE_UNKNOWN


def outbound_tags(outbound: Any) -> dict[str, str]:
    """An outbound's tags, honouring the deprecated `service` field when it has no tags."""
    if outbound.tags:
        return dict(outbound.tags)
    return {SERVICE_TAG: outbound.service}


def outbound_service(outbound: Any) -> str:
    return outbound_tags(outbound).get(SERVICE_TAG, "")


@dataclass(frozen=True, slots=True)
class InboundInterface:
    """Where an inbound listens (data plane side) and where it forwards (workload side)."""

    data_plane_ip: str
    data_plane_port: int
    workload_ip: str
    workload_port: int

    def __str__(self) -> str:
        return (
            f"{self.data_plane_ip}:{self.data_plane_port}:{self.workload_ip}:{self.workload_port}"
        )


def inbound_interface(networking: Any, inbound: Any) -> InboundInterface:
    return InboundInterface(
        data_plane_ip=inbound.address or networking.address,
        data_plane_port=inbound.port,
        workload_ip=inbound.service_address or "127.0.0.1",
        workload_port=inbound.service_port or inbound.port,
    )
