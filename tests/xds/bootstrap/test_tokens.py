"""POST /bootstrap with dataplane tokens: checked when required, embedded for Envoy's ADS stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import yaml

from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.tokens import (
    SIGNING_KEY_MESH,
    SIGNING_KEY_NAME,
    DataplaneTokenIssuer,
    encode_hs256,
    ensure_signing_key,
    make_authenticator,
    signing_key_accessor,
)
from kuma.xds.bootstrap import (
    YAML_CONTENT_TYPE,
    BootstrapRequest,
    BootstrapRequestError,
    build_bootstrap_app,
)
from kuma.xds.bootstrap.server import TOKEN_REQUIRED_MESSAGE
from tests.xds.bootstrap.support import (
    BACKEND_DATAPLANE,
    assert_golden,
    default_settings,
    new_manager,
)

pytestmark = pytest.mark.anyio


async def manager_with_dp() -> ResourceManager:
    manager = await new_manager(BACKEND_DATAPLANE.format(mesh="default", name="dp-1"))
    await ensure_signing_key(manager)
    return manager


async def issue(manager: ResourceManager, name: str = "dp-1", mesh: str = "default") -> str:
    return await DataplaneTokenIssuer(signing_key_accessor(manager)).issue(name, mesh)


@asynccontextmanager
async def client(
    manager: ResourceManager, *, enabled: bool | None = True
) -> AsyncIterator[httpx.AsyncClient]:
    authenticator = None if enabled is None else make_authenticator(manager, enabled)
    app = build_bootstrap_app(manager, default_settings(), authenticator=authenticator)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cp:5682") as c:
        yield c


def ads_metadata(bootstrap: dict[str, Any]) -> list[dict[str, str]]:
    (service,) = bootstrap["dynamicResources"]["adsConfig"]["grpcServices"]
    assert service["envoyGrpc"] == {"clusterName": "ads_cluster"}
    metadata: list[dict[str, str]] = service.get("initialMetadata", [])
    return metadata


def test_request_carries_the_token() -> None:
    request = BootstrapRequest("default", "dp-1", 30001, "/tmp/token", "a.b.c")
    assert request.to_json() == {
        "mesh": "default",
        "name": "dp-1",
        "adminPort": 30001,
        "dataplaneTokenPath": "/tmp/token",
        "dataplaneToken": "a.b.c",
    }
    assert BootstrapRequest.from_json(request.to_json()) == request
    assert "dataplaneToken" not in BootstrapRequest("default", "dp-1").to_json()
    padded = BootstrapRequest.from_json({"mesh": "m", "name": "n", "dataplaneToken": " t\n"})
    assert padded.dataplane_token == "t"
    for bad, message in [
        (1, "dataplaneToken must be a string"),
        ("a b", "dataplaneToken must be visible ASCII text"),
        ("a\nb", "dataplaneToken must be visible ASCII text"),
        ("żółw", "dataplaneToken must be visible ASCII text"),
    ]:
        with pytest.raises(BootstrapRequestError) as info:
            BootstrapRequest.from_json({"mesh": "m", "name": "n", "dataplaneToken": bad})
        assert str(info.value) == message


async def test_the_right_token_is_checked_and_embedded() -> None:
    manager = await manager_with_dp()
    token = await issue(manager)
    body = {
        "mesh": "default",
        "name": "dp-1",
        "adminPort": 1234,
        "dataplaneTokenPath": "/tmp/token",
        "dataplaneToken": token,
    }
    async with client(manager) as c:
        r = await c.post("/bootstrap", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == YAML_CONTENT_TYPE
    bootstrap = yaml.safe_load(r.text)
    assert ads_metadata(bootstrap) == [{"key": "authorization", "value": token}]
    # the path stays in the node metadata: Envoy's SDS channel reads the file itself
    assert bootstrap["node"]["metadata"]["dataplaneTokenPath"] == "/tmp/token"
    assert_golden("token.golden.yaml", r.text.replace(token, "<token>"))


async def test_without_tokens_nothing_is_embedded() -> None:
    manager = await manager_with_dp()
    async with client(manager, enabled=False) as c:
        r = await c.post("/bootstrap", json={"mesh": "default", "name": "dp-1"})
    assert r.status_code == 200, r.text
    assert ads_metadata(yaml.safe_load(r.text)) == []


@pytest.mark.parametrize("enabled", [False, None], ids=["tokens-off", "no-authenticator"])
async def test_a_token_sent_anyway_is_passed_on_unchecked(enabled: bool | None) -> None:
    manager = await manager_with_dp()
    async with client(manager, enabled=enabled) as c:
        r = await c.post(
            "/bootstrap", json={"mesh": "default", "name": "dp-1", "dataplaneToken": "x.y.z"}
        )
    assert r.status_code == 200, r.text
    assert ads_metadata(yaml.safe_load(r.text)) == [{"key": "authorization", "value": "x.y.z"}]


async def test_a_missing_token_is_401() -> None:
    manager = await manager_with_dp()
    async with client(manager) as c:
        for body in (
            {"mesh": "default", "name": "dp-1"},
            {"mesh": "default", "name": "dp-1", "dataplaneToken": "", "dataplaneTokenPath": "/t"},
        ):
            r = await c.post("/bootstrap", json=body)
            assert (r.status_code, r.text) == (401, TOKEN_REQUIRED_MESSAGE)
            assert r.headers["content-type"].startswith("text/plain")


async def test_bad_tokens_are_403() -> None:
    manager = await manager_with_dp()
    cases = [
        (
            await issue(manager, name="dp-2"),
            "Invalid Dataplane Token: proxy name from requestor: dp-1 is different than in "
            "token: dp-2",
        ),
        (
            await issue(manager, mesh="demo"),
            "Invalid Dataplane Token: proxy mesh from requestor: default is different than in "
            "token: demo",
        ),
        (
            encode_hs256({"Name": "dp-1", "Mesh": "default"}, b"another key"),
            "Invalid Dataplane Token: could not parse token: signature is invalid",
        ),
        (
            "garbage",
            "Invalid Dataplane Token: could not parse token: token contains an invalid number "
            "of segments",
        ),
    ]
    async with client(manager) as c:
        for token, message in cases:
            r = await c.post(
                "/bootstrap", json={"mesh": "default", "name": "dp-1", "dataplaneToken": token}
            )
            assert (r.status_code, r.text) == (403, message)


async def test_the_token_is_checked_before_the_dataplane_is_looked_up() -> None:
    manager = await manager_with_dp()
    async with client(manager) as c:
        r = await c.post("/bootstrap", json={"mesh": "default", "name": "ghost"})
        assert r.status_code == 401  # no hint whether "ghost" exists
        token = await issue(manager, name="ghost")
        r = await c.post(
            "/bootstrap", json={"mesh": "default", "name": "ghost", "dataplaneToken": token}
        )
        assert (r.status_code, r.text) == (404, 'Dataplane "ghost" not found in mesh "default"')


async def test_no_signing_key_is_a_500_kuma_dp_retries() -> None:
    manager = await manager_with_dp()
    token = await issue(manager)
    await manager.store.delete(registry.SECRET, SIGNING_KEY_NAME, SIGNING_KEY_MESH)
    async with client(manager) as c:
        r = await c.post(
            "/bootstrap", json={"mesh": "default", "name": "dp-1", "dataplaneToken": token}
        )
    assert r.status_code == 500
    assert r.text.startswith("Could not check the Dataplane Token: there is no Signing Key")


async def test_a_bad_token_field_is_400() -> None:
    manager = await manager_with_dp()
    async with client(manager) as c:
        r = await c.post(
            "/bootstrap", json={"mesh": "default", "name": "dp-1", "dataplaneToken": "a b"}
        )
    assert (r.status_code, r.text) == (
        400,
        "Could not parse the request: dataplaneToken must be visible ASCII text",
    )


async def test_a_dataplane_not_there_yet_is_a_503_kuma_dp_retries() -> None:
    """Kubernetes: a sidecar can ask before the Pod controller wrote its Dataplane."""
    from kuma.errors import TransientError

    manager = await manager_with_dp()

    async def not_yet(proxy_id: Any, metadata: Any) -> None:
        raise TransientError(f"Dataplane {proxy_id.name} does not exist yet")

    app = build_bootstrap_app(manager, default_settings(), authenticator=not_yet)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cp:5682"
    ) as c:
        r = await c.post("/bootstrap", json={"mesh": "default", "name": "web.ns"})
    assert (r.status_code, r.text) == (
        503,
        "Not ready yet, retry: Dataplane web.ns does not exist yet",
    )
