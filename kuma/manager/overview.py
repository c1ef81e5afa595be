"""Overviews: a Dataplane (or Zone) joined with its insight, as the REST API serves them.

A DataplaneInsight has the same mesh and name as its Dataplane; a ZoneInsight lives in mesh
`default` under its Zone's name. Joins work on the stored JSON of each spec, never decoding a
message, so listing thousands of overviews stays cheap.

Shapes (Kuma 0.7.3, `pkg/core/resources/apis/{mesh,system}/*_overview.go`):

    {"type": "DataplaneOverview", "mesh": "default", "name": "dp-1",
     "creationTime": "...", "modificationTime": "...",
     "dataplane": {...spec}, "dataplaneInsight": {...spec}}

    {"type": "ZoneOverview", "mesh": "default", "name": "zone-1", ...,
     "zone": {...spec}, "zoneInsight": {...spec}}

A single overview without an insight carries an empty insight object (`"dataplaneInsight": {}`);
in a list, an overview without an insight has no insight key at all. That is how Kuma renders
them (a cloned empty message vs a nil one) and clients (the GUI, kumactl) rely on neither.
The meta (times) is the Dataplane's. A ZoneOverview carries `"mesh": "default"` because Kuma
keeps zones in that mesh.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kuma.errors import ResourceNotFoundError
from kuma.manager.manager import ResourceManager
from kuma.model import codec, registry
from kuma.model.resource import Resource
from kuma.model.selectors import selector_matches

__all__ = [
    "DATAPLANE_OVERVIEW",
    "ZONE_INSIGHTS_MESH",
    "ZONE_OVERVIEW",
    "DataplaneOverview",
    "OverviewList",
    "ZoneOverview",
    "get_dataplane_overview",
    "get_zone_overview",
    "join_dataplane_overviews",
    "join_zone_overviews",
    "list_dataplane_overviews",
    "list_zone_overviews",
    "parse_tag_filters",
]

T = TypeVar("T")

DATAPLANE_OVERVIEW = "DataplaneOverview"
ZONE_OVERVIEW = "ZoneOverview"
ZONE_INSIGHTS_MESH = "default"
"""Kuma keeps every ZoneInsight (and, in its own store, every Zone) in mesh `default`."""


def _meta_dict(type_name: str, mesh: str, resource: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_name, "mesh": mesh, "name": resource.meta.name}
    if resource.meta.creation_time is not None:
        out["creationTime"] = codec.format_timestamp(resource.meta.creation_time, nano_style=True)
    if resource.meta.modification_time is not None:
        out["modificationTime"] = codec.format_timestamp(
            resource.meta.modification_time, nano_style=True
        )
    return out


@dataclass(slots=True)
class DataplaneOverview:
    """A Dataplane and its DataplaneInsight (None when kuma-dp never connected)."""

    dataplane: Resource
    insight: Resource | None
    _spec: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def mesh(self) -> str:
        return self.dataplane.meta.mesh

    @property
    def name(self) -> str:
        return self.dataplane.meta.name

    def dataplane_spec(self) -> dict[str, Any]:
        """The Dataplane's spec as proto3 JSON (parsed once, from the stored text)."""
        if self._spec is None:
            self._spec = self.dataplane.spec_dict()
        return self._spec

    def _networking(self) -> Mapping[str, Any]:
        networking = self.dataplane_spec().get("networking")
        return networking if isinstance(networking, Mapping) else {}

    def is_gateway(self) -> bool:
        return self._networking().get("gateway") is not None

    def is_ingress(self) -> bool:
        return self._networking().get("ingress") is not None

    def matches_tags(self, selector: Mapping[str, str]) -> bool:
        """Kuma's Dataplane.MatchTags: any inbound's tags, or the gateway's, match `selector`.

        `*` as a value matches any value of that tag.
        """
        networking = self._networking()
        for inbound in networking.get("inbound") or ():
            if selector_matches(selector, inbound.get("tags") or {}):
                return True
        gateway = networking.get("gateway")
        return gateway is not None and selector_matches(selector, gateway.get("tags") or {})

    def to_dict(self, *, empty_insight: bool = False) -> dict[str, Any]:
        """The REST shape. `empty_insight` renders a missing insight as `{}` (single GET)."""
        out = _meta_dict(DATAPLANE_OVERVIEW, self.mesh, self.dataplane)
        out["dataplane"] = self.dataplane_spec()
        if self.insight is not None:
            out["dataplaneInsight"] = self.insight.spec_dict()
        elif empty_insight:
            out["dataplaneInsight"] = {}
        return out


