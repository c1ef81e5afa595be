"""The admin server's `POST /tokens` (in-process ASGI), Kuma 0.7.3's token web service."""

from __future__ import annotations

import pytest

from kuma.api import AdminSettings
from kuma.manager import ResourceManager
from kuma.tokens import (
    DataplaneTokenIssuer,
    TokenIdentity,
    ensure_signing_key,
    make_authenticator,
    signing_key_accessor,
)
from kuma.xds.core import ProxyId
from tests.api.support import admin_client

pytestmark = pytest.mark.anyio


async def test_issues_a_token_for_the_dataplane(manager: ResourceManager) -> None:
    await ensure_signing_key(manager)
    async with admin_client(manager) as client:
        r = await client.post("/tokens", json={"name": "web-01", "mesh": "default"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].split(";")[0] == "text/plain"
    token = r.text
    assert not token.endswith("\n")
    issuer = DataplaneTokenIssuer(signing_key_accessor(manager))
    assert await issuer.verify(token) == TokenIdentity(mesh="default", name="web-01")
    await make_authenticator(manager)(ProxyId("default", "web-01"), {"authorization": token})


async def test_mesh_and_dataplane_need_not_exist(manager: ResourceManager) -> None:
    """Kuma issues tokens for dataplanes before they are registered (and for any mesh)."""
    await ensure_signing_key(manager)
    async with admin_client(manager) as client:
        r = await client.post("/tokens", json={"name": "later", "mesh": "elsewhere"})
    assert r.status_code == 200
    issuer = DataplaneTokenIssuer(signing_key_accessor(manager))
    assert await issuer.verify(r.text) == TokenIdentity(mesh="elsewhere", name="later")


@pytest.mark.parametrize(
    ("body", "causes"),
    [
        ({"mesh": "default"}, [{"field": "name", "message": "cannot be empty"}]),
        ({"name": "web-01", "mesh": ""}, [{"field": "mesh", "message": "cannot be empty"}]),
        (
            {},
            [
                {"field": "name", "message": "cannot be empty"},
                {"field": "mesh", "message": "cannot be empty"},
            ],
        ),
        (
            {"name": None, "mesh": None, "other": 1},
            [
                {"field": "name", "message": "cannot be empty"},
                {"field": "mesh", "message": "cannot be empty"},
            ],
        ),
    ],
)
async def test_empty_name_or_mesh(
    manager: ResourceManager, body: dict[str, object], causes: list[dict[str, str]]
) -> None:
    await ensure_signing_key(manager)
    async with admin_client(manager) as client:
        r = await client.post("/tokens", json=body)
    assert r.status_code == 400
    assert r.json() == {
        "title": "Invalid request",
        "details": "Resource is not valid",
        "causes": causes,
    }


@pytest.mark.parametrize(
    ("content", "causes"),
    [
        (b"not-valid-json", [{"field": "", "message": "Expecting value at line 1, column 1"}]),
        (b"", [{"field": "", "message": "the request body is empty"}]),
        (b'["web-01"]', [{"field": "", "message": "the request body must be a JSON object"}]),
        (b'{"name": 1, "mesh": "default"}', [{"field": "name", "message": "must be a string"}]),
        (b'{"name": "web-01", "mesh": true}', [{"field": "mesh", "message": "must be a string"}]),
    ],
)
async def test_bodies_that_are_not_token_requests(
    manager: ResourceManager, content: bytes, causes: list[dict[str, str]]
) -> None:
    await ensure_signing_key(manager)
    async with admin_client(manager) as client:
        r = await client.post(
            "/tokens", content=content, headers={"content-type": "application/json"}
        )
    assert r.status_code == 400
    assert r.json() == {"title": "Invalid request", "details": "Invalid JSON", "causes": causes}


async def test_keys_match_like_go_json(manager: ResourceManager) -> None:
    await ensure_signing_key(manager)
    issuer = DataplaneTokenIssuer(signing_key_accessor(manager))
    async with admin_client(manager) as client:
        r = await client.post("/tokens", json={"Name": "web-01", "MESH": "default"})
        assert r.status_code == 200
        assert await issuer.verify(r.text) == TokenIdentity(mesh="default", name="web-01")
        r = await client.post("/tokens", json={"Name": "loser", "name": "web-02", "mesh": "m"})
        assert await issuer.verify(r.text) == TokenIdentity(mesh="m", name="web-02")


async def test_without_a_signing_key(manager: ResourceManager) -> None:
    async with admin_client(manager) as client:
        r = await client.post("/tokens", json={"name": "web-01", "mesh": "default"})
    assert r.status_code == 503
    assert r.json() == {
        "title": "Could not issue a token",
        "details": "there is no Signing Key in the Control Plane. If you run multi-zone setup, "
        "make sure Remote is connected to the Global before generating tokens.",
    }


async def test_only_post(manager: ResourceManager) -> None:
    async with admin_client(manager) as client:
        r = await client.get("/tokens")
    assert r.status_code == 405
    assert r.headers["allow"] == "POST"


async def test_large_bodies_are_refused(manager: ResourceManager) -> None:
    await ensure_signing_key(manager)
    async with admin_client(manager, AdminSettings(max_body_bytes=64)) as client:
        r = await client.post("/tokens", json={"name": "x" * 100, "mesh": "default"})
    assert r.status_code == 413
    assert r.json()["title"] == "Invalid request"


async def test_disabled_token_server(manager: ResourceManager) -> None:
    """`adminServer.apis.dataplaneToken.enabled: false`: there is no token endpoint."""
    await ensure_signing_key(manager)
    async with admin_client(manager, AdminSettings(dataplane_token_enabled=False)) as client:
        r = await client.post("/tokens", json={"name": "web-01", "mesh": "default"})
        assert (r.status_code, r.text) == (404, "404: Page Not Found")
        assert (await client.get("/secrets")).status_code == 200  # the rest is still served


async def test_read_only_mode_still_issues_tokens(manager: ResourceManager) -> None:
    await ensure_signing_key(manager)
    async with admin_client(manager, AdminSettings(read_only=True)) as client:
        r = await client.post("/tokens", json={"name": "web-01", "mesh": "default"})
    assert r.status_code == 200
