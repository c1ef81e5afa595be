"""kuma.manager.overview: joins, filters and tag parsing, without HTTP."""

from __future__ import annotations

import pytest

from kuma.manager import ResourceManager
from kuma.manager.overview import (
    DataplaneOverview,
    get_dataplane_overview,
    join_dataplane_overviews,
    join_zone_overviews,
    list_dataplane_overviews,
    parse_tag_filters,
)
from kuma.model import registry
from kuma.model.resource import Resource
from kuma.model.rest import resource_from_dict
from tests.api.samples import sample_body

pytestmark = pytest.mark.anyio


def dp(name: str, mesh: str = "default", **tags: str) -> Resource:
    body = sample_body(registry.DATAPLANE, name, mesh)
    body["networking"]["inbound"][0]["tags"] = {"kuma.io/service": "backend", **tags}
    return resource_from_dict(body)


def insight(name: str, mesh: str = "default") -> Resource:
    return resource_from_dict(sample_body(registry.DATAPLANE_INSIGHT, name, mesh))


def test_join_matches_mesh_and_name() -> None:
    overviews = join_dataplane_overviews(
        [dp("a"), dp("b"), dp("a", "other")], [insight("a"), insight("b", "other")]
    )
    assert [(o.mesh, o.name, o.insight is not None) for o in overviews] == [
        ("default", "a", True),
        ("default", "b", False),
        ("other", "a", False),
    ]


def test_to_dict_shapes() -> None:
    with_insight, without = join_dataplane_overviews([dp("a"), dp("b")], [insight("a")])
    assert list(with_insight.to_dict())[:3] == ["type", "mesh", "name"]
    assert with_insight.to_dict()["dataplaneInsight"]["subscriptions"][0]["id"] == "stream-1"
    assert "dataplaneInsight" not in without.to_dict()
    assert without.to_dict(empty_insight=True)["dataplaneInsight"] == {}


def test_matches_tags() -> None:
    overview = DataplaneOverview(dp("a", version="v1"), None)
    assert overview.matches_tags({})
    assert overview.matches_tags({"version": "v1"})
    assert overview.matches_tags({"version": "*", "kuma.io/service": "backend"})
    assert not overview.matches_tags({"version": "v2"})
    assert not overview.matches_tags({"zone": "*"})
    assert not overview.is_gateway()
    assert not overview.is_ingress()


def test_parse_tag_filters() -> None:
    assert parse_tag_filters(["a:b", "bad", "c:d:e", "", "kuma.io/service:web", "a:z"]) == {
        "a": "z",
        "kuma.io/service": "web",
    }


def test_zone_join_uses_insights_of_mesh_default() -> None:
    zones = [resource_from_dict(sample_body(registry.ZONE, n)) for n in ("z1", "z2")]
    insights = [
        resource_from_dict(sample_body(registry.ZONE_INSIGHT, "z1")),
        resource_from_dict(sample_body(registry.ZONE_INSIGHT, "z2", "other")),
    ]
    z1, z2 = join_zone_overviews(zones, insights)
    assert z1.insight is not None
    assert z1.is_online()
    assert z2.insight is None
    assert not z2.is_online()
    assert z1.address() == "10.20.1.1:10001"


async def test_reads_through_the_manager(manager: ResourceManager) -> None:
    await manager.create(dp("a"))
    await manager.create(dp("b"))
    await manager.create(insight("b"))
    single = await get_dataplane_overview(manager, "a", "default")
    assert single.insight is None
    page = await list_dataplane_overviews(manager, "default", size=1)
    assert [o.name for o in page.items] == ["a"]
    assert page.total == 2
    assert page.next_offset == "1"
    rest = await list_dataplane_overviews(manager, "default", size=1, offset="1")
    assert rest.items[0].insight is not None
    assert rest.next_offset is None
