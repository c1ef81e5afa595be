"""GET /, /config, /catalog, /status/zones, and what unknown paths and methods get."""

from __future__ import annotations

import httpx
import pytest

from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.rest import resource_from_dict
from tests.api.samples import sample_body
from tests.api.support import assert_golden

pytestmark = pytest.mark.anyio


async def test_index(client: httpx.AsyncClient) -> None:
    r = await client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"hostname": "cp-test", "tagline": "Kuma", "version": "1.2.3"}
    assert_golden("index.json", r.text)


async def test_config_serves_the_settings_view(client: httpx.AsyncClient) -> None:
    r = await client.get("/config")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"store": {"type": "memory"}, "apiServer": {"port": 5681}}


async def test_catalog(client: httpx.AsyncClient) -> None:
    r = await client.get("/catalog")
    assert r.status_code == 200
    assert_golden("catalog.json", r.text)


async def test_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/nope", "/meshes/default/unknown-things", "/meshes/default/dataplanes/a/b"):
        r = await client.get(path)
        assert r.status_code == 404, path
        assert r.text == "404: Page Not Found"
        assert r.headers["content-type"].startswith("text/plain")


async def test_known_path_with_another_method_is_405(client: httpx.AsyncClient) -> None:
    r = await client.post("/meshes", json={})
    assert r.status_code == 405
    assert r.text == "405: Method Not Allowed"
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
    r = await client.put("/dataplanes/x", json={})  # cross-mesh paths only list
    assert r.status_code in (404, 405)


async def test_trailing_slash_is_ignored(client: httpx.AsyncClient) -> None:
    with_slash = await client.get("/meshes/")
    without = await client.get("/meshes")
    assert with_slash.status_code == 200
    assert with_slash.json() == without.json()
    assert (await client.get("/meshes/default/")).json()["name"] == "default"


async def test_secrets_are_not_served_on_the_public_api(client: httpx.AsyncClient) -> None:
    assert (await client.get("/meshes/default/secrets")).status_code == 404
    assert (await client.get("/secrets")).status_code == 404


async def test_status_zones(manager: ResourceManager, client: httpx.AsyncClient) -> None:
    assert (await client.get("/status/zones")).json() == []
    for name, address in (("zone-1", "10.20.1.1:10001"), ("zone-2", "10.20.1.2:10002")):
        body = sample_body(registry.ZONE, name)
        body["ingress"]["address"] = address
        await manager.create(resource_from_dict(body))
    # zone-1 connected and never disconnected: online; zone-2's only stream has ended
    online = resource_from_dict(sample_body(registry.ZONE_INSIGHT, "zone-1"))
    await manager.create(online)
    offline = sample_body(registry.ZONE_INSIGHT, "zone-2")
    offline["subscriptions"][0]["disconnectTime"] = "2020-10-22T11:00:00Z"
    await manager.create(resource_from_dict(offline))

    r = await client.get("/status/zones")
    assert r.status_code == 200
    assert r.json() == [
        {"name": "zone-1", "url": "10.20.1.1:10001", "active": True},
        {"name": "zone-2", "url": "10.20.1.2:10002", "active": False},
    ]
    assert_golden("status_zones.json", r.text)
