"""dataplanes+insights and zones+insights (Kuma's dataplane/zone overview endpoint tests)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.resource import ResourceKey, ResourceType
from kuma.model.rest import resource_from_dict
from tests.api.samples import sample_body
from tests.api.support import PUBLIC_URL, assert_golden, snapshot

pytestmark = pytest.mark.anyio

INSIGHT = {
    "subscriptions": [
        {
            "id": "stream-id-1",
            "controlPlaneInstanceId": "cp-1",
            "connectTime": "2019-07-01T00:00:00Z",
            "status": {"total": {}, "cds": {}, "eds": {}, "lds": {}, "rds": {}},
        }
    ]
}


async def put_raw(
    manager: ResourceManager, rtype: ResourceType, name: str, mesh: str, spec: dict[str, Any]
) -> None:
    """Straight into the store, like Kuma's test (no validation, no ownership)."""
    body: dict[str, Any] = {"type": rtype.name, "name": name, **spec}
    if rtype.mesh_scoped:
        body["mesh"] = mesh
    owner = ResourceKey("Mesh", "", mesh) if rtype.mesh_scoped else None
    await manager.store.create(resource_from_dict(body), owner=owner)


@pytest.fixture
async def mesh1(manager: ResourceManager) -> ResourceManager:
    await manager.create(resource_from_dict({"type": "Mesh", "name": "mesh1"}))
    dataplanes: dict[str, dict[str, Any]] = {
        "dp-1": {
            "networking": {"address": "127.0.0.1", "gateway": {"tags": {"service": "gateway"}}}
        },
        "dp-2": {
            "networking": {
                "address": "127.0.0.1",
                "inbound": [{"port": 1234, "tags": {"service": "backend", "version": "v1"}}],
            }
        },
        "dp-3": {
            "networking": {"address": "127.0.0.1", "ingress": {}, "inbound": [{"port": 1234}]}
        },
        "dp-4": {
            "networking": {
                "address": "127.0.0.2",
                "inbound": [{"port": 1234, "tags": {"service": "backend", "version": "v2"}}],
            }
        },
    }
    for name, spec in dataplanes.items():
        await put_raw(manager, registry.DATAPLANE, name, "mesh1", spec)
        if name != "dp-4":  # dp-4 never connected: no insight
            await put_raw(manager, registry.DATAPLANE_INSIGHT, name, "mesh1", INSIGHT)
    return manager


async def names(client: httpx.AsyncClient, url: str) -> tuple[int, list[str]]:
    r = await client.get(url)
    assert r.status_code == 200, r.text
    body = r.json()
    return body["total"], [i["name"] for i in body["items"]]


async def test_single_overview(mesh1: ResourceManager, client: httpx.AsyncClient) -> None:
    r = await client.get("/meshes/mesh1/dataplanes+insights/dp-1")
    assert r.status_code == 200
    assert_golden("overviews/dp-1.json", r.text)
    body = r.json()
    assert body["type"] == "DataplaneOverview"
    assert body["dataplaneInsight"] == INSIGHT


async def test_single_overview_without_insight_has_an_empty_insight(
    mesh1: ResourceManager, client: httpx.AsyncClient
) -> None:
    r = await client.get("/meshes/mesh1/dataplanes+insights/dp-4")
    assert r.status_code == 200
    assert r.json()["dataplaneInsight"] == {}
    assert_golden("overviews/dp-4.json", r.text)


async def test_missing_overview(mesh1: ResourceManager, client: httpx.AsyncClient) -> None:
    r = await client.get("/meshes/mesh1/dataplanes+insights/nope")
    assert r.status_code == 404
    assert r.json() == {"title": "Could not retrieve a dataplane overview", "details": "Not found"}


