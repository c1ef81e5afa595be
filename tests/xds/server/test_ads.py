"""The ADS server over real gRPC on 127.0.0.1, with a grpclib client playing Envoy."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from kuma.errors import TransientError
from kuma.manager import ResourceManager
from kuma.model import registry as r
from kuma.model.yamlio import load_resources
from kuma.store.memory import MemoryStore
from kuma.xds.core import CLUSTER, ENDPOINT, LISTENER, DataplaneMetadata, ProxyId, Snapshot
from kuma.xds.core import XdsResource as Res
from kuma.xds.insights import InsightRecorder
from kuma.xds.metrics import XdsMetrics
from kuma.xds.server.ads import AdsServer, AuthenticationError, Authenticator

from .harness import AdsClient, StaticSource, answer, delta_call, node_request

pytestmark = pytest.mark.anyio

WEB = ProxyId("default", "web")


def cluster(name: str, timeout_ms: int = 250) -> Res:
    msg = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
    msg.connect_timeout.FromMilliseconds(timeout_ms)
    return Res(name, CLUSTER, msg)


def cla(name: str, *ports: int) -> Res:
    msg = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    group = msg.endpoints.add()
    for port in ports:
        address = group.lb_endpoints.add().endpoint.address.socket_address
        address.address = "127.0.0.1"
        address.port_value = port
    return Res(name, ENDPOINT, msg)


def listener(name: str, port: int) -> Res:
    msg = listener_pb2.Listener(name=name)
    msg.address.socket_address.address = "127.0.0.1"
    msg.address.socket_address.port_value = port
    return Res(name, LISTENER, msg)


def names_of(response: Any, message_cls: Any) -> list[str]:
    out = []
    for item in response.resources:
        msg = message_cls()
        item.Unpack(msg)
        out.append(
            msg.cluster_name if message_cls is endpoint_pb2.ClusterLoadAssignment else msg.name
        )
    return sorted(out)


BASE = Snapshot.build(
    [
        cluster("backend"),
        cluster("db"),
        cla("backend", 8001, 8002),
        cla("db", 5432),
        listener("inbound:10.0.0.1:80", 10080),
    ]
)


@dataclass
class Env:
    source: StaticSource
    server: AdsServer
    port: int
    manager: ResourceManager
    recorder: InsightRecorder
    metrics: XdsMetrics


DP = """
type: Dataplane
mesh: default
name: web
networking:
  address: 10.0.0.1
  inbound:
  - port: 80
    tags: {kuma.io/service: web}
