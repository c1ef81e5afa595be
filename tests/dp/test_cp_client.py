"""kuma-dp's control-plane client: retries, give-up messages, and the answers that fail fast.

A small starlette app plays the control plane, scripted per test, in-process through httpx's
ASGI transport (the HTTP contract is what is under test; tests/dp/test_kuma_dp.py covers real
sockets). Backoffs are a few milliseconds so every wait stays short.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from kuma.dp.cp_client import Catalog, fetch_bootstrap, fetch_catalog
from kuma.dp.errors import BootstrapError, ControlPlaneUnreachableError, DataplaneNotFoundError
from kuma.xds.bootstrap import BootstrapRequest
from tests.dp.support import catalog_json

pytestmark = pytest.mark.anyio

FAST = {"backoff": timedelta(milliseconds=5), "max_duration": timedelta(milliseconds=200)}
BOOTSTRAP_YAML = "node:\n  id: default.web-01\n"


def _client(
    answers: list[Callable[[Request], Response]], seen: list[tuple[str, str, bytes]]
) -> httpx.AsyncClient:
    """Each request gets the next scripted answer (the last one repeats)."""

    async def handler(request: Request) -> Response:
        body = await request.body()
        seen.append((request.method, request.url.path, body))
        answer = answers[min(len(seen) - 1, len(answers) - 1)]
        return answer(request)

    app = Starlette(
        routes=[Route("/{path:path}", handler, methods=["GET", "POST"])],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app))


def _status(code: int, text: str = "") -> Callable[[Request], Response]:
    return lambda _r: PlainTextResponse(text, status_code=code)


CATALOG = catalog_json("http://cp:5682", token_required=False)


async def test_catalog_after_retries() -> None:
    seen: list[tuple[str, str, bytes]] = []
    answers = [_status(503), _status(200, "not json"), lambda _r: JSONResponse(CATALOG)]
    async with _client(answers, seen) as client:
        catalog = await fetch_catalog(client, "http://cp:5681/", **FAST)
    assert catalog == Catalog("http://cp:5682", "")
    assert not catalog.token_required
    assert [s[:2] for s in seen] == [("GET", "/catalog")] * 3


async def test_catalog_token_server() -> None:
    seen: list[tuple[str, str, bytes]] = []
    body = catalog_json("http://cp:5682", token_required=True)
    async with _client([lambda _r: JSONResponse(body)], seen) as client:
        catalog = await fetch_catalog(client, "http://cp:5681", **FAST)
    assert catalog.token_required
    assert catalog.dataplane_token_local_url == "http://localhost:5679"


async def test_catalog_gives_up_after_the_max_duration() -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with _client([_status(500)], seen) as client:
        with pytest.raises(ControlPlaneUnreachableError) as exc:
            await fetch_catalog(client, "http://cp:5681", **FAST)
    assert str(exc.value) == (
        "could not retrieve catalog from the Control Plane API at http://cp:5681 within 200ms "
        "(KUMA_CONTROL_PLANE_API_SERVER_RETRY_MAX_DURATION): unexpected status code 500. "
        "Expected 200. Check --cp-address and that kuma-cp is running."
    )
    assert len(seen) >= 3


async def test_catalog_without_bootstrap_url_is_retried_then_reported() -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with _client([lambda _r: JSONResponse({"apis": {}})], seen) as client:
        with pytest.raises(ControlPlaneUnreachableError) as exc:
            await fetch_catalog(client, "http://cp:5681", **FAST)
    assert "the catalog names no bootstrap server (apis.bootstrap.url)" in str(exc.value)


REQUEST = BootstrapRequest("default", "web-01", 30001, "/etc/kuma/token")


async def test_bootstrap_request_body_and_retries() -> None:
    seen: list[tuple[str, str, bytes]] = []
    answers = [_status(500, "boom"), _status(200, "- not a mapping"), _status(200, BOOTSTRAP_YAML)]
    async with _client(answers, seen) as client:
        text = await fetch_bootstrap(client, "http://cp:5682", REQUEST, **FAST)
    assert text == BOOTSTRAP_YAML
    assert len(seen) == 3
    method, path, body = seen[0]
    assert (method, path) == ("POST", "/bootstrap")
    assert httpx.Response(200, content=body).json() == {
        "mesh": "default",
        "name": "web-01",
        "adminPort": 30001,
        "dataplaneTokenPath": "/etc/kuma/token",
    }


async def test_unknown_dataplane_fails_at_once() -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with _client([_status(404)], seen) as client:
        with pytest.raises(DataplaneNotFoundError) as exc:
            await fetch_bootstrap(client, "http://cp:5682", REQUEST, **FAST)
    assert len(seen) == 1
    assert str(exc.value).startswith(
        'Dataplane "web-01" was not found in mesh "default" on the Control Plane.'
    )


async def test_admin_port_clash_fails_at_once() -> None:
    seen: list[tuple[str, str, bytes]] = []
    clash = "Resource precondition failed: Port 30001 requested as both admin and inbound port."
    async with _client([_status(422, clash)], seen) as client:
        with pytest.raises(BootstrapError) as exc:
            await fetch_bootstrap(client, "http://cp:5682", REQUEST, **FAST)
    assert len(seen) == 1
    assert str(exc.value).startswith(clash + " Choose an --admin-port")


async def test_bad_request_fails_at_once() -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with _client([_status(400, "name must not be empty")], seen) as client:
        with pytest.raises(BootstrapError) as exc:
            await fetch_bootstrap(client, "http://cp:5682", REQUEST, **FAST)
    assert len(seen) == 1
    assert str(exc.value) == "the bootstrap server rejected the request: name must not be empty"


async def test_bootstrap_gives_up_after_the_max_duration() -> None:
    seen: list[tuple[str, str, bytes]] = []
    async with _client([_status(503, "starting")], seen) as client:
        with pytest.raises(ControlPlaneUnreachableError) as exc:
            await fetch_bootstrap(client, "http://cp:5682/", REQUEST, **FAST)
    assert str(exc.value) == (
        "could not fetch the bootstrap configuration from http://cp:5682/bootstrap within 200ms "
        "(KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_RETRY_MAX_DURATION): unexpected status code: 503 "
        "(starting)"
    )
    assert len(seen) >= 3


async def test_connection_refused_is_retried() -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        with pytest.raises(ControlPlaneUnreachableError) as exc:
            await fetch_bootstrap(client, "http://127.0.0.1:1", REQUEST, **FAST)
    assert "request to bootstrap server failed: ConnectError" in str(exc.value)
