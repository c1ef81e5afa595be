"""ResourceManager: validation, mesh existence, ownership and defaults on top of a store."""

from __future__ import annotations

import pytest

from kuma.errors import MeshNotFoundError, ResourceNotFoundError, ValidationError, Violation
from kuma.manager import ResourceManager
from kuma.model import registry as r
from kuma.model.resource import Resource, ResourceMeta
from kuma.model.yamlio import load_resources
from kuma.store.memory import MemoryStore

pytestmark = pytest.mark.anyio

DP = """
type: Dataplane
mesh: {mesh}
name: {name}
networking:
  address: 10.0.0.1
  inbound:
  - port: 8000
    tags: {{kuma.io/service: backend}}
"""


@pytest.fixture
async def manager() -> ResourceManager:
    m = ResourceManager(MemoryStore())
    await m.ensure_default_mesh()
    return m


async def test_default_mesh_is_created_once(manager: ResourceManager) -> None:
    assert await manager.ensure_default_mesh() is False
    assert (await manager.list(r.MESH)).total == 1


async def test_mesh_scoped_resource_needs_its_mesh(manager: ResourceManager) -> None:
    (dp,) = load_resources(DP.format(mesh="ghost", name="dp-1"))
    with pytest.raises(MeshNotFoundError) as info:
        await manager.create(dp)
    assert str(info.value) == "mesh of name ghost is not found"
    assert (await manager.list(r.DATAPLANE)).total == 0


async def test_invalid_resource_is_rejected_before_the_store(manager: ResourceManager) -> None:
    (dp,) = load_resources(DP.format(mesh="default", name="Bad.Name"))
    dp.spec.networking.address = "not-an-ip"
    with pytest.raises(ValidationError) as info:
        await manager.create(dp)
    assert info.value.violations[0] == Violation(
        "name",
        "invalid characters. Valid characters are numbers, lowercase latin letters and '-', '_' symbols.",
    )
    assert Violation("networking.address", "address has to be valid IP address") in info.value
    assert (await manager.list(r.DATAPLANE)).total == 0


async def test_insight_is_owned_by_its_dataplane(manager: ResourceManager) -> None:
    orphan = Resource(r.DATAPLANE_INSIGHT, ResourceMeta(name="dp-1", mesh="default"))
    with pytest.raises(ResourceNotFoundError):
        await manager.create(orphan)
    (dp,) = load_resources(DP.format(mesh="default", name="dp-1"))
    await manager.create(dp)
    await manager.create(Resource(r.DATAPLANE_INSIGHT, ResourceMeta(name="dp-1", mesh="default")))
    await manager.delete(r.DATAPLANE, "dp-1", "default")
    assert (await manager.list(r.DATAPLANE_INSIGHT)).total == 0


async def test_upsert_creates_then_updates(manager: ResourceManager) -> None:
    (dp,) = load_resources(DP.format(mesh="default", name="dp-1"))
    assert await manager.upsert(dp) is True
    (again,) = load_resources(DP.format(mesh="default", name="dp-1"))
    again.spec.networking.inbound[0].port = 9000
    assert await manager.upsert(again) is False
    got = await manager.get(r.DATAPLANE, "dp-1", "default")
    assert got.spec.networking.inbound[0].port == 9000
    assert got.meta.version == "2"


async def test_prometheus_backend_defaults_on_create_and_update(manager: ResourceManager) -> None:
    (mesh,) = load_resources(
        """
type: Mesh
name: m1
metrics:
  enabledBackend: prom
  backends:
  - {name: prom, type: prometheus}
"""
    )
    await manager.create(mesh)
    got = await manager.get(r.MESH, "m1")
    assert got.spec_dict()["metrics"]["backends"][0]["conf"] == {
        "port": 5670,
        "path": "/metrics",
        "tags": {"kuma.io/service": "dataplane-metrics"},
    }
    got.spec.metrics.backends[0].conf = None
    got.spec.metrics.backends.append(
        got.spec.metrics.backends[0].__class__(name="p2", type="prometheus", conf=None)
    )
    await manager.update(got)
    again = await manager.get(r.MESH, "m1")
    assert [b["conf"]["port"] for b in again.spec_dict()["metrics"]["backends"]] == [5670, 5670]