@dataclass(slots=True)
class ZoneOverview:
    """A Zone and its ZoneInsight (None when the zone never connected to the global CP)."""

    zone: Resource
    insight: Resource | None

    @property
    def name(self) -> str:
        return self.zone.meta.name

    def address(self) -> str:
        """`ingress.address` of the zone, or ""."""
        ingress = self.zone.spec_dict().get("ingress")
        if isinstance(ingress, Mapping):
            address = ingress.get("address")
            if isinstance(address, str):
                return address
        return ""

    def is_online(self) -> bool:
        """Kuma's ZoneInsight.IsOnline: some subscription connected and not yet disconnected."""
        if self.insight is None:
            return False
        for sub in self.insight.spec_dict().get("subscriptions") or ():
            if sub.get("connectTime") is not None and sub.get("disconnectTime") is None:
                return True
        return False

    def to_dict(self, *, empty_insight: bool = False) -> dict[str, Any]:
        out = _meta_dict(ZONE_OVERVIEW, ZONE_INSIGHTS_MESH, self.zone)
        out["zone"] = self.zone.spec_dict()
        if self.insight is not None:
            out["zoneInsight"] = self.insight.spec_dict()
        elif empty_insight:
            out["zoneInsight"] = {}
        return out


@dataclass(slots=True)
class OverviewList(Generic[T]):
    items: list[T]
    total: int
    """Number of resources before paging (of the underlying Dataplanes or Zones)."""
    next_offset: str | None


# -- joins -------------------------------------------------------------------------------------


def join_dataplane_overviews(
    dataplanes: Iterable[Resource], insights: Iterable[Resource]
) -> list[DataplaneOverview]:
    """One overview per Dataplane, in the Dataplanes' order, with the insight of the same key."""
    by_key = {(i.meta.mesh, i.meta.name): i for i in insights}
    return [DataplaneOverview(dp, by_key.get((dp.meta.mesh, dp.meta.name))) for dp in dataplanes]


def join_zone_overviews(
    zones: Iterable[Resource], insights: Iterable[Resource]
) -> list[ZoneOverview]:
    by_name = {i.meta.name: i for i in insights if i.meta.mesh == ZONE_INSIGHTS_MESH}
    return [ZoneOverview(z, by_name.get(z.meta.name)) for z in zones]


# -- reads through the manager -----------------------------------------------------------------


async def get_dataplane_overview(
    manager: ResourceManager, name: str, mesh: str
) -> DataplaneOverview:
    """Raises ResourceNotFoundError when the Dataplane does not exist."""
    dataplane = await manager.get(registry.DATAPLANE, name, mesh)
    try:
        insight: Resource | None = await manager.get(registry.DATAPLANE_INSIGHT, name, mesh)
    except ResourceNotFoundError:
        insight = None
    return DataplaneOverview(dataplane, insight)


async def list_dataplane_overviews(
    manager: ResourceManager,
    mesh: str | None,
    *,
    size: int | None = None,
    offset: str | None = None,
) -> OverviewList[DataplaneOverview]:
    """A page of Dataplanes (`mesh=None`: every mesh) joined with their insights.

    Insights are listed whole: a page of Dataplanes says nothing about which insights match.
    """
    dataplanes = await manager.list(registry.DATAPLANE, mesh, size=size, offset=offset)
    if not dataplanes.items:
        return OverviewList([], dataplanes.total, dataplanes.next_offset)
    insights = await manager.list(registry.DATAPLANE_INSIGHT, mesh)
    return OverviewList(
        join_dataplane_overviews(dataplanes.items, insights.items),
        dataplanes.total,
        dataplanes.next_offset,
    )


async def get_zone_overview(manager: ResourceManager, name: str) -> ZoneOverview:
    """Raises ResourceNotFoundError when the Zone does not exist."""
    zone = await manager.get(registry.ZONE, name)
    try:
        insight: Resource | None = await manager.get(
            registry.ZONE_INSIGHT, name, ZONE_INSIGHTS_MESH
        )
    except ResourceNotFoundError:
        insight = None
    return ZoneOverview(zone, insight)


async def list_zone_overviews(
    manager: ResourceManager, *, size: int | None = None, offset: str | None = None
) -> OverviewList[ZoneOverview]:
    zones = await manager.list(registry.ZONE, size=size, offset=offset)
    if not zones.items:
        return OverviewList([], zones.total, zones.next_offset)
    insights = await manager.list(registry.ZONE_INSIGHT, ZONE_INSIGHTS_MESH)
    return OverviewList(
        join_zone_overviews(zones.items, insights.items), zones.total, zones.next_offset
    )


def parse_tag_filters(values: Iterable[str]) -> dict[str, str]:
    """`tag=k:v` query values as a selector; values that are not exactly `k:v` are ignored.

    Like Kuma, the value is split on every `:`, so `a:b:c` is ignored rather than guessed at.
    """
    tags: dict[str, str] = {}
    for value in values:
        parts = value.split(":")
        if len(parts) == 2:
            tags[parts[0]] = parts[1]
    return tags
