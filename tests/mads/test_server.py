"""The MADS server over a real loopback grpclib connection: initial set, pushes on store
changes, ACK/NACK, Fetch, several clients."""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio
import pytest
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError

from kuma.errors import StoreError
from kuma.mads import MONITORING_ASSIGNMENT_TYPE, MadsServer
from kuma.mads.server import MADS_DELTA_METHOD
from kuma.manager import ResourceManager
from kuma.model import registry as r
from kuma.store.events import EventBus, Resync
from kuma.store.memory import MemoryStore
from tests.xds.server.harness import recv_message

from .harness import (
    PROMETHEUS,
    DiscoveryRequest,
    DiscoveryResponse,
    Env,
    MadsClient,
    ack,
    assignments_of,
    dataplane,
    fetch,
    mads_env,
    mesh,
    nack,
    request,
    resource,
)

pytestmark = pytest.mark.anyio


async def test_a_client_gets_one_assignment_per_dataplane_of_monitored_meshes() -> None:
    async with (
        mads_env(
            mesh("default", PROMETHEUS),
            mesh("quiet"),
            dataplane("backend-01"),
            dataplane("web-01", service="web", address="192.168.0.2"),
            dataplane("other-01", mesh="quiet"),
        ) as env,
        env.client() as client,
    ):
        response = await client.subscribe()
        assert response.type_url == MONITORING_ASSIGNMENT_TYPE
        assert response.version_info
        assert response.nonce
        got = assignments_of(response)
        assert sorted(got) == [
            "/meshes/default/dataplanes/backend-01",
            "/meshes/default/dataplanes/web-01",
        ]
        web = got["/meshes/default/dataplanes/web-01"]
        assert [t.labels for t in web.targets] == [{"__address__": "192.168.0.2:1234"}]
        assert web.labels == {
            "kuma_io_service": "web",
            "kuma_io_services": ",web,",
            "__scheme__": "http",
            "__metrics_path__": "/non-standard-path",
            "job": "web",
            "instance": "web-01",
            "mesh": "default",
            "dataplane": "web-01",
        }

        # an ACK is answered by nothing until something changes
        await client.send(ack(response))
        assert await client.nothing_within(0.3)
        (stream,) = env.server.streams
        assert stream.node_id == "kuma_sd"
        assert (stream.acks, stream.nacks, stream.responses_sent) == (1, 0, 1)


async def test_dataplanes_added_and_deleted_are_pushed() -> None:
    async with (
        mads_env(mesh("default", PROMETHEUS), dataplane("backend-01")) as env,
        env.client() as client,
    ):
        first = await client.subscribe()
        await client.send(ack(first))

        await env.manager.create(dataplane("backend-02", address="10.0.0.2"))
        added = await client.recv()
        assert added.version_info != first.version_info
        assert added.nonce != first.nonce
        assert sorted(assignments_of(added)) == [
            "/meshes/default/dataplanes/backend-01",
            "/meshes/default/dataplanes/backend-02",
        ]
        await client.send(ack(added))

        await env.manager.delete(r.DATAPLANE, "backend-01", "default")
        deleted = await client.recv()
        assert sorted(assignments_of(deleted)) == ["/meshes/default/dataplanes/backend-02"]
        # the same content as before the two changes has the same version (a content hash)
        await client.send(ack(deleted))
        await env.manager.create(dataplane("backend-01"))
        again = await client.recv()
        await env.manager.delete(r.DATAPLANE, "backend-02", "default")
        await client.send(ack(again))
        back = await client.recv()
        assert back.version_info == first.version_info
        assert assignments_of(back).keys() == assignments_of(first).keys()


