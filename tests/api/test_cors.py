"""CORS like go-restful's filter with Kuma's settings (allowed domains are regexes on Origin)."""

from __future__ import annotations

import pytest

from kuma.api import build_api_app
from kuma.manager import ResourceManager
from tests.api.support import api_client, base_settings

pytestmark = pytest.mark.anyio

ACAO = "access-control-allow-origin"
ACEH = "access-control-expose-headers"
ACAM = "access-control-allow-methods"


async def test_no_origin_no_cors_headers(manager: ResourceManager) -> None:
    async with api_client(manager) as client:
        r = await client.get("/meshes")
    assert ACAO not in r.headers
    assert ACEH not in r.headers


async def test_allowed_origin_gets_the_headers_on_every_answer(manager: ResourceManager) -> None:
    async with api_client(manager) as client:  # default: [".*"]
        origin = {"Origin": "http://gui.example:8080"}
        for path, status in (("/meshes", 200), ("/meshes/nope", 404), ("/nope", 404)):
            r = await client.get(path, headers=origin)
            assert r.status_code == status
            assert r.headers[ACAO] == "http://gui.example:8080"
            assert r.headers[ACEH] == "Access-Control-Allow-Origin"


async def test_allowed_domains_are_exact_values_or_unanchored_regexes(
    manager: ResourceManager,
) -> None:
    settings = base_settings(cors_allowed_domains=("http://exact.example", r"\.corp\.example$"))
    async with api_client(manager, settings) as client:
        for origin, allowed in (
            ("http://exact.example", True),
            ("https://gui.corp.example", True),  # regex search, not a full match
            # every allowed domain is also a regex: unanchored, it matches longer origins too
            ("http://exact.example.evil", True),
            ("https://corp.example.evil", False),
            ("http://other.example", False),
        ):
            r = await client.get("/", headers={"Origin": origin})
            assert r.status_code == 200
            assert (r.headers.get(ACAO) == origin) is allowed, origin


async def test_preflight(manager: ResourceManager) -> None:
    async with api_client(manager) as client:
        headers = {"Origin": "http://gui", "Access-Control-Request-Method": "PUT"}
        r = await client.options("/meshes/default/dataplanes/dp-1", headers=headers)
        assert r.status_code == 200
        assert r.content == b""
        assert r.headers[ACAM] == "PUT,DELETE,GET"
        assert r.headers[ACAO] == "http://gui"
        assert r.headers["access-control-allow-headers"] == ""

        listed = await client.options(
            "/meshes", headers={**headers, "Access-Control-Request-Method": "GET"}
        )
        assert listed.headers[ACAM] == "GET"

        # a method the path does not serve: answered, without CORS headers
        post = await client.options(
            "/meshes", headers={**headers, "Access-Control-Request-Method": "POST"}
        )
        assert post.status_code == 200
        assert ACAM not in post.headers
        assert ACAO not in post.headers

        # Kuma allows no request headers, so a preflight asking for any is not granted
        with_headers = await client.options(
            "/meshes/default", headers={**headers, "Access-Control-Request-Headers": "content-type"}
        )
        assert with_headers.status_code == 200
        assert ACAM not in with_headers.headers


async def test_options_without_preflight_headers_is_not_served(manager: ResourceManager) -> None:
    async with api_client(manager) as client:
        assert (await client.options("/meshes")).status_code == 405
        r = await client.options("/meshes", headers={"Origin": "http://gui"})
        assert r.status_code == 405
        assert r.headers[ACAO] == "http://gui"


async def test_disallowed_origin_preflight_is_routed_normally(manager: ResourceManager) -> None:
    settings = base_settings(cors_allowed_domains=("^http://gui$",))
    async with api_client(manager, settings) as client:
        headers = {"Origin": "http://other", "Access-Control-Request-Method": "GET"}
        r = await client.options("/meshes", headers=headers)
        assert r.status_code == 405
        assert ACAO not in r.headers


def test_a_bad_regex_is_refused_when_the_app_is_built() -> None:
    from kuma.store.memory import MemoryStore

    with pytest.raises(ValueError, match="corsAllowedDomains"):
        build_api_app(ResourceManager(MemoryStore()), base_settings(cors_allowed_domains=("(",)))
