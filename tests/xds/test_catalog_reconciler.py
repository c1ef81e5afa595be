"""MeshCatalog + Reconciler: store changes reach the right proxies' snapshots, and only them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import pytest

from kuma.manager import ResourceManager
from kuma.model import registry as r
from kuma.model.rest import resource_from_dict
from kuma.store.events import Resync
from kuma.store.memory import MemoryStore
from kuma.xds.catalog import MeshCatalog, MeshChange
from kuma.xds.core import CLUSTER, ENDPOINT, LISTENER, DataplaneMetadata, ProxyId
from kuma.xds.generators import SnapshotGenerator
from kuma.xds.reconciler import Reconciler

pytestmark = pytest.mark.anyio


def dataplane(
    name: str, address: str, service: str, outbounds: list[str] = (), **kw: object
) -> dict:  # type: ignore[assignment]
    networking: dict[str, object] = {
        "address": address,
        "outbound": [
            {"port": 10000 + i, "tags": {"kuma.io/service": s}} for i, s in enumerate(outbounds)
        ],
    }
    if kw.get("gateway"):
        networking["gateway"] = {"tags": {"kuma.io/service": service}}
    else:
        networking["inbound"] = [{"port": 8080, "tags": {"kuma.io/service": service}}]
    return {"type": "Dataplane", "mesh": "default", "name": name, "networking": networking}


@dataclass
class World:
    manager: ResourceManager
    catalog: MeshCatalog
    reconciler: Reconciler
    changes: list[list[MeshChange]]

    async def put(self, doc: dict) -> None:
        await self.manager.upsert(resource_from_dict(doc))

    async def settle(self) -> None:
        """Let the catalog apply queued events and the reconciler run (bounded)."""
        for _ in range(20):
            await anyio.sleep(0.02)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    manager = ResourceManager(MemoryStore())
    await manager.ensure_default_mesh()
    changes: list[list[MeshChange]] = []
    reconciler: Reconciler | None = None

    def on_change(batch: list[MeshChange]) -> None:
        changes.append(batch)
        assert reconciler is not None
        reconciler.on_change(batch)

    catalog = MeshCatalog(manager, on_change=on_change)
    generator = SnapshotGenerator()
    reconciler = Reconciler(catalog, generator.generate, debounce=0.005)
    async with anyio.create_task_group() as tg:
        await tg.start(catalog.run)
        await tg.start(reconciler.run)
        yield World(manager, catalog, reconciler, changes)
        tg.cancel_scope.cancel()


async def test_catalog_loads_existing_state_and_builds_endpoints() -> None:
    manager = ResourceManager(MemoryStore())
    await manager.ensure_default_mesh()
    for doc in (
        dataplane("backend-1", "10.0.0.1", "backend"),
        dataplane("backend-2", "10.0.0.2", "backend"),
        dataplane("gw", "10.0.0.9", "gateway", gateway=True),
    ):
        await manager.create(resource_from_dict(doc))
    catalog = MeshCatalog(manager)
    async with anyio.create_task_group() as tg:
        await tg.start(catalog.run)
        ctx = catalog.context("default")
        assert ctx is not None
        assert sorted(ctx.dataplanes) == ["backend-1", "backend-2", "gw"]
        assert [e.target for e in ctx.endpoints["backend"]] == ["10.0.0.1", "10.0.0.2"]
        assert "gateway" not in ctx.endpoints  # gateways are never endpoints
        tg.cancel_scope.cancel()


async def test_dataplane_change_rebuilds_only_its_services(world: World) -> None:
    await world.put(dataplane("backend-1", "10.0.0.1", "backend"))
    await world.put(dataplane("db-1", "10.0.1.1", "db"))
    await world.settle()
    before = world.catalog.context("default")
    assert before is not None
    db_endpoints = before.endpoints["db"]

    world.changes.clear()
    await world.put(dataplane("backend-2", "10.0.0.2", "backend"))
    await world.settle()
    after = world.catalog.context("default")
    assert after is not None
    assert after.generation > before.generation
    assert [e.target for e in after.endpoints["backend"]] == ["10.0.0.1", "10.0.0.2"]
    assert after.endpoints["db"] is db_endpoints  # untouched service: same tuple object
    (batch,) = world.changes
    assert batch == [MeshChange("default", dataplanes={"backend-2"}, services={"backend"})]
    # readers of the old context keep a consistent view
    assert [e.target for e in before.endpoints["backend"]] == ["10.0.0.1"]


async def test_policy_and_mesh_changes_affect_everything(world: World) -> None:
    world.changes.clear()
    await world.put(
        {
            "type": "TrafficPermission",
            "mesh": "default",
            "name": "allow",
            "sources": [{"match": {"kuma.io/service": "*"}}],
            "destinations": [{"match": {"kuma.io/service": "*"}}],
        }
    )
    await world.settle()
    ctx = world.catalog.context("default")
    assert ctx is not None
    assert [p.meta.name for p in ctx.policies_of("TrafficPermission")] == ["allow"]
    assert world.changes[-1][0].everything

    await world.manager.delete(r.MESH, "default")
    await world.settle()
    assert world.catalog.context("default") is None
    assert any(c.deleted for batch in world.changes for c in batch)


async def test_resync_reloads_everything(world: World) -> None:
    await world.put(dataplane("backend-1", "10.0.0.1", "backend"))
    await world.settle()
    store = world.manager.store.inner
    assert isinstance(store, MemoryStore)
    world.changes.clear()
    store._bus.publish(Resync("test"))
    await world.settle()
    assert world.changes
    assert world.changes[0][0].everything


async def test_connected_proxy_gets_config_and_endpoint_pushes(world: World) -> None:
    await world.put(dataplane("web-1", "10.0.0.10", "web", ["backend"]))
    await world.put(dataplane("backend-1", "10.0.0.1", "backend"))
    await world.settle()
    async with world.reconciler.connect(ProxyId("default", "web-1"), DataplaneMetadata()) as watch:
        snap = watch.snapshot
        assert snap is not None
        assert set(snap.of_type(LISTENER)) == {"inbound:10.0.0.10:8080", "outbound:127.0.0.1:10000"}
        assert "backend" in snap.of_type(CLUSTER)
        first_gen, eds_version = watch.generation, snap.version(ENDPOINT)

        # an unrelated service changes: no regeneration reaches this proxy
        await world.put(dataplane("other-1", "10.0.5.1", "other"))
        await world.settle()
        assert watch.generation == first_gen

        # a new backend endpoint: pushed, and only EDS changes
        await world.put(dataplane("backend-2", "10.0.0.2", "backend"))
        with anyio.fail_after(5):
            await watch.wait_changed(first_gen)
        snap2 = watch.snapshot
        assert snap2 is not None
        assert snap2.version(ENDPOINT) != eds_version
        assert snap2.version(LISTENER) == snap.version(LISTENER)
        assert snap2.version(CLUSTER) == snap.version(CLUSTER)
        cla = snap2.of_type(ENDPOINT)["backend"].message
        assert cla is not None
        addresses = sorted(
            lb.endpoint.address.socket_address.address
            for group in cla.endpoints  # type: ignore[attr-defined]
            for lb in group.lb_endpoints
        )
        assert addresses == ["10.0.0.1", "10.0.0.2"]

        # the dataplane itself is deleted: empty config
        gen = watch.generation
        await world.manager.delete(r.DATAPLANE, "web-1", "default")
        with anyio.fail_after(5):
            await watch.wait_changed(gen)
        assert watch.snapshot is not None
        assert not watch.snapshot.of_type(LISTENER)
        assert not watch.snapshot.of_type(CLUSTER)
    assert world.reconciler.connected() == []


async def test_overlapping_streams_of_one_proxy_share_tracking(world: World) -> None:
    await world.put(dataplane("web-1", "10.0.0.10", "web"))
    await world.settle()
    pid = ProxyId("default", "web-1")
    async with world.reconciler.connect(pid, DataplaneMetadata()) as first:
        async with world.reconciler.connect(pid, DataplaneMetadata(admin_port=9901)) as second:
            assert first is second
            assert world.reconciler.connected() == [pid]
        assert world.reconciler.connected() == [pid]
    assert world.reconciler.connected() == []


async def test_never_seen_proxy_gets_no_answer_until_registered(world: World) -> None:
    async with world.reconciler.connect(ProxyId("default", "late"), DataplaneMetadata()) as watch:
        await world.settle()
        assert watch.snapshot is None  # Envoy keeps whatever config it has
        await world.put(dataplane("late", "10.0.0.7", "late"))
        with anyio.fail_after(5):
            await watch.wait_changed(0)
        assert watch.snapshot is not None
        assert set(watch.snapshot.of_type(LISTENER)) == {"inbound:10.0.0.7:8080"}
