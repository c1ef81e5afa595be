"""tools/xds_loadclient.py in its own process against AdsServer: readiness, marks, summaries."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2

from kuma.xds.core import CLUSTER, ENDPOINT, LISTENER, ProxyId, Snapshot, XdsResource
from kuma.xds.server.ads import AdsServer

from .harness import StaticSource

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[3]
NAMES = [f"dp-{i}" for i in range(20)]


def snapshot(backend_port: int, *, with_db: bool = True) -> Snapshot:
    resources = []
    clusters = ["backend", "db"] if with_db else ["backend"]
    for name in clusters:
        c = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS)
        c.eds_cluster_config.eds_config.ads.SetInParent()
        resources.append(XdsResource(name, CLUSTER, c))
        cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
        address = cla.endpoints.add().lb_endpoints.add().endpoint.address.socket_address
        address.address = "10.0.0.1"
        address.port_value = backend_port if name == "backend" else 5432
        resources.append(XdsResource(name, ENDPOINT, cla))
    listener = listener_pb2.Listener(name="inbound")
    listener.address.socket_address.address = "10.0.0.1"
    listener.address.socket_address.port_value = 80
    resources.append(XdsResource("inbound", LISTENER, listener))
    return Snapshot.build(resources)


@dataclass
class LoadClient:
    process: anyio.abc.Process
    lines: BufferedByteReceiveStream

    async def event(self, within: float = 20.0) -> dict[str, Any]:
        with anyio.fail_after(within):
            line = await self.lines.receive_until(b"\n", 1 << 20)
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    async def next_of(self, kind: str, within: float = 20.0) -> dict[str, Any]:
        with anyio.fail_after(within):
            while True:
                event = await self.event(within)
                if event["event"] == kind:
                    return event

    async def command(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(line.encode() + b"\n")


@pytest.fixture
async def setup() -> AsyncIterator[tuple[StaticSource, AdsServer, LoadClient]]:
    source = StaticSource()
    for name in NAMES:
        source.set(ProxyId("default", name), snapshot(8080))
    server = AdsServer(source, instance_id="cp")
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: server.run(host="127.0.0.1", port=0, task_status=task_status)
        )
        command = [
            sys.executable, "-m", "tools.xds_loadclient",
            "--address", f"127.0.0.1:{port}",
            "--names", "dp-0..dp-19",
            "--streams-per-connection", "4",
            "--change-timeout", "2",
        ]  # fmt: skip
        process = await anyio.open_process(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None
        )
        try:
            assert process.stdout is not None
            yield source, server, LoadClient(process, BufferedByteReceiveStream(process.stdout))
        finally:
            if process.returncode is None:
                process.kill()
            with anyio.move_on_after(5):
                await process.wait()
            await process.aclose()
            tg.cancel_scope.cancel()


async def test_clients_get_ready_and_report_endpoint_changes(
    setup: tuple[StaticSource, AdsServer, LoadClient],
) -> None:
    source, server, client = setup
    ready = await client.next_of("ready")
    assert ready["clients"] == 20
    assert ready["missing"] == []

    await client.command("mark move backend")
    marked = await client.next_of("marked")
    assert marked == {"event": "marked", "mark": "move", "cluster": "backend", "expected": 20}
    for name in NAMES:
        source.set(ProxyId("default", name), snapshot(9090))
    changed = set()
    while True:
        event = await client.event()
        if event["event"] == "summary":
            break
        assert event["event"] == "changed"
        assert event["cluster"] == "backend"
        assert event["seconds"] >= 0
        changed.add(event["name"])
    assert changed == set(NAMES)
    assert event["changed"] == 20
    assert event["missing"] == []
    assert event["p50"] <= event["p99"] <= event["max"]

    # only half of the clients see a change: the summary comes after --change-timeout
    await client.command("mark half")
    await client.next_of("marked")
    for name in NAMES[:10]:
        source.set(ProxyId("default", name), snapshot(7070))
    summary = await client.next_of("summary")
    assert summary["changed"] == 10
    assert summary["expected"] == 20
    assert set(summary["missing"]) == set(NAMES[10:])

    # a change to clusters (db removed) makes clients narrow their EDS subscription
    for name in NAMES:
        source.set(ProxyId("default", name), snapshot(7070, with_db=False))
    with anyio.fail_after(10):
        while True:  # polling the servers' streams: no event to wait on
            if all(s.state.requested_names(ENDPOINT) == {"backend"} for s in server.streams):
                break
            await anyio.sleep(0.05)
    assert len(server.streams) == 20
    await client.command("status")
    status = await client.next_of("status")
    assert status["clients"] == status["connected"] == status["ready"] == 20

    await client.command("quit")
    with anyio.fail_after(10):
        assert await client.process.wait() == 0
