"""Paging: `size` (default 100, max 1000), `offset`, `next` links, and their error bodies."""

from __future__ import annotations

import httpx
import pytest

from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.rest import resource_from_dict
from tests.api.samples import sample_body
from tests.api.support import PUBLIC_URL, assert_golden

pytestmark = pytest.mark.anyio


async def add_meshes(manager: ResourceManager, n: int) -> list[str]:
    names = [f"mesh-{i:02d}" for i in range(n)]
    for name in names:
        await manager.create(resource_from_dict({"type": "Mesh", "name": name}))
    return names


async def test_pages_follow_next_links(manager: ResourceManager, client: httpx.AsyncClient) -> None:
    expected = ["default", *await add_meshes(manager, 4)]
    first = await client.get("/meshes", params={"size": "2"})
    assert first.status_code == 200
    assert_golden("paging/meshes_first_page.json", first.text)
    body = first.json()
    assert body["total"] == 5
    assert body["next"] == f"{PUBLIC_URL}/meshes?offset=2&size=2"

    seen = [i["name"] for i in body["items"]]
    url = body["next"]
    pages = 1
    while url is not None:
        # the next link names the public host; ask the in-process app for the same path
        page = await client.get(url.removeprefix(PUBLIC_URL))
        assert page.status_code == 200
        data = page.json()
        assert data["total"] == 5
        seen += [i["name"] for i in data["items"]]
        url = data["next"]
        pages += 1
    assert pages == 3
    assert sorted(seen) == sorted(expected)
    assert len(seen) == len(set(seen))


async def test_next_keeps_the_query_sorted_and_encoded(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    await add_meshes(manager, 2)
    r = await client.get("/meshes?zz=a b&size=1&aa=x%2Fy&offset=0")
    assert r.json()["next"] == f"{PUBLIC_URL}/meshes?aa=x%2Fy&offset=1&size=1&zz=a+b"


async def test_next_uses_the_mesh_scoped_path(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    for i in range(3):
        await manager.create(
            resource_from_dict(sample_body(registry.TRAFFIC_PERMISSION, f"tp-{i}"))
        )
    r = await client.get("/meshes/default/traffic-permissions?size=2")
    assert r.json()["next"] == f"{PUBLIC_URL}/meshes/default/traffic-permissions?offset=2&size=2"
    last = await client.get("/meshes/default/traffic-permissions?size=2&offset=2")
    assert last.json()["next"] is None
    assert [i["name"] for i in last.json()["items"]] == ["tp-2"]


async def test_default_page_size_is_100(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    await add_meshes(manager, 100)  # 101 with default
    body = (await client.get("/meshes")).json()
    assert body["total"] == 101
    assert len(body["items"]) == 100
    assert body["next"] == f"{PUBLIC_URL}/meshes?offset=100"
    rest = (await client.get("/meshes?offset=100")).json()
    assert len(rest["items"]) == 1
    assert rest["next"] is None


async def test_size_zero_means_everything(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    await add_meshes(manager, 120)
    body = (await client.get("/meshes?size=0")).json()
    assert len(body["items"]) == 121
    assert body["next"] is None


async def test_offset_past_the_end_is_an_empty_page(client: httpx.AsyncClient) -> None:
    body = (await client.get("/meshes?offset=50")).json()
    assert body == {"total": 1, "items": [], "next": None}


@pytest.mark.parametrize(
    ("query", "golden", "cause"),
    [
        ("size=abc", "size_not_a_number", {"field": "size", "message": "Invalid format"}),
        ("size=1.5", "size_not_an_integer", {"field": "size", "message": "Invalid format"}),
        (
            "size=2000",
            "size_too_large",
            {"field": "size", "message": "Invalid page size of 2000. Maximum page size is 1000"},
        ),
        (
            "size=-1",
            "size_negative",
            {"field": "size", "message": "Invalid page size of -1. Minimum page size is 0"},
        ),
        ("offset=abc", "offset_invalid", {"field": "offset", "message": "Invalid format"}),
        ("offset=-1", "offset_negative", {"field": "offset", "message": "Invalid format"}),
    ],
)
async def test_bad_paging_parameters(
    client: httpx.AsyncClient, query: str, golden: str, cause: dict[str, str]
) -> None:
    for path in ("/meshes", "/meshes/default/dataplanes", "/dataplanes"):
        r = await client.get(f"{path}?{query}")
        assert r.status_code == 400, (path, r.text)
        body = r.json()
        assert body["title"] == "Could not retrieve resources"
        assert body["causes"] == [cause]
    assert_golden(f"paging/{golden}.json", r.text)


async def test_first_value_of_a_repeated_parameter_counts(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    await add_meshes(manager, 3)
    body = (await client.get("/meshes?size=1&size=abc")).json()
    assert len(body["items"]) == 1
