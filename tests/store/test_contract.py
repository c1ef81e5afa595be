"""The one contract every ResourceStore backend must honour, run against each backend."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import anyio.lowlevel
import pytest

from kuma.errors import (
    InvalidOffsetError,
    ResourceAlreadyExistsError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from kuma.model import registry as r
from kuma.model.resource import Resource, ResourceKey, ResourceMeta
from kuma.pb.kuma.mesh import v1alpha1 as pb
from kuma.store.base import ResourceStore, StrictResourceStore
from kuma.store.events import ChangeEvent, ChangeOp
from kuma.store.memory import MemoryStore
from tests.support.real_kube import KubeTarget, kube_target

pytestmark = pytest.mark.anyio


Names = Callable[..., str]


@pytest.fixture(params=["memory", "postgres", "kubernetes"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def nn(backend: str) -> Names:
    """`nn(name, mesh="default")`: the core name of a namespaced resource in these tests.

    Kubernetes stores Dataplanes and policies as namespaced objects whose core name must be
    `<name>.<namespace>` (Kuma 0.7.3; anything else is a ValidationError), and a name is unique
    within its namespace whatever the mesh. So on Kubernetes these tests put each mesh's
    objects in a namespace named like the mesh; the other backends take the name as it is.
    """
    if backend == "kubernetes":
        return lambda name, mesh="default": f"{name}.{mesh}"
    return lambda name, mesh="default": name


@pytest.fixture
async def store(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[ResourceStore]:
    if backend == "kubernetes":
        from kuma.store.kubernetes import KubernetesStore

        kube = request.getfixturevalue("kube_for_store")
        kubeconfig = kube.write_kubeconfig(request.getfixturevalue("tmp_path") / "kubeconfig")
        async with KubernetesStore.open(kubeconfig) as k8s:
            yield StrictResourceStore(k8s)
        return
    if backend == "memory":
        s: ResourceStore = MemoryStore()
    else:
        from kuma.store.postgres import PostgresStore, migrate_up

        dsn = request.getfixturevalue("postgres_db")
        await migrate_up(dsn)
        s = await PostgresStore.connect(dsn)
    strict = StrictResourceStore(s)
    try:
        yield strict
    finally:
        await strict.close()


@pytest.fixture
def kube_for_store() -> Iterator[KubeTarget]:
    """A fresh fake API server with the namespaces these tests use (one per mesh), or the real
    cluster of KUMA_TEST_KUBECONFIG, emptied of Kuma objects (tests/support/real_kube.py)."""
    with kube_target(("default", "kuma-system", "a", "b", "m", "m1", "m2")) as kube:
        yield kube


def mesh(name: str) -> Resource:
    return Resource(r.MESH, ResourceMeta(name=name))


def dataplane(name: str, mesh_name: str = "default", port: int = 8000) -> Resource:
    spec = pb.Dataplane(
        networking=pb.DataplaneNetworking(
            address="10.0.0.1",
            inbound=[pb.DataplaneNetworkingInbound(port=port, tags={"kuma.io/service": name})],
        )
    )
    return Resource(r.DATAPLANE, ResourceMeta(name=name, mesh=mesh_name), spec)


def mesh_key(name: str) -> ResourceKey:
    return ResourceKey("Mesh", "", name)


async def with_mesh(store: ResourceStore, name: str = "default") -> None:
    await store.create(mesh(name))


async def events_after(sub, count: int) -> list[object]:  # type: ignore[no-untyped-def]
    """Receive `count` events, waiting at most 5 s (PostgreSQL delivers them by NOTIFY)."""
    out = []
    with anyio.fail_after(5):
        while len(out) < count:
            out.append(await sub.receive())
    return out


async def test_create_then_get_round_trips_spec_and_sets_meta(
    store: ResourceStore, nn: Names
) -> None:
    await with_mesh(store)
    res = dataplane(nn("backend-1"))
    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    await store.create(res, owner=mesh_key("default"))
    assert res.meta.version
    got = await store.get(r.DATAPLANE, nn("backend-1"), "default")
    assert got.meta.name == nn("backend-1")
    assert got.meta.mesh == "default"
    assert got.meta.version == res.meta.version
    assert got.meta.creation_time is not None
    assert got.meta.creation_time >= before
    assert got.meta.modification_time == got.meta.creation_time
    assert got.spec.networking.inbound[0].port == 8000
    assert got.spec.networking.inbound[0].tags == {"kuma.io/service": nn("backend-1")}


async def test_create_existing_key_fails_and_keeps_original(
    store: ResourceStore, nn: Names
) -> None:
    await with_mesh(store)
    await store.create(dataplane(nn("dp"), port=1000), owner=mesh_key("default"))
    with pytest.raises(ResourceAlreadyExistsError):
        await store.create(dataplane(nn("dp"), port=2000), owner=mesh_key("default"))
    got = await store.get(r.DATAPLANE, nn("dp"), "default")
    assert got.spec.networking.inbound[0].port == 1000


async def test_same_name_in_other_mesh_or_type_is_independent(
    store: ResourceStore, nn: Names
) -> None:
    await with_mesh(store, "a")
    await with_mesh(store, "b")
    await store.create(dataplane(nn("x", "a"), "a"), owner=mesh_key("a"))
    await store.create(dataplane(nn("x", "b"), "b", port=9000), owner=mesh_key("b"))
    tp = Resource(r.TRAFFIC_PERMISSION, ResourceMeta(name=nn("x", "a"), mesh="a"))
    await store.create(tp, owner=mesh_key("a"))
    assert (await store.get(r.DATAPLANE, nn("x", "b"), "b")).spec.networking.inbound[0].port == 9000
    assert (await store.get(r.TRAFFIC_PERMISSION, nn("x", "a"), "a")).meta.name == nn("x", "a")


async def test_get_missing_raises_not_found(store: ResourceStore) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        await store.get(r.MESH, "nope")
    assert info.value.type_name == "Mesh"
    assert info.value.name == "nope"


async def test_create_with_missing_owner_fails(store: ResourceStore, nn: Names) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        await store.create(dataplane(nn("dp", "ghost"), "ghost"), owner=mesh_key("ghost"))
    assert info.value.type_name == "Mesh"
    result = await store.list(r.DATAPLANE)
    assert result.total == 0


async def test_update_bumps_version_and_keeps_creation_time(
    store: ResourceStore, nn: Names
) -> None:
    await with_mesh(store)
    await store.create(dataplane(nn("dp")), owner=mesh_key("default"))
    res = await store.get(r.DATAPLANE, nn("dp"), "default")
    old_version, created = res.meta.version, res.meta.creation_time
    res.spec.networking.inbound[0].port = 9999
    await store.update(res)
    assert res.meta.version != old_version
    got = await store.get(r.DATAPLANE, nn("dp"), "default")
    assert got.meta.version == res.meta.version
    assert got.meta.creation_time == created
    assert got.meta.modification_time is not None
    assert created is not None
    assert got.meta.modification_time >= created
    assert got.spec.networking.inbound[0].port == 9999


async def test_update_with_stale_version_conflicts_and_changes_nothing(
    store: ResourceStore, nn: Names
) -> None:
    await with_mesh(store)
    await store.create(dataplane(nn("dp")), owner=mesh_key("default"))
    first = await store.get(r.DATAPLANE, nn("dp"), "default")
    second = await store.get(r.DATAPLANE, nn("dp"), "default")
    first.spec.networking.inbound[0].port = 1111
    await store.update(first)
    second.spec.networking.inbound[0].port = 2222
    with pytest.raises(ResourceConflictError):
        await store.update(second)
    got = await store.get(r.DATAPLANE, nn("dp"), "default")
    assert got.spec.networking.inbound[0].port == 1111


async def test_update_missing_raises_not_found(store: ResourceStore) -> None:
    res = mesh("ghost")
    res.meta.version = "1"
    with pytest.raises(ResourceNotFoundError):
        await store.update(res)


async def test_delete_removes_and_missing_delete_raises(store: ResourceStore) -> None:
    await with_mesh(store, "m1")
    await store.delete(r.MESH, "m1")
    with pytest.raises(ResourceNotFoundError):
        await store.get(r.MESH, "m1")
    with pytest.raises(ResourceNotFoundError):
        await store.delete(r.MESH, "m1")


async def test_deleting_owner_cascades_transitively(store: ResourceStore, nn: Names) -> None:
    await with_mesh(store, "m1")
    await with_mesh(store, "m2")
    await store.create(dataplane(nn("dp", "m1"), "m1"), owner=mesh_key("m1"))
    insight = Resource(r.DATAPLANE_INSIGHT, ResourceMeta(name=nn("dp", "m1"), mesh="m1"))
    await store.create(insight, owner=ResourceKey("Dataplane", "m1", nn("dp", "m1")))
    await store.create(dataplane(nn("dp", "m2"), "m2"), owner=mesh_key("m2"))

    await store.delete(r.MESH, "m1")

    assert (await store.list(r.DATAPLANE, "m1")).total == 0
    assert (await store.list(r.DATAPLANE_INSIGHT, "m1")).total == 0
    survivor = await store.get(r.DATAPLANE, nn("dp", "m2"), "m2")
    assert survivor.meta.mesh == "m2"


async def test_list_orders_by_name_then_mesh_and_filters_by_mesh(
    store: ResourceStore, nn: Names
) -> None:
    for m in ("b", "a"):
        await with_mesh(store, m)
    for name, m in [("web", "b"), ("api", "b"), ("web", "a"), ("db", "a")]:
        await store.create(dataplane(nn(name, m), m), owner=mesh_key(m))
    everything = await store.list(r.DATAPLANE)
    assert [(x.meta.name, x.meta.mesh) for x in everything.items] == [
        (nn("api", "b"), "b"),
        (nn("db", "a"), "a"),
        (nn("web", "a"), "a"),
        (nn("web", "b"), "b"),
    ]
    assert everything.total == 4
    assert everything.next_offset is None
    only_a = await store.list(r.DATAPLANE, "a")
    assert [x.meta.name for x in only_a.items] == [nn("db", "a"), nn("web", "a")]
    assert only_a.total == 2
    meshes = await store.list(r.MESH)
    assert [x.meta.name for x in meshes.items] == ["a", "b"]


async def test_list_pages_with_total_and_next_offset(store: ResourceStore, nn: Names) -> None:
    await with_mesh(store)
    for i in range(7):
        await store.create(dataplane(nn(f"dp-{i}")), owner=mesh_key("default"))
    page1 = await store.list(r.DATAPLANE, "default", size=3)
    assert [x.meta.name for x in page1.items] == [nn("dp-0"), nn("dp-1"), nn("dp-2")]
    assert page1.total == 7
    assert page1.next_offset is not None
    page2 = await store.list(r.DATAPLANE, "default", size=3, offset=page1.next_offset)
    assert [x.meta.name for x in page2.items] == [nn("dp-3"), nn("dp-4"), nn("dp-5")]
    assert page2.next_offset is not None
    page3 = await store.list(r.DATAPLANE, "default", size=3, offset=page2.next_offset)
    assert [x.meta.name for x in page3.items] == [nn("dp-6")]
    assert page3.next_offset is None
    assert page3.total == 7


async def test_list_with_offset_past_the_end_is_empty(store: ResourceStore) -> None:
    await with_mesh(store)
    result = await store.list(r.MESH, size=10, offset="50")
    assert result.items == []
    assert result.total == 1
    assert result.next_offset is None


@pytest.mark.parametrize("offset", ["abc", "-1", "1.5", " 2"])
async def test_list_rejects_foreign_offsets(store: ResourceStore, offset: str) -> None:
    with pytest.raises(InvalidOffsetError):
        await store.list(r.MESH, size=10, offset=offset)


async def test_reads_hand_out_independent_copies(store: ResourceStore, nn: Names) -> None:
    await with_mesh(store)
    await store.create(dataplane(nn("dp")), owner=mesh_key("default"))
    one = await store.get(r.DATAPLANE, nn("dp"), "default")
    one.spec.networking.inbound[0].port = 4242
    one.meta.version = "bogus"
    two = await store.get(r.DATAPLANE, nn("dp"), "default")
    assert two.spec.networking.inbound[0].port == 8000
    assert two.meta.version != "bogus"


async def test_writes_are_published_as_change_events(store: ResourceStore, nn: Names) -> None:
    async with store.subscribe() as sub:
        await with_mesh(store, "m")
        await store.create(dataplane(nn("dp", "m"), "m"), owner=mesh_key("m"))
        res = await store.get(r.DATAPLANE, nn("dp", "m"), "m")
        res.spec.networking.inbound[0].port = 8001  # a real change (see the no-op test)
        await store.update(res)
        await store.delete(r.MESH, "m")
        got = await events_after(sub, 5)
    assert got[:3] == [
        ChangeEvent(ChangeOp.CREATE, "Mesh", "", "m"),
        ChangeEvent(ChangeOp.CREATE, "Dataplane", "m", nn("dp", "m")),
        ChangeEvent(ChangeOp.UPDATE, "Dataplane", "m", nn("dp", "m")),
    ]
    # a cascade publishes one delete per resource (order within the cascade is backend's own)
    assert set(got[3:]) == {
        ChangeEvent(ChangeOp.DELETE, "Dataplane", "m", nn("dp", "m")),
        ChangeEvent(ChangeOp.DELETE, "Mesh", "", "m"),
    }


async def test_concurrent_optimistic_updates_lose_nothing(store: ResourceStore, nn: Names) -> None:
    """Writers that retry on conflict never overwrite each other: every increment survives."""
    await with_mesh(store)
    await store.create(dataplane(nn("counter"), port=1), owner=mesh_key("default"))
    writers, per_writer = 8, 10
    conflicts = 0

    async def writer() -> None:
        nonlocal conflicts
        for _ in range(per_writer):
            while True:
                res = await store.get(r.DATAPLANE, nn("counter"), "default")
                res.spec.networking.inbound[0].port += 1
                await (
                    anyio.lowlevel.checkpoint()
                )  # let the others interleave between read and write
                try:
                    await store.update(res)
                    break
                except ResourceConflictError:
                    conflicts += 1

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(writers):
                tg.start_soon(writer)

    final = await store.get(r.DATAPLANE, nn("counter"), "default")
    assert final.spec.networking.inbound[0].port == 1 + writers * per_writer
    assert conflicts > 0  # the interleaving really produced conflicts


async def test_strict_store_rejects_keys_that_do_not_fit_the_scope(store: ResourceStore) -> None:
    with pytest.raises(ValueError, match="mesh-scoped"):
        await store.get(r.DATAPLANE, "dp", "")
    with pytest.raises(ValueError, match="global"):
        await store.get(r.MESH, "m", "default")


async def test_update_without_changes(store: ResourceStore, nn: Names, backend: str) -> None:
    """Memory and PostgreSQL count every update as a write (new version, one event). On
    Kubernetes an update that changes nothing is a no-op of the API server: the version stays
    and no watch event (hence no change event) is produced, as with Kuma's Kubernetes store."""
    created = ChangeEvent(ChangeOp.CREATE, "Dataplane", "default", nn("dp"))
    async with store.subscribe() as sub:
        await with_mesh(store)
        await store.create(dataplane(nn("dp")), owner=mesh_key("default"))
        with anyio.fail_after(5):
            while await sub.receive() != created:
                pass
        res = await store.get(r.DATAPLANE, nn("dp"), "default")
        before = res.meta.version
        await store.update(res)
        if backend == "kubernetes":
            assert res.meta.version == before
            with anyio.move_on_after(0.5):
                event = await sub.receive()
                pytest.fail(f"no-op update published {event}")
        else:
            assert res.meta.version != before
            assert await events_after(sub, 1) == [
                ChangeEvent(ChangeOp.UPDATE, "Dataplane", "default", nn("dp"))
            ]
    assert (await store.get(r.DATAPLANE, nn("dp"), "default")).meta.version == res.meta.version
