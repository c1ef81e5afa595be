"""What the Kubernetes store does beyond the shared contract (tests/store/test_contract.py):
Kuma's object shapes and names on Kubernetes, Secrets, and change events across watch breaks."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from kuma.errors import (
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    StoreError,
    ValidationError,
)
from kuma.model import registry as r
from kuma.model.resource import Resource, ResourceKey, ResourceMeta
from kuma.pb.kuma.mesh import v1alpha1 as pb
from kuma.pb.kuma.system import v1alpha1 as system_pb
from kuma.store.events import ChangeEvent, ChangeOp, Resync, Subscription
from kuma.store.kubernetes import KubernetesStore
from tests.support.fake_kube import FakeKube, fake_kube

pytestmark = pytest.mark.anyio

MESH_DEFAULT = ResourceKey("Mesh", "", "default")


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    # no BOOKMARKs unless a test asks for them: they move a watch's version past compactions
    with fake_kube(
        namespaces=("default", "kuma-system", "web", "custom-system"), bookmark_interval=3600
    ) as k:
        yield k


@pytest.fixture
def kubeconfig(kube: FakeKube, tmp_path: Path) -> Path:
    return kube.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
async def store(kubeconfig: Path) -> AsyncIterator[KubernetesStore]:
    async with KubernetesStore.open(kubeconfig) as s:
        async with s.subscribe() as sub:
            await s.create(Resource(r.MESH, ResourceMeta(name="default")))
            # its event is delivered (asynchronously, by the watch) before the test subscribes
            assert await next_events(sub, 1) == [
                ChangeEvent(ChangeOp.CREATE, "Mesh", "", "default")
            ]
        yield s


def dataplane(name: str, mesh: str = "default") -> Resource:
    spec = pb.Dataplane(
        networking=pb.DataplaneNetworking(
            address="10.0.0.1",
            inbound=[pb.DataplaneNetworkingInbound(port=80, tags={"kuma.io/service": "web"})],
        )
    )
    return Resource(r.DATAPLANE, ResourceMeta(name=name, mesh=mesh), spec)


async def next_events(sub: Subscription, count: int) -> list[Any]:
    out = []
    with anyio.fail_after(5):
        while len(out) < count:
            out.append(await sub.receive())
    return out


async def settle(sub: Subscription) -> list[Any]:
    """Everything received until nothing more comes for half a second."""
    out: list[Any] = []
    with anyio.fail_after(10):
        while True:
            with anyio.move_on_after(0.5) as quiet:
                out.append(await sub.receive())
            if quiet.cancelled_caught:
                return out


async def test_objects_have_kumas_shape_in_the_api(store: KubernetesStore, kube: FakeKube) -> None:
    await store.create(dataplane("web-1.web"), owner=MESH_DEFAULT)
    insight = Resource(
        r.DATAPLANE_INSIGHT,
        ResourceMeta(name="web-1.web", mesh="default"),
        pb.DataplaneInsight(subscriptions=[pb.DiscoverySubscription(id="s1")]),
    )
    await store.create(insight, owner=ResourceKey("Dataplane", "default", "web-1.web"))

    mesh = kube.get("meshes", "default")
    assert mesh is not None
    assert set(mesh) == {"apiVersion", "kind", "metadata", "spec"}  # no mesh field on a Mesh
    dp = kube.get("dataplanes", "web-1", "web")
    assert dp is not None
    assert dp["apiVersion"] == "kuma.io/v1alpha1"
    assert dp["kind"] == "Dataplane"
    assert dp["mesh"] == "default"
    assert dp["spec"]["networking"]["inbound"][0]["port"] == 80
    assert dp["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "kuma.io/v1alpha1",
            "kind": "Mesh",
            "name": "default",
            "uid": mesh["metadata"]["uid"],
        }
    ]
    di = kube.get("dataplaneinsights", "web-1", "web")
    assert di is not None
    assert di["status"] == {"subscriptions": [{"id": "s1"}]}  # Kuma keeps it under status
    assert "spec" not in di
    got = await store.get(r.DATAPLANE, "web-1.web", "default")
    assert got.meta.version == dp["metadata"]["resourceVersion"]
    assert got.meta.creation_time is not None
    assert got.meta.creation_time.isoformat().startswith(dp["metadata"]["creationTimestamp"][:19])
    got_insight = await store.get(r.DATAPLANE_INSIGHT, "web-1.web", "default")
    assert got_insight.spec.subscriptions[0].id == "s1"


async def test_names_follow_kuma_rules(store: KubernetesStore) -> None:
    with pytest.raises(ValidationError) as info:
        await store.create(dataplane("no-namespace"), owner=MESH_DEFAULT)
    assert (
        str(info.value) == 'name: name must include namespace after the dot, ex. "name.namespace"'
    )
    with pytest.raises(ValidationError) as info:
        await store.create(dataplane("Web_1.web"), owner=MESH_DEFAULT)
    assert info.value.violations[0].field == "name"
    assert "RFC 1123 subdomain" in info.value.violations[0].message
    with pytest.raises(ValidationError, match='namespace "nowhere" does not exist'):
        await store.create(dataplane("web-1.nowhere"), owner=MESH_DEFAULT)
    # the namespace is what follows the last dot
    await store.create(dataplane("web.v1.web"), owner=MESH_DEFAULT)
    got = await store.get(r.DATAPLANE, "web.v1.web", "default")
    assert got.meta.name == "web.v1.web"
    with pytest.raises(ResourceNotFoundError):
        await store.get(r.DATAPLANE, "no-namespace", "default")


async def test_a_name_is_unique_per_namespace_whatever_the_mesh(store: KubernetesStore) -> None:
    """Unlike memory and PostgreSQL, Kubernetes keys objects by (namespace, name): the same
    core name cannot exist in two meshes, and reading it with another mesh finds nothing."""
    await store.create(Resource(r.MESH, ResourceMeta(name="other")))
    await store.create(dataplane("web-1.web"), owner=MESH_DEFAULT)
    with pytest.raises(ResourceAlreadyExistsError):
        await store.create(dataplane("web-1.web", "other"), owner=ResourceKey("Mesh", "", "other"))
    with pytest.raises(ResourceNotFoundError):
        await store.get(r.DATAPLANE, "web-1.web", "other")
    with pytest.raises(ResourceNotFoundError):
        await store.delete(r.DATAPLANE, "web-1.web", "other")
    assert (await store.list(r.DATAPLANE, "other")).total == 0


async def test_objects_created_with_kubectl_are_read_and_published(
    store: KubernetesStore, kube: FakeKube
) -> None:
    async with store.subscribe() as sub:
        kube.create(
            {
                "apiVersion": "kuma.io/v1alpha1",
                "kind": "TrafficPermission",
                "mesh": "default",
                "metadata": {"name": "allow", "namespace": "web", "labels": {"team": "a"}},
                "spec": {
                    "sources": [{"match": {"kuma.io/service": "*"}}],
                    "destinations": [{"match": {"kuma.io/service": "*"}}],
                },
            }
        )
        (event,) = await next_events(sub, 1)
        assert event == ChangeEvent(ChangeOp.CREATE, "TrafficPermission", "default", "allow.web")
        tp = await store.get(r.TRAFFIC_PERMISSION, "allow.web", "default")
        assert tp.spec.sources[0].match == {"kuma.io/service": "*"}
        # an update through the store keeps what kubectl users put in metadata
        tp.spec.sources[0].match = {"kuma.io/service": "web"}
        await store.update(tp)
        stored = kube.get("trafficpermissions", "allow", "web")
        assert stored is not None
        assert stored["metadata"]["labels"] == {"team": "a"}
        assert stored["spec"]["sources"] == [{"match": {"kuma.io/service": "web"}}]
        kube.delete("trafficpermissions", "allow", "web")
        assert await next_events(sub, 2) == [
            ChangeEvent(ChangeOp.UPDATE, "TrafficPermission", "default", "allow.web"),
            ChangeEvent(ChangeOp.DELETE, "TrafficPermission", "default", "allow.web"),
        ]


async def test_secrets_are_core_secrets_in_the_system_namespace(
    kubeconfig: Path, kube: FakeKube
) -> None:
    async with KubernetesStore.open(kubeconfig, system_namespace="custom-system") as store:
        await store.create(Resource(r.MESH, ResourceMeta(name="default")))
        await store.create(Resource(r.MESH, ResourceMeta(name="other")))
        secret = Resource(
            r.SECRET,
            ResourceMeta(name="db-password", mesh="default"),
            system_pb.Secret(data=b"s3cr3t"),
        )
        await store.create(secret, owner=MESH_DEFAULT)
        obj = kube.get("secrets", "db-password", "custom-system")
        assert obj is not None
        assert obj["type"] == "system.kuma.io/secret"
        assert obj["metadata"]["labels"] == {"kuma.io/mesh": "default"}
        assert base64.b64decode(obj["data"]["value"]) == b"s3cr3t"

        got = await store.get(r.SECRET, "db-password", "default")
        assert got.spec.data == b"s3cr3t"
        with pytest.raises(ResourceNotFoundError):
            await store.get(r.SECRET, "db-password", "other")
        got.spec.data = b"changed"
        await store.update(got)
        assert (await store.get(r.SECRET, "db-password", "default")).spec.data == b"changed"

        # a Secret that is not Kuma's is invisible to the store
        kube.create(
            {
                "kind": "Secret",
                "apiVersion": "v1",
                "metadata": {"name": "tls", "namespace": "custom-system"},
                "type": "kubernetes.io/tls",
                "data": {},
            }
        )
        with pytest.raises(ResourceNotFoundError):
            await store.get(r.SECRET, "tls", "default")
        assert [s.meta.name for s in (await store.list(r.SECRET)).items] == ["db-password"]
        assert (await store.list(r.SECRET, "other")).total == 0

        # deleting the Mesh removes its Secrets (ownerReferences, garbage collection)
        await store.delete(r.MESH, "default")
        assert kube.get("secrets", "db-password", "custom-system") is None
        assert kube.get("secrets", "tls", "custom-system") is not None


async def test_events_survive_a_broken_watch(store: KubernetesStore, kube: FakeKube) -> None:
    """A watch that ends is resumed from the last version seen: nothing is lost, no Resync."""
    async with store.subscribe() as sub:
        await store.create(dataplane("a.web"), owner=MESH_DEFAULT)
        assert await next_events(sub, 1) == [
            ChangeEvent(ChangeOp.CREATE, "Dataplane", "default", "a.web")
        ]
        kube.drop_watches()
        # written while the store has no watch open (it reconnects after RECONNECT_MIN)
        await store.create(dataplane("b.web"), owner=MESH_DEFAULT)
        await store.delete(r.DATAPLANE, "a.web", "default")
        assert await next_events(sub, 2) == [
            ChangeEvent(ChangeOp.CREATE, "Dataplane", "default", "b.web"),
            ChangeEvent(ChangeOp.DELETE, "Dataplane", "default", "a.web"),
        ]


async def test_expired_watch_relists_and_asks_for_resync(
    store: KubernetesStore, kube: FakeKube
) -> None:
    """When the API server no longer has the history to resume from (410 Gone), subscribers get
    a Resync and events keep coming afterwards."""
    async with store.subscribe() as sub:
        await store.create(dataplane("a.web"), owner=MESH_DEFAULT)
        assert await next_events(sub, 1) == [
            ChangeEvent(ChangeOp.CREATE, "Dataplane", "default", "a.web")
        ]
        kube.compact()
        kube.drop_watches()  # they resume from versions the server has forgotten
        (first,) = await next_events(sub, 1)
        assert isinstance(first, Resync)
        rest = await settle(sub)  # every watch has listed again
        assert all(isinstance(e, Resync) for e in rest)
        await store.create(dataplane("after.web"), owner=MESH_DEFAULT)
        assert await next_events(sub, 1) == [
            ChangeEvent(ChangeOp.CREATE, "Dataplane", "default", "after.web")
        ]


async def test_bookmarks_keep_an_idle_watch_resumable(tmp_path: Path) -> None:
    """BOOKMARKs move an idle watch's version forward, so a compaction after them costs no
    Resync: the store resumes without missing or replaying anything."""
    with fake_kube(namespaces=("default", "web"), bookmark_interval=0.1) as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        async with KubernetesStore.open(kubeconfig) as store, store.subscribe() as sub:
            await store.create(Resource(r.MESH, ResourceMeta(name="default")))
            await next_events(sub, 1)
            await anyio.sleep(0.5)  # a few bookmarks on every watch
            kube.compact()
            kube.drop_watches()
            await store.create(dataplane("b.web"), owner=MESH_DEFAULT)
            assert await next_events(sub, 1) == [
                ChangeEvent(ChangeOp.CREATE, "Dataplane", "default", "b.web")
            ]
            assert await settle(sub) == []


async def test_unreachable_api_server_is_a_store_error(tmp_path: Path) -> None:
    with fake_kube() as gone:
        kubeconfig = gone.write_kubeconfig(tmp_path / "kubeconfig")
    with pytest.raises(StoreError, match="kubernetes API server"):
        await KubernetesStore.connect(kubeconfig)
    with pytest.raises(StoreError, match="could not load the kubeconfig"):
        await KubernetesStore.connect(tmp_path / "missing")


async def test_missing_crds_are_named(tmp_path: Path) -> None:
    """Against an API server without Kuma's CRDs, connecting says what is missing."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.support.fake_kube import serve_app

    async def not_found(request: Any) -> JSONResponse:
        return JSONResponse({"kind": "Status", "code": 404, "reason": "NotFound"}, status_code=404)

    app = Starlette(routes=[Route("/{path:path}", not_found)])
    with serve_app(app) as url:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            '{"apiVersion": "v1", "kind": "Config", "current-context": "c",'
            f' "clusters": [{{"name": "k", "cluster": {{"server": "{url}"}}}}],'
            ' "users": [{"name": "u", "user": {}}],'
            ' "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}]}'
        )
        with pytest.raises(StoreError, match="are Kuma's CRDs installed"):
            await KubernetesStore.connect(kubeconfig)
