"""PUT: URL/body checks, validation with Kuma's field paths, missing mesh, bad bodies, conflicts.

Every refused request must leave the store exactly as it was.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.resource import Resource, ResourceKey
from kuma.model.rest import resource_from_dict
from kuma.store.memory import MemoryStore
from tests.api.samples import sample_body
from tests.api.support import api_client, assert_golden, base_settings, snapshot

pytestmark = pytest.mark.anyio

DP_PATH = "/meshes/default/dataplanes/backend-1"


async def refused(
    manager: ResourceManager,
    client: httpx.AsyncClient,
    path: str,
    *,
    status: int = 400,
    golden: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """PUT, expect `status` with a Kuma error body, and check that nothing was written."""
    before = await snapshot(manager)
    r = await client.put(path, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    assert await snapshot(manager) == before
    if golden:
        assert_golden(f"put/{golden}.json", r.text)
    body: dict[str, Any] = r.json()
    return body


def dataplane(**changes: Any) -> dict[str, Any]:
    body = sample_body(registry.DATAPLANE, "backend-1")
    body.update(changes)
    return body


async def test_name_type_and_mesh_must_match_the_url(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    body = await refused(
        manager,
        client,
        DP_PATH,
        json=dataplane(name="other", type="TrafficRoute", mesh="demo"),
        golden="url_body_mismatch",
    )
    assert body["title"] == "Could not process a resource"
    assert body["details"] == "Resource is not valid"
    assert body["causes"] == [
        {"field": "name", "message": "name from the URL has to be the same as in body"},
        {"field": "type", "message": "type from the URL has to be the same as in body"},
        {"field": "mesh", "message": "mesh from the URL has to be the same as in body"},
    ]


async def test_missing_envelope_fields_are_mismatches(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    spec_only = {"networking": sample_body(registry.DATAPLANE, "x")["networking"]}
    body = await refused(manager, client, DP_PATH, json=spec_only)
    assert [c["field"] for c in body["causes"]] == ["name", "type", "mesh"]


async def test_global_types_do_not_check_the_mesh(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    r = await client.put("/meshes/demo", json={"type": "Mesh", "name": "demo", "mesh": "whatever"})
    assert r.status_code == 201
    zone = sample_body(registry.ZONE, "zone-1")
    zone["mesh"] = "whatever"
    assert (await client.put("/zones/zone-1", json=zone)).status_code == 201


async def test_invalid_names_in_the_url(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    body = await refused(
        manager,
        client,
        "/meshes/Bad.Mesh/dataplanes/Backend_1",
        json=dataplane(name="Backend_1", mesh="Bad.Mesh"),
        golden="invalid_names",
    )
    message = "invalid characters. Valid characters are numbers, lowercase latin letters and '-', '_' symbols."
    assert body["causes"] == [
        {"field": "name", "message": message},
        {"field": "mesh", "message": message},
    ]
    # Kuma checks a Mesh's name as both its name and its mesh
    mesh = await refused(manager, client, "/meshes/Demo", json={"type": "Mesh", "name": "Demo"})
    assert mesh["causes"] == [
        {"field": "name", "message": message},
        {"field": "mesh", "message": message},
    ]
    zone = sample_body(registry.ZONE, "Zone1")
    assert (await refused(manager, client, "/zones/Zone1", json=zone))["causes"] == [
        {"field": "name", "message": message}
    ]


async def test_missing_mesh(manager: ResourceManager, client: httpx.AsyncClient) -> None:
    body = await refused(
        manager,
        client,
        "/meshes/nowhere/traffic-permissions/tp-1",
        json=sample_body(registry.TRAFFIC_PERMISSION, "tp-1", "nowhere"),
        golden="mesh_not_found",
    )
    assert body == {
        "title": "Could not create a resource",
        "details": "Mesh is not found",
        "causes": [{"field": "mesh", "message": "mesh of name nowhere is not found"}],
    }


async def test_invalid_resource_on_create(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    bad = dataplane()
    bad["networking"]["inbound"][0]["port"] = 0
    del bad["networking"]["inbound"][0]["tags"]["kuma.io/service"]
    body = await refused(manager, client, DP_PATH, json=bad, golden="invalid_dataplane")
    assert body["title"] == "Could not create a resource"
    assert body["details"] == "Resource is not valid"
    fields = [c["field"] for c in body["causes"]]
    assert "networking.inbound[0].port" in fields
    assert 'networking.inbound[0].tags["kuma.io/service"]' in fields


async def test_invalid_resource_on_update(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    assert (await client.put(DP_PATH, json=dataplane())).status_code == 201
    bad = dataplane()
    bad["networking"]["inbound"] = []
    body = await refused(manager, client, DP_PATH, json=bad)
    assert body["title"] == "Could not update a resource"
    assert body["details"] == "Resource is not valid"
    assert body["causes"][0]["field"] == "networking"


async def test_unknown_and_mistyped_fields(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    bad = dataplane()
    bad["networking"]["inboundz"] = []
    bad["networking"]["inbound"][0]["port"] = "eighty"
    bad["color"] = "blue"
    body = await refused(manager, client, DP_PATH, json=bad, golden="unknown_fields")
    assert body["title"] == "Could not process a resource"
    fields = {c["field"] for c in body["causes"]}
    assert fields == {"networking.inboundz", "networking.inbound[0].port", "color"}


@pytest.mark.parametrize(
    ("content", "golden", "message"),
    [
        (
            b'{"type": "Dataplane",',
            "malformed_json",
            "Expecting property name enclosed in double quotes at line 1, column 22",
        ),
        (b"", "empty_body", "the request body is empty"),
        (b'{"type": NaN}', "nan", "NaN is not valid JSON"),
        (
            b'{"name": "\xff"}',
            "not_utf8",
            "the request body is not UTF-8: invalid start byte at byte 10",
        ),
    ],
)
async def test_bodies_that_are_not_json(
    manager: ResourceManager,
    client: httpx.AsyncClient,
    content: bytes,
    golden: str,
    message: str,
) -> None:
    body = await refused(
        manager,
        client,
        DP_PATH,
        content=content,
        headers={"content-type": "application/json"},
        golden=f"body_{golden}",
    )
    assert body["title"] == "Could not process a resource"
    assert body["details"] == "Invalid JSON"
    assert body["causes"] == [{"field": "", "message": message}]


async def test_body_that_is_not_an_object(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    body = await refused(manager, client, DP_PATH, json=[1, 2])
    assert body["causes"] == [{"field": "", "message": "must be an object, got a list"}]


async def test_deeply_nested_body(manager: ResourceManager, client: httpx.AsyncClient) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    async with api_client(manager, base_settings(max_body_bytes=1_000_000)) as big:
        body = await refused(manager, big, DP_PATH, content=nested)
    assert body["details"] == "Invalid JSON"


async def test_oversized_body_with_content_length(manager: ResourceManager) -> None:
    async with api_client(manager, base_settings(max_body_bytes=1000)) as client:
        payload = json.dumps(dataplane(padding="x" * 2000)).encode()
        body = await refused(
            manager, client, DP_PATH, status=413, content=payload, golden="too_large"
        )
    assert body == {
        "title": "Could not process a resource",
        "details": "Request Entity Too Large",
        "causes": [{"field": "", "message": "the request body must not be larger than 1000 bytes"}],
    }


async def test_oversized_streamed_body_is_not_read_to_the_end(manager: ResourceManager) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(1000):
            sent += 1
            yield b" " * 100

    async with api_client(manager, base_settings(max_body_bytes=1000)) as client:
        await refused(manager, client, DP_PATH, status=413, content=chunks())
    assert sent < 20  # stopped just past the limit, not after 100 kB


async def test_a_body_at_the_limit_is_accepted(manager: ResourceManager) -> None:
    payload = json.dumps(dataplane()).encode()
    async with api_client(manager, base_settings(max_body_bytes=len(payload))) as client:
        assert (await client.put(DP_PATH, content=payload)).status_code == 201


async def test_insight_of_a_missing_dataplane(
    manager: ResourceManager, client: httpx.AsyncClient
) -> None:
    body = await refused(
        manager,
        client,
        "/meshes/default/dataplane-insights/ghost",
        json=sample_body(registry.DATAPLANE_INSIGHT, "ghost"),
    )
    assert body == {
        "title": "Could not create a resource",
        "details": "Resource is not valid",
        "causes": [
            {"field": "name", "message": "Dataplane of name ghost in mesh default is not found"}
        ],
    }


class RacingStore(MemoryStore):
    """A store where another writer gets in between the API's read and its write, once."""

    def __init__(self) -> None:
        super().__init__()
        self.race_update = False
        self.race_create = False

    async def update(self, resource: Resource) -> None:
        if self.race_update:
            self.race_update = False
            other = await self.get(resource.type, resource.meta.name, resource.meta.mesh)
            await super().update(other)  # a concurrent writer bumps the version
        await super().update(resource)

    async def create(self, resource: Resource, *, owner: ResourceKey | None = None) -> None:
        if self.race_create:
            self.race_create = False
            await super().create(
                resource_from_dict(sample_body(resource.type, resource.meta.name)), owner=owner
            )
        await super().create(resource, owner=owner)


