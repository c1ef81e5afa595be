"""Retry and Timeout through the REST API: routes, bodies and errors all come from the registry.

Bodies are written as a user writes them (YAML, Go-style durations) and come back in proto3
JSON; invalid ones are refused with Kuma 1.1's field paths; both types live and die with their
mesh.
"""

from __future__ import annotations

import textwrap
from typing import Any

import httpx
import pytest

from kuma.manager import ResourceManager
from kuma.model.rest import resource_from_dict
from kuma.model.yamlio import load_documents
from tests.api.support import snapshot

pytestmark = pytest.mark.anyio

RETRY = """
type: Retry
mesh: default
name: web-to-backend
sources:
- match:
    kuma.io/service: web
destinations:
- match:
    kuma.io/service: backend
conf:
  http:
    numRetries: 5
    perTryTimeout: 200ms
    backOff:
      baseInterval: 20ms
      maxInterval: 1m
    retriableStatusCodes: [500, 504]
  grpc:
    retryOn: [deadline_exceeded, unavailable]
  tcp:
    maxConnectAttempts: 3
"""

TIMEOUT = """
type: Timeout
mesh: default
name: web-to-backend
sources:
- match:
    kuma.io/service: web
destinations:
- match:
    kuma.io/service: backend
conf:
  connectTimeout: 5s
  tcp:
    idleTimeout: 1h
  http:
    requestTimeout: 15s
  grpc:
    maxStreamDuration: 30m
"""


def body(text: str, **changes: Any) -> dict[str, Any]:
    (doc,) = load_documents(textwrap.dedent(text))
    assert isinstance(doc, dict)
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("text", "collection", "conf"),
    [
        (
            RETRY,
            "retries",
            {
                "http": {
                    "numRetries": 5,
                    "perTryTimeout": "0.200s",
                    "backOff": {"baseInterval": "0.020s", "maxInterval": "60s"},
                    "retriableStatusCodes": [500, 504],
                },
                "tcp": {"maxConnectAttempts": 3},
                "grpc": {"retryOn": ["deadline_exceeded", "unavailable"]},
            },
        ),
        (
            TIMEOUT,
            "timeouts",
            {
                "connectTimeout": "5s",
                "tcp": {"idleTimeout": "3600s"},
                "http": {"requestTimeout": "15s"},
                "grpc": {"maxStreamDuration": "1800s"},
            },
        ),
    ],
    ids=["Retry", "Timeout"],
)
async def test_put_get_list_delete(
    client: httpx.AsyncClient, text: str, collection: str, conf: dict[str, Any]
) -> None:
    sent = body(text)
    path = f"/meshes/default/{collection}/web-to-backend"
    assert (await client.put(path, json=sent)).status_code == 201

    got = await client.get(path)
    assert got.status_code == 200
    doc = got.json()
    assert {k: doc[k] for k in ("type", "mesh", "name")} == {
        "type": sent["type"],
        "mesh": "default",
        "name": "web-to-backend",
    }
    assert doc["sources"] == [{"match": {"kuma.io/service": "web"}}]
    assert doc["destinations"] == [{"match": {"kuma.io/service": "backend"}}]
    assert doc["conf"] == conf

    # what GET returned can be PUT back as it is
    assert (await client.put(path, json=doc)).status_code == 200

    for listed in (f"/meshes/default/{collection}", f"/{collection}"):
        page = (await client.get(listed)).json()
        assert page["total"] == 1
        assert [(i["mesh"], i["name"], i["conf"]) for i in page["items"]] == [
            ("default", "web-to-backend", conf)
        ]

    assert (await client.delete(path)).status_code == 200
    assert (await client.get(path)).status_code == 404
    assert (await client.get(f"/meshes/default/{collection}")).json()["total"] == 0


@pytest.mark.parametrize(
    ("collection", "sent", "causes"),
    [
        (
            "retries",
            body(RETRY, conf={"grpc": {"retryOn": ["internal", "internal"], "numRetries": 0}}),
            [
                ("conf.grpc.retryOn", 'repeated value "internal" at indexes [0, 1]'),
                ("conf.grpc.numRetries", "has to be greater than 0 when defined"),
            ],
        ),
        (
            "retries",
            body(RETRY, sources=[], conf={}),
            [
                ("sources", "must have at least one element"),
                ("conf", "missing protocol [grpc|http|tcp] configuration"),
            ],
        ),
        (
            "timeouts",
            body(TIMEOUT, conf={"tcp": {}, "http": {"idleTimeout": "0s"}}),
            [
                ("conf.tcp", "at least one timeout in section has to be defined"),
                ("conf.http.idleTimeout", "has to be greater than 0 when defined"),
            ],
        ),
        (
            "timeouts",
            body(TIMEOUT, destinations=[{"match": {"kuma.io/service": "backend", "v": "1"}}]),
            [
                ("destinations[0].match", 'must consist of exactly one tag "kuma.io/service"'),
                ('destinations[0].match["v"]', 'tag "v" is not allowed'),
            ],
        ),
    ],
    ids=["retry-conf", "retry-sources", "timeout-conf", "timeout-destinations"],
)
async def test_invalid_specs_are_refused_with_kumas_paths(
    manager: ResourceManager,
    client: httpx.AsyncClient,
    collection: str,
    sent: dict[str, Any],
    causes: list[tuple[str, str]],
) -> None:
    before = await snapshot(manager)
    r = await client.put(f"/meshes/default/{collection}/web-to-backend", json=sent)
    assert r.status_code == 400, r.text
    assert r.json() == {
        "title": "Could not create a resource",
        "details": "Resource is not valid",
        "causes": [{"field": f, "message": m} for f, m in causes],
    }
    assert await snapshot(manager) == before


async def test_unknown_retry_on_value_is_a_decoding_error(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    before = await snapshot(manager)
    sent = body(RETRY, conf={"grpc": {"retryOn": ["unavailable", "aborted"]}})
    r = await client.put("/meshes/default/retries/web-to-backend", json=sent)
    assert r.status_code == 400, r.text
    assert [c["field"] for c in r.json()["causes"]] == ["conf.grpc.retryOn[1]"]
    assert await snapshot(manager) == before


async def test_they_need_their_mesh_and_go_with_it(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    for text, collection in ((RETRY, "retries"), (TIMEOUT, "timeouts")):
        path = f"/meshes/demo/{collection}/web-to-backend"
        missing_mesh = await client.put(path, json=body(text, mesh="demo"))
        assert missing_mesh.status_code == 400, missing_mesh.text
        assert missing_mesh.json()["causes"] == [
            {"field": "mesh", "message": "mesh of name demo is not found"}
        ]

    await manager.create(resource_from_dict({"type": "Mesh", "name": "demo"}))
    for text, collection in ((RETRY, "retries"), (TIMEOUT, "timeouts")):
        path = f"/meshes/demo/{collection}/web-to-backend"
        assert (await client.put(path, json=body(text, mesh="demo"))).status_code == 201
    assert (await client.delete("/meshes/demo")).status_code == 200
    for collection in ("retries", "timeouts"):
        assert (await client.get(f"/{collection}")).json()["total"] == 0