"""


@pytest.fixture
def authenticator() -> Authenticator | None:
    return None


@pytest.fixture
async def env(authenticator: Authenticator | None) -> AsyncIterator[Env]:
    manager = ResourceManager(MemoryStore())
    await manager.ensure_default_mesh()
    (dp,) = load_resources(DP)
    await manager.create(dp)
    recorder = InsightRecorder(manager, flush_interval=0.05)
    metrics = XdsMetrics(CollectorRegistry())
    source = StaticSource()
    server = AdsServer(
        source,
        instance_id="cp-test",
        insights=recorder,
        metrics=metrics,
        authenticator=authenticator,
        initial_backoff=0.3,
        max_backoff=1.0,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(recorder.run)
        port = await tg.start(
            lambda task_status: server.run(host="127.0.0.1", port=0, task_status=task_status)
        )
        yield Env(source, server, port, manager, recorder, metrics)
        tg.cancel_scope.cancel()


async def eventually(check: Any, within: float = 5.0) -> None:
    """Wait until `await check()` is true (exceptions count as not yet)."""
    last: Exception | None = None
    with anyio.move_on_after(within):
        while True:
            try:
                if await check():
                    return
            except Exception as e:
                last = e
            await anyio.sleep(0.02)
    raise AssertionError(f"not true within {within} s (last error: {last!r})")


@pytest.fixture
def logs() -> Iterator[list[dict[str, Any]]]:
    with capture_logs() as captured:
        yield captured


# -- the happy path -----------------------------------------------------------------------------


async def test_first_request_is_answered_and_the_ack_recorded(env: Env) -> None:
    env.source.set(WEB, BASE)
    meta = {"dataplane.admin.port": "9901", "dataplaneTokenPath": "/tmp/token"}
    async with AdsClient(env.port) as client:
        await client.send(node_request(CLUSTER, metadata=meta))
        cds = await client.recv()
        assert cds.type_url == CLUSTER
        assert cds.version_info == BASE.version(CLUSTER)
        assert cds.control_plane.identifier == "cp-test"
        assert names_of(cds, cluster_pb2.Cluster) == ["backend", "db"]
        await client.send(answer(cds))
        (stream,) = env.server.streams_of(WEB)
        await eventually(lambda: _true(stream.state.acked_version(CLUSTER) == cds.version_info))
        assert env.source.connects == [(WEB, DataplaneMetadata(9901, "/tmp/token"))]
        assert env.metrics.responses_sent.value(CLUSTER) == 1
        assert env.metrics.requests_received.value(CLUSTER, "ACK") == 1
        assert env.metrics.streams_active._value.get() == 1
        assert env.metrics.delivery.count == 1

        async def insight_counts() -> bool:
            got = await env.manager.get(r.DATAPLANE_INSIGHT, "web", "default")
            (sub,) = got.spec.subscriptions
            assert sub.control_plane_instance_id == "cp-test"
            assert sub.disconnect_time is None
            return (sub.status.cds.responses_sent, sub.status.cds.responses_acknowledged) == (1, 1)

        await eventually(insight_counts)
        assert await client.nothing_within(0.2)  # ACKed and unchanged: nothing more

    # the stream ended: disconnect time recorded, gauge back to zero, watch released
    async def disconnected() -> bool:
        got = await env.manager.get(r.DATAPLANE_INSIGHT, "web", "default")
        return got.spec.subscriptions[0].disconnect_time is not None

    await eventually(disconnected)
    await eventually(lambda: _true(env.metrics.streams_active._value.get() == 0))
    assert env.source.open[WEB] == 0
    assert env.server.streams == []


async def _true(value: bool) -> bool:
    return value


async def test_snapshot_change_is_pushed_in_cds_eds_lds_order(env: Env) -> None:
    env.source.set(WEB, BASE)
    async with AdsClient(env.port) as client:
        await client.send(node_request(CLUSTER))
        cds = await client.recv()
        await client.send(answer(cds))
        await client.send(node_request(ENDPOINT, names=("backend",)))
        eds = await client.recv()
        assert names_of(eds, endpoint_pb2.ClusterLoadAssignment) == ["backend"]  # only asked
        await client.send(answer(eds, names=("backend",)))
        await client.send(node_request(LISTENER))
        lds = await client.recv()
        await client.send(answer(lds))
        await anyio.sleep(0.1)

        changed = Snapshot.build(
            [
                cluster("backend", timeout_ms=500),
                cluster("db"),
                cla("backend", 8001),  # an endpoint went away
                cla("db", 5432, 5433),  # not watched by this client: not sent
                listener("inbound:10.0.0.1:80", 10080),
                listener("outbound:127.0.0.1:5432", 15432),
            ]
        )
        env.source.set(WEB, changed)
        got = [await client.recv() for _ in range(3)]
        assert [g.type_url for g in got] == [CLUSTER, ENDPOINT, LISTENER]
        new_cla = endpoint_pb2.ClusterLoadAssignment()
        got[1].resources[0].Unpack(new_cla)
        assert len(new_cla.endpoints[0].lb_endpoints) == 1
        assert len(got[2].resources) == 2
        assert await client.nothing_within(0.2)


async def test_dataplane_deleted_pushes_empty_listeners_and_clusters(env: Env) -> None:
    env.source.set(WEB, BASE)
    async with AdsClient(env.port) as client:
        for type_url in (CLUSTER, LISTENER):
            await client.send(node_request(type_url))
            await client.send(answer(await client.recv()))
        env.source.set(WEB, Snapshot.empty())
        cds, lds = await client.recv(), await client.recv()
        assert (cds.type_url, len(cds.resources)) == (CLUSTER, 0)
        assert (lds.type_url, len(lds.resources)) == (LISTENER, 0)


async def test_reconnecting_envoy_with_current_version_gets_nothing(env: Env) -> None:
    env.source.set(WEB, BASE)
    async with AdsClient(env.port) as client:
        req = node_request(LISTENER)
        req.version_info = BASE.version(LISTENER)
        await client.send(req)
        assert await client.nothing_within(0.3)


# -- NACK ---------------------------------------------------------------------------------------


async def test_nack_is_recorded_logged_and_retried_after_a_backoff(
    env: Env, logs: list[dict[str, Any]]
) -> None:
    env.source.set(WEB, BASE)
    async with AdsClient(env.port) as client:
        await client.send(node_request(LISTENER))
        first = await client.recv()
        await client.send(answer(first))
        bad = Snapshot.build([*BASE.of_type(LISTENER).values(), listener("bad", 0)])
        env.source.set(WEB, bad)
        pushed = await client.recv()
        start = anyio.current_time()
        await client.send(answer(pushed, error="no port given", version=first.version_info))
        retry = await client.recv()  # the same version again, after the 0.3 s backoff
        assert anyio.current_time() - start >= 0.25
        assert retry.version_info == pushed.version_info
        assert retry.nonce != pushed.nonce
        await client.send(answer(retry, error="no port given", version=first.version_info))
        assert await client.nothing_within(0.45)  # now 0.6 s
        again = await client.recv()
        assert again.version_info == pushed.version_info

    assert env.metrics.requests_received.value(LISTENER, "NACK") == 2
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert warnings
    assert warnings[0]["event"] == "config rejected by Envoy"
    assert warnings[0]["error"] == "no port given"
    assert warnings[0]["mesh"] == "default"
    assert warnings[0]["dataplane"] == "web"


# -- refusing streams ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node_id", "message"),
    [
        ("web", "invalid node id 'web': the name should be provided after the dot"),
        ("", "invalid node id '': mesh must not be empty"),
        ("default.", "invalid node id 'default.': name must not be empty"),
    ],
)
async def test_bad_node_id_ends_the_stream_with_invalid_argument(
    env: Env, node_id: str, message: str
) -> None:
    async with AdsClient(env.port) as client:
        await client.send(node_request(CLUSTER, node_id=node_id))
        with pytest.raises(GRPCError) as info:
            await client.recv()
    assert info.value.status is Status.INVALID_ARGUMENT
    assert info.value.message == message
    assert env.source.connects == []


async def test_node_id_cannot_change_within_a_stream(env: Env) -> None:
    env.source.set(WEB, BASE)
    async with AdsClient(env.port) as client:
        await client.send(node_request(CLUSTER))
        await client.recv()
        await client.send(node_request(LISTENER, node_id="default.other"))
        with pytest.raises(GRPCError) as info:
            await client.recv()
    assert info.value.status is Status.INVALID_ARGUMENT
    assert "node id cannot change" in (info.value.message or "")


async def test_delta_xds_is_unimplemented(env: Env) -> None:
    with pytest.raises(GRPCError) as info:
        await delta_call(env.port)
    assert info.value.status is Status.UNIMPLEMENTED


SEEN: list[tuple[ProxyId, dict[str, str]]] = []


async def token_check(proxy_id: ProxyId, metadata: Any) -> None:
    SEEN.append((proxy_id, dict(metadata)))
    if metadata.get("authorization") != "good-token":
        raise AuthenticationError("invalid dataplane token")


@pytest.mark.parametrize("authenticator", [token_check])
async def test_authenticator_sees_the_token_and_can_refuse(env: Env) -> None:
    env.source.set(WEB, BASE)
    SEEN.clear()
    async with AdsClient(env.port, metadata={"authorization": "bad"}) as client:
        await client.send(node_request(CLUSTER))
        with pytest.raises(GRPCError) as info:
            await client.recv()
    assert info.value.status is Status.UNAUTHENTICATED
    assert info.value.message == "authentication failed: invalid dataplane token"
    assert env.source.connects == []

    async with AdsClient(env.port, metadata={"authorization": "good-token"}) as client:
        await client.send(node_request(CLUSTER))
        assert (await client.recv()).type_url == CLUSTER
    assert [(p, m["authorization"]) for p, m in SEEN] == [(WEB, "bad"), (WEB, "good-token")]


async def not_ready_yet(proxy_id: ProxyId, metadata: Any) -> None:
    raise TransientError(f"Dataplane {proxy_id.name} does not exist yet")


@pytest.mark.parametrize("authenticator", [not_ready_yet])
async def test_a_proxy_not_ready_yet_is_told_to_retry(env: Env) -> None:
    env.source.set(WEB, BASE)
    async with AdsClient(env.port) as client:
        await client.send(node_request(CLUSTER))
        with pytest.raises(GRPCError) as info:
            await client.recv()
    assert info.value.status is Status.UNAVAILABLE
    assert info.value.message == f"not ready yet, retry: Dataplane {WEB.name} does not exist yet"
    assert env.source.connects == []


# -- server lifecycle ---------------------------------------------------------------------------


async def test_stopping_the_server_ends_open_streams(env: Env) -> None:
    env.source.set(WEB, BASE)
    manager = env.manager
    metrics = XdsMetrics(CollectorRegistry())
    server = AdsServer(env.source, instance_id="cp-2", metrics=metrics)
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: server.run(host="127.0.0.1", port=0, task_status=task_status)
        )
        async with AdsClient(port) as client:
            await client.send(node_request(CLUSTER))
            await client.recv()
            assert metrics.streams_active._value.get() == 1
            tg.cancel_scope.cancel()
    assert metrics.streams_active._value.get() == 0
    assert server.streams == []
    assert manager is env.manager


async def test_client_vanishing_mid_stream_is_cleaned_up_quietly(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.source.set(WEB, BASE)
    client = AdsClient(env.port)
    await client.__aenter__()
    await client.send(node_request(CLUSTER))
    await client.send(node_request(LISTENER))
    await client.recv()
    assert client.channel is not None
    client.channel.close()  # the TCP connection goes away without ending the stream
    for i in range(20):  # keep pushing while the server notices
        env.source.set(WEB, Snapshot.build([listener("l", 10000 + i), cluster(f"c{i}")]))
        await anyio.sleep(0.01)
    await eventually(lambda: _true(env.server.streams == []))
    await eventually(lambda: _true(env.metrics.streams_active._value.get() == 0))
    assert env.source.open[WEB] == 0
    errors = [rec for rec in caplog.records if rec.levelno >= 40]
    assert errors == [], [rec.getMessage() for rec in errors]