async def test_list(mesh1: ResourceManager, client: httpx.AsyncClient) -> None:
    r = await client.get("/meshes/mesh1/dataplanes+insights")
    assert r.status_code == 200
    assert_golden("overviews/list_mesh1.json", r.text)
    items = r.json()["items"]
    assert [i["name"] for i in items] == ["dp-1", "dp-2", "dp-3", "dp-4"]
    # in a list, an overview without an insight has no insight key (Kuma renders nil)
    assert "dataplaneInsight" not in items[3]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["dp-1", "dp-2", "dp-3", "dp-4"]),
        ("?tag=service:backend", ["dp-2", "dp-4"]),
        ("?tag=service:backend&tag=version:v1", ["dp-2"]),
        ("?tag=service:backend&tag=version:v3", []),
        ("?tag=service:*", ["dp-1", "dp-2", "dp-4"]),
        ("?tag=version:*", ["dp-2", "dp-4"]),
        ("?tag=service:gateway", ["dp-1"]),
        ("?tag=malformed&tag=a:b:c&tag=service:backend", ["dp-2", "dp-4"]),
        ("?gateway=true", ["dp-1"]),
        ("?ingress=true", ["dp-3"]),
        ("?gateway=false", ["dp-1", "dp-2", "dp-3", "dp-4"]),
        ("?gateway=true&tag=service:backend", []),
        ("?tag=&tag=service:gateway", ["dp-1"]),
        ("?tag=version:%C3%BC", []),
    ],
)
async def test_filters(
    mesh1: ResourceManager, client: httpx.AsyncClient, query: str, expected: list[str]
) -> None:
    total, got = await names(client, f"/meshes/mesh1/dataplanes+insights{query}")
    assert got == expected
    assert total == len(expected)


async def test_filtered_list_golden(mesh1: ResourceManager, client: httpx.AsyncClient) -> None:
    r = await client.get("/meshes/mesh1/dataplanes+insights?tag=service:backend&tag=version:v1")
    assert_golden("overviews/list_tag_filtered.json", r.text)


@pytest.mark.parametrize(
    "query",
    ["?tag=service:backend&size=1", "?gateway=true&offset=1", "?ingress=true&size=10&offset=0"],
)
async def test_paging_and_filtering_together_are_refused(
    mesh1: ResourceManager, client: httpx.AsyncClient, query: str
) -> None:
    for path in ("/meshes/mesh1/dataplanes+insights", "/dataplanes+insights"):
        r = await client.get(path + query)
        assert r.status_code == 400
        assert r.json() == {
            "title": "Could not retrieve dataplane overviews",
            "details": "Pagination and filtering at the same time is not supported",
        }
    assert_golden("overviews/pagination_with_filter.json", r.text)


async def test_bad_page_size(mesh1: ResourceManager, client: httpx.AsyncClient) -> None:
    r = await client.get("/meshes/mesh1/dataplanes+insights?size=x")
    assert r.status_code == 400
    assert r.json()["title"] == "Could not retrieve dataplane overviews"
    assert r.json()["details"] == "Invalid page size"


async def test_paging(mesh1: ResourceManager, client: httpx.AsyncClient) -> None:
    r = await client.get("/meshes/mesh1/dataplanes+insights?size=3")
    body = r.json()
    assert [i["name"] for i in body["items"]] == ["dp-1", "dp-2", "dp-3"]
    assert body["total"] == 4
    assert body["next"] == f"{PUBLIC_URL}/meshes/mesh1/dataplanes+insights?offset=3&size=3"
    rest = (await client.get(body["next"].removeprefix(PUBLIC_URL))).json()
    assert [i["name"] for i in rest["items"]] == ["dp-4"]
    assert rest["next"] is None