async def test_concurrent_update_is_a_conflict() -> None:
    store = RacingStore()
    manager = ResourceManager(store)
    await manager.ensure_default_mesh()
    async with api_client(manager) as client:
        assert (await client.put(DP_PATH, json=dataplane())).status_code == 201
        store.race_update = True
        changed = dataplane()
        changed["networking"]["address"] = "10.0.0.9"
        r = await client.put(DP_PATH, json=changed)
        assert r.status_code == 409
        assert_golden("put/conflict_update.json", r.text)
        assert r.json()["title"] == "Could not update a resource"
        assert r.json()["details"] == "Conflict"
        # the other writer's version stands; retrying succeeds
        assert (await client.get(DP_PATH)).json()["networking"]["address"] == "192.168.0.2"
        assert (await client.put(DP_PATH, json=changed)).status_code == 200


async def test_concurrent_create_is_a_conflict() -> None:
    store = RacingStore()
    manager = ResourceManager(store)
    await manager.ensure_default_mesh()
    async with api_client(manager) as client:
        store.race_create = True
        r = await client.put(DP_PATH, json=dataplane())
        assert r.status_code == 409
        assert r.json()["title"] == "Could not create a resource"
        assert r.json()["details"] == "Conflict"
        assert (await client.put(DP_PATH, json=dataplane())).status_code == 200


async def test_creation_and_update_status_codes(client: httpx.AsyncClient) -> None:
    first = await client.put(DP_PATH, json=dataplane())
    assert (first.status_code, first.content) == (201, b"")
    assert "content-type" not in first.headers
    second = await client.put(DP_PATH, json=dataplane())
    assert (second.status_code, second.content) == (200, b"")
    # envelope times in the body are ignored
    stamped = dataplane(
        creationTime="1999-01-01T00:00:00Z", modificationTime="1999-01-01T00:00:00Z"
    )
    assert (await client.put(DP_PATH, json=stamped)).status_code == 200
    assert not (await client.get(DP_PATH)).json()["creationTime"].startswith("1999")