async def test_changes_that_do_not_alter_assignments_push_nothing() -> None:
    async with (
        mads_env(mesh("default", PROMETHEUS), dataplane("backend-01")) as env,
        env.client() as client,
    ):
        first = await client.subscribe()
        await client.send(ack(first))
        # a policy, an identical dataplane update, a mesh change that leaves metrics alone
        await env.manager.create(
            resource(
                "type: TrafficPermission\nname: all\nmesh: default\n"
                "sources: [{match: {kuma.io/service: '*'}}]\n"
                "destinations: [{match: {kuma.io/service: '*'}}]\n"
            )
        )
        dp = await env.manager.get(r.DATAPLANE, "backend-01", "default")
        await env.manager.update(dp)
        m = await env.manager.get(r.MESH, "default")
        m.spec.logging = None
        await env.manager.update(m)
        assert await client.nothing_within(0.4)
        (stream,) = env.server.streams
        assert stream.responses_sent == 1


async def test_enabling_and_disabling_mesh_metrics_is_pushed() -> None:
    async with (
        mads_env(mesh("default"), dataplane("backend-01"), dataplane("backend-02")) as env,
        env.client() as client,
    ):
        first = await client.subscribe()
        assert assignments_of(first) == {}
        await client.send(ack(first))

        await env.manager.upsert(mesh("default", PROMETHEUS))
        enabled = await client.recv()
        assert len(assignments_of(enabled)) == 2
        await client.send(ack(enabled))

        # a new port on the mesh changes every address
        await env.manager.upsert(mesh("default", PROMETHEUS.replace("1234", "9999")))
        moved = await client.recv()
        addresses = {a.targets[0].labels["__address__"] for a in assignments_of(moved).values()}
        assert addresses == {"192.168.0.1:9999"}
        await client.send(ack(moved))

        await env.manager.upsert(mesh("default"))
        disabled = await client.recv()
        assert assignments_of(disabled) == {}
        assert disabled.version_info == first.version_info


async def test_a_nacked_version_is_offered_again_after_a_backoff_and_a_newer_one_at_once() -> None:
    async with (
        mads_env(mesh("default", PROMETHEUS), dataplane("backend-01")) as env,
        env.client() as client,
    ):
        first = await client.subscribe()
        await client.send(nack(first, accepted_version=""))
        assert await client.nothing_within(0.1)
        retried = await client.recv(within=2)  # initial backoff: 0.2 s
        assert retried.version_info == first.version_info
        assert retried.nonce != first.nonce
        (stream,) = env.server.streams
        assert stream.nacks == 1
        assert stream.last_rejection == "bad assignment"

        # rejected again; a change meanwhile is sent without waiting for the backoff
        await client.send(nack(retried, accepted_version=""))
        await env.manager.create(dataplane("backend-02"))
        newer = await client.recv(within=0.3)
        assert newer.version_info != first.version_info
        await client.send(ack(newer))
        assert await client.nothing_within(0.6)  # no retry of the old version is pending
        assert (stream.acks, stream.nacks) == (1, 2)