async def test_filters_cover_every_dataplane_not_just_a_page(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    for i in range(105):
        body = sample_body(registry.DATAPLANE, f"dp-{i:03d}")
        body["networking"]["inbound"][0]["tags"]["kuma.io/service"] = "odd" if i % 2 else "even"
        await manager.create(resource_from_dict(body))
    total, got = await names(client, "/meshes/default/dataplanes+insights?tag=kuma.io/service:odd")
    assert total == 52
    assert len(got) == 52
    unfiltered = (await client.get("/meshes/default/dataplanes+insights")).json()
    assert unfiltered["total"] == 105
    assert len(unfiltered["items"]) == 100


async def test_across_meshes(mesh1: ResourceManager, client: httpx.AsyncClient) -> None:
    await mesh1.create(resource_from_dict(sample_body(registry.DATAPLANE, "dp-0")))
    total, got = await names(client, "/dataplanes+insights")
    assert total == 5
    assert got == ["dp-0", "dp-1", "dp-2", "dp-3", "dp-4"]
    r = await client.get("/dataplanes+insights?tag=version:v1")
    assert [(i["mesh"], i["name"]) for i in r.json()["items"]] == [
        ("default", "dp-0"),
        ("mesh1", "dp-2"),
    ]


async def test_insight_updates_show_up(mesh1: ResourceManager, client: httpx.AsyncClient) -> None:
    before = (await client.get("/meshes/mesh1/dataplanes+insights/dp-2")).json()
    insight = await mesh1.get(registry.DATAPLANE_INSIGHT, "dp-2", "mesh1")
    insight.spec.subscriptions[0].id = "stream-id-2"
    await mesh1.update(insight)
    after = (await client.get("/meshes/mesh1/dataplanes+insights/dp-2")).json()
    assert before["dataplaneInsight"]["subscriptions"][0]["id"] == "stream-id-1"
    assert after["dataplaneInsight"]["subscriptions"][0]["id"] == "stream-id-2"
    listed = (await client.get("/meshes/mesh1/dataplanes+insights")).json()
    assert listed["items"][1]["dataplaneInsight"]["subscriptions"][0]["id"] == "stream-id-2"


async def test_overviews_are_read_only(mesh1: ResourceManager, client: httpx.AsyncClient) -> None:
    before = await snapshot(mesh1)
    r = await client.put("/meshes/mesh1/dataplanes+insights/dp-1", json={})
    assert r.status_code == 405
    assert await snapshot(mesh1) == before


# -- zones ---------------------------------------------------------------------------------------


@pytest.fixture
async def zones(manager: ResourceManager) -> ResourceManager:
    for i in (1, 2, 3):
        zone = sample_body(registry.ZONE, f"zone-{i}")
        zone["ingress"]["address"] = f"10.20.1.{i}:1000{i}"
        await manager.create(resource_from_dict(zone))
    for i in (1, 2):
        insight = {
            "subscriptions": [
                {
                    "id": "stream-id-1",
                    "globalInstanceId": "cp-1",
                    "connectTime": "2019-07-01T00:00:00Z",
                    "status": {"total": {}},
                }
            ]
        }
        await put_raw(manager, registry.ZONE_INSIGHT, f"zone-{i}", "default", insight)
    return manager


async def test_zone_overview(zones: ResourceManager, client: httpx.AsyncClient) -> None:
    r = await client.get("/zones+insights/zone-1")
    assert r.status_code == 200
    assert_golden("overviews/zone-1.json", r.text)
    assert r.json()["mesh"] == "default"  # Kuma keeps zones in mesh default
    without = (await client.get("/zones+insights/zone-3")).json()
    assert without["zoneInsight"] == {}
    missing = await client.get("/zones+insights/nope")
    assert missing.status_code == 404
    assert missing.json() == {"title": "Could not retrieve a zone overview", "details": "Not found"}


async def test_zone_overviews(zones: ResourceManager, client: httpx.AsyncClient) -> None:
    r = await client.get("/zones+insights")
    assert r.status_code == 200
    assert_golden("overviews/zones.json", r.text)
    items = r.json()["items"]
    assert [i["name"] for i in items] == ["zone-1", "zone-2", "zone-3"]
    assert "zoneInsight" not in items[2]
    page = (await client.get("/zones+insights?size=2")).json()
    assert page["total"] == 3
    assert page["next"] == f"{PUBLIC_URL}/zones+insights?offset=2&size=2"
