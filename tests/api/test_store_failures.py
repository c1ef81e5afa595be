"""A failing store gives Kuma's 500 body (and a log line), never a traceback to the client."""

from __future__ import annotations

import pytest

from kuma.errors import StoreError
from kuma.manager import ResourceManager
from kuma.model.resource import Resource, ResourceType
from kuma.store.base import ListResult
from kuma.store.memory import MemoryStore
from tests.api.support import api_client, assert_golden

pytestmark = pytest.mark.anyio


class BrokenStore(MemoryStore):
    """Stands for a backend whose connection is gone: reads fail with StoreError."""

    broken = False

    async def get(self, rtype: ResourceType, name: str, mesh: str = "") -> Resource:
        if self.broken:
            raise StoreError("connection refused")
        return await super().get(rtype, name, mesh)

    async def list(
        self,
        rtype: ResourceType,
        mesh: str | None = None,
        *,
        size: int | None = None,
        offset: str | None = None,
    ) -> ListResult:
        if self.broken:
            raise StoreError("connection refused")
        return await super().list(rtype, mesh, size=size, offset=offset)


async def test_store_failures_are_500_with_kumas_body() -> None:
    store = BrokenStore()
    manager = ResourceManager(store)
    await manager.ensure_default_mesh()
    store.broken = True
    async with api_client(manager) as client:
        one = await client.get("/meshes/default")
        assert one.status_code == 500
        assert one.json() == {
            "title": "Could not retrieve a resource",
            "details": "Internal Server Error",
        }
        assert_golden("errors/store_failure.json", one.text)
        many = await client.get("/meshes")
        assert many.json() == {
            "title": "Could not retrieve resources",
            "details": "Internal Server Error",
        }
        put = await client.put("/meshes/x", json={"type": "Mesh", "name": "x"})
        assert put.status_code == 500
        assert put.json()["title"] == "Could not find a resource"
        overview = await client.get("/meshes/default/dataplanes+insights")
        assert overview.json()["title"] == "Could not retrieve dataplane overviews"
        assert "connection refused" not in one.text