async def test_stale_answers_and_other_types_change_nothing() -> None:
    async with (
        mads_env(mesh("default", PROMETHEUS), dataplane("backend-01")) as env,
        env.client() as client,
    ):
        # the type URL may be left out on this (non-aggregated) stream
        await client.send(request(type_url=""))
        first = await client.recv()
        assert len(assignments_of(first)) == 1
        await client.send(request(type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster"))
        await client.send(DiscoveryRequest(type_url=MONITORING_ASSIGNMENT_TYPE, response_nonce="x"))
        assert await client.nothing_within(0.3)
        await client.send(ack(first))
        await env.manager.create(dataplane("backend-02"))
        assert len(assignments_of(await client.recv())) == 2


async def test_every_client_gets_the_same_bytes_and_its_own_nonces() -> None:
    async with (
        mads_env(mesh("default", PROMETHEUS), dataplane("backend-01")) as env,
        env.client() as one,
        env.client() as two,
    ):
        a, b = await one.subscribe(), await two.subscribe()
        assert a.version_info == b.version_info
        assert [x.SerializeToString() for x in a.resources] == [
            x.SerializeToString() for x in b.resources
        ]
        await one.send(ack(a))
        await two.send(ack(b))
        await env.manager.create(dataplane("backend-02"))
        a2, b2 = await one.recv(), await two.recv()
        assert a2.version_info == b2.version_info != a.version_info
        assert len(env.server.streams) == 2
    assert env.server.streams == []


async def test_fetch_returns_the_current_set_once() -> None:
    async with mads_env(mesh("default", PROMETHEUS), dataplane("backend-01")) as env:
        response = await fetch(env.port)
        assert response.type_url == MONITORING_ASSIGNMENT_TYPE
        assert list(assignments_of(response)) == ["/meshes/default/dataplanes/backend-01"]
        assert response.nonce == ""
        with pytest.raises(GRPCError) as e:
            await fetch(env.port, version=response.version_info)
        assert e.value.status is Status.UNKNOWN
        assert e.value.message == "skip fetch: version up to date"


async def test_delta_is_unimplemented() -> None:
    async with mads_env() as env:
        channel = Channel("127.0.0.1", env.port)
        try:
            async with channel.request(
                MADS_DELTA_METHOD, Cardinality.STREAM_STREAM, DiscoveryRequest, DiscoveryResponse
            ) as stream:
                await stream.send_message(DiscoveryRequest(), end=True)
                with pytest.raises(GRPCError) as e:
                    await recv_message(stream)
            assert e.value.status is Status.UNIMPLEMENTED
        finally:
            channel.close()


def _memory_store(env: Env) -> MemoryStore:
    store = env.manager.store
    store = getattr(store, "inner", store)
    assert isinstance(store, MemoryStore)
    return store


async def test_a_resync_event_reloads_everything() -> None:
    async with (
        mads_env(mesh("default", PROMETHEUS), dataplane("backend-01")) as env,
        env.client() as client,
    ):
        first = await client.subscribe()
        await client.send(ack(first))
        store = _memory_store(env)
        bus, store._bus = store._bus, EventBus()  # this write announces nothing
        await env.manager.create(dataplane("backend-02"))
        store._bus = bus
        assert await client.nothing_within(0.3)
        bus.publish(Resync("test"))
        assert len(assignments_of(await client.recv())) == 2


async def test_the_safety_resync_catches_writes_that_were_never_announced() -> None:
    async with (
        mads_env(mesh("default", PROMETHEUS), dataplane("backend-01"), resync_interval=0.3) as env,
        env.client() as client,
    ):
        first = await client.subscribe()
        await client.send(ack(first))
        store = _memory_store(env)
        bus, store._bus = store._bus, EventBus()
        await env.manager.delete(r.DATAPLANE, "backend-01", "default")
        store._bus = bus
        assert assignments_of(await client.recv(within=3)) == {}


class _FlakyStore(MemoryStore):
    """A memory store whose Dataplane reads fail while `down` is set (a database that went away
    for the reader)."""

    down = False

    async def get(self, rtype: Any, name: str, mesh: str = "") -> Any:
        if self.down and rtype is r.DATAPLANE:
            raise StoreError("connection lost")
        return await super().get(rtype, name, mesh)

    async def list(self, rtype: Any, mesh: str | None = None, **kw: Any) -> Any:
        if self.down and rtype is r.DATAPLANE:
            raise StoreError("connection lost")
        return await super().list(rtype, mesh, **kw)


async def test_store_failures_keep_the_last_set_and_recover() -> None:
    store = _FlakyStore()
    manager = ResourceManager(store)
    await manager.create(mesh("default", PROMETHEUS))
    await manager.create(dataplane("backend-01"))
    server = MadsServer(manager)
    async with anyio.create_task_group() as tg:
        port = await tg.start(partial(server.run, host="127.0.0.1", port=0))
        async with MadsClient(port) as client:
            first = await client.subscribe()
            await client.send(ack(first))
            store.down = True
            await manager.create(dataplane("backend-02"))  # the write works, reading it fails
            assert await client.nothing_within(0.3)
            assert server.index.current.version == first.version_info  # still served
            store.down = False
            recovered = await client.recv(within=5)
            assert len(assignments_of(recovered)) == 2
        tg.cancel_scope.cancel()
