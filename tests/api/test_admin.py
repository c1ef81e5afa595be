"""The admin server's secrets endpoints (127.0.0.1:5679)."""

from __future__ import annotations

import pytest

from kuma.api import AdminSettings
from kuma.api.app import K8S_READ_ONLY_MESSAGE
from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.rest import resource_from_dict
from tests.api.support import admin_client, assert_golden, snapshot

pytestmark = pytest.mark.anyio

PATH = "/meshes/default/secrets/sec-1"


def secret(name: str = "sec-1", mesh: str = "default", data: str = "c2VjcmV0") -> dict[str, str]:
    return {"type": "Secret", "mesh": mesh, "name": name, "data": data}


async def test_secret_lifecycle(manager: ResourceManager) -> None:
    async with admin_client(manager) as client:
        assert (await client.get(PATH)).status_code == 404
        created = await client.put(PATH, json=secret())
        assert (created.status_code, created.content) == (201, b"")
        got = await client.get(PATH)
        assert got.status_code == 200
        assert_golden("admin/get_secret.json", got.text)
        assert got.json()["data"] == "c2VjcmV0"
        updated = await client.put(PATH, json=secret(data="bmV3"))
        assert (updated.status_code, updated.content) == (200, b"")
        assert (await client.get(PATH)).json()["data"] == "bmV3"
        deleted = await client.delete(PATH)
        assert (deleted.status_code, deleted.content) == (200, b"")
        missing = await client.delete(PATH)
        assert missing.status_code == 404
        assert missing.json() == {"title": "Could not delete a resource", "details": "Not found"}


async def test_lists_are_whole_and_span_meshes(manager: ResourceManager) -> None:
    await manager.create(resource_from_dict({"type": "Mesh", "name": "other"}))
    for i in range(3):
        await manager.create(resource_from_dict(secret(f"sec-{i}")))
    await manager.create(resource_from_dict(secret("sec-x", "other")))
    async with admin_client(manager) as client:
        in_default = await client.get("/meshes/default/secrets?size=1")  # Kuma ignores paging here
        assert in_default.status_code == 200
        body = in_default.json()
        assert body["total"] == 3
        assert len(body["items"]) == 3
        assert body["next"] is None
        assert_golden("admin/list_default.json", in_default.text)
        everywhere = (await client.get("/secrets")).json()
        assert [(i["mesh"], i["name"]) for i in everywhere["items"]] == [
            ("default", "sec-0"),
            ("default", "sec-1"),
            ("default", "sec-2"),
            ("other", "sec-x"),
        ]


async def test_refused_puts_leave_the_store_alone(manager: ResourceManager) -> None:
    async with admin_client(manager) as client:
        before = await snapshot(manager)
        cases = [
            (PATH, secret(data="not base64!"), 400, "bad_base64"),
            (PATH, secret(name="other", mesh="demo") | {"type": "Dataplane"}, 400, "mismatch"),
            ("/meshes/nowhere/secrets/sec-1", secret(mesh="nowhere"), 400, "mesh_not_found"),
        ]
        for path, body, status, golden in cases:
            r = await client.put(path, json=body)
            assert r.status_code == status, r.text
            assert_golden(f"admin/{golden}.json", r.text)
        r = await client.put(PATH, content=b"{", headers={"content-type": "application/json"})
        assert r.status_code == 400
        assert r.json()["details"] == "Invalid JSON"
        assert await snapshot(manager) == before

        assert (await client.put(PATH, json=secret(data="not base64!"))).json()["causes"] == [
            {"field": "data", "message": "has to be valid base64 string"}
        ]
        # the admin server checks name, mesh, type, in that order
        fields = [
            c["field"] for c in (await client.put(PATH, json={"data": "eA=="})).json()["causes"]
        ]
        assert fields == ["name", "mesh", "type"]


async def test_oversized_body(manager: ResourceManager) -> None:
    async with admin_client(manager, AdminSettings(max_body_bytes=100)) as client:
        r = await client.put(PATH, json=secret(data="QUFB" * 100))
        assert r.status_code == 413
    assert (await manager.list(registry.SECRET)).total == 0


async def test_read_only(manager: ResourceManager) -> None:
    await manager.create(resource_from_dict(secret()))
    async with admin_client(manager, AdminSettings(read_only=True)) as client:
        for method in ("PUT", "DELETE"):
            r = await client.request(method, PATH, json=secret())
            assert (r.status_code, r.text) == (405, K8S_READ_ONLY_MESSAGE)
        assert (await client.get(PATH)).status_code == 200


async def test_only_secrets_are_served(manager: ResourceManager) -> None:
    async with admin_client(manager) as client:
        assert (await client.get("/meshes")).status_code == 404
        assert (await client.get("/meshes/default/dataplanes")).status_code == 404
        assert (await client.get("/")).status_code == 404


async def test_deleting_the_mesh_deletes_its_secrets(manager: ResourceManager) -> None:
    await manager.create(resource_from_dict({"type": "Mesh", "name": "doomed"}))
    await manager.create(resource_from_dict(secret("s", "doomed")))
    await manager.delete(registry.MESH, "doomed")
    async with admin_client(manager) as client:
        assert (await client.get("/meshes/doomed/secrets/s")).status_code == 404
