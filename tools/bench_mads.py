"""MADS: how fast a change reaches connected monitoring clients, and what a full set costs.

* `bench_build(n)`, in-process over a memory store holding a mesh with Prometheus enabled and `n`
  dataplanes: the initial load (every assignment generated and serialised), the size of the
  full DiscoveryResponse, and after one dataplane is added: the time from the store write to
  the new set being published, and the time to assemble that set; then the time for a change of
  the mesh's metrics port (every assignment rebuilt) to be published.
* `bench_push(api, mads_port, clients, changes)`, against a running kuma-cp: `clients` MADS
  streams (ACKing like kuma-prometheus-sd) are connected, then `changes` times a dataplane is
  added through the REST API; for each change, the time from issuing the PUT until the last
  client has received the set that contains it.

    python -m tools.bench_mads [--dataplanes 1000]     (the in-process part only)

Target: a change reaches every connected client within 1 s (Kuma 0.7.3 regenerates every
`assignmentRefreshInterval`, 1 s, so its clients wait up to that long).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import anyio
import httpx
from envoy.service.discovery.v3 import discovery_pb2
from grpclib.client import Channel
from grpclib.const import Cardinality

from kuma.logging import configure_logging
from kuma.mads import MADS_STREAM_METHOD, MONITORING_ASSIGNMENT_TYPE, AssignmentIndex
from kuma.manager import ResourceManager
from kuma.model.rest import resource_from_dict
from kuma.store.memory import MemoryStore

__all__ = ["TARGET_PUSH_S", "bench_build", "bench_push", "dataplane_doc", "prometheus_mesh_doc"]

TARGET_PUSH_S = 1.0
DiscoveryRequest: Any = discovery_pb2.DiscoveryRequest
DiscoveryResponse: Any = discovery_pb2.DiscoveryResponse


def prometheus_mesh_doc(name: str = "default") -> dict[str, Any]:
    return {
        "type": "Mesh",
        "name": name,
        "metrics": {
            "enabledBackend": "prometheus-1",
            "backends": [
                {
                    "name": "prometheus-1",
                    "type": "prometheus",
                    "conf": {"port": 5670, "path": "/metrics"},
                }
            ],
        },
    }


def dataplane_doc(i: int, services: int = 100) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": f"dp-{i}",
        "networking": {
            "address": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
            "inbound": [
                {
                    "port": 8080,
                    "servicePort": 80,
                    "tags": {
                        "kuma.io/service": f"svc-{i % services}",
                        "kuma.io/protocol": "http",
                        "version": "v1",
                    },
                }
            ],
        },
    }


def _quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "max": ordered[-1],
    }


async def _bench_build(n: int, changes: int) -> dict[str, Any]:
    manager = ResourceManager(MemoryStore())
    await manager.create(resource_from_dict(prometheus_mesh_doc()))
    for i in range(n):
        await manager.create(resource_from_dict(dataplane_doc(i)))
    index = AssignmentIndex(manager)
    async with anyio.create_task_group() as tg:
        start = time.perf_counter()
        await tg.start(index.run)
        load_s = time.perf_counter() - start
        full = index.current
        push, assemble = [], []
        for k in range(changes):
            generation = index.current.generation
            started = time.perf_counter()
            await manager.create(resource_from_dict(dataplane_doc(n + k)))
            with anyio.fail_after(10):
                await index.wait_changed(generation)
            push.append(time.perf_counter() - started)
            assemble.append(index.current.build_seconds)
        # the mesh's metrics port changes: every assignment is rebuilt
        generation = index.current.generation
        mesh = prometheus_mesh_doc()
        mesh["metrics"]["backends"][0]["conf"]["port"] = 5671
        started = time.perf_counter()
        await manager.upsert(resource_from_dict(mesh))
        with anyio.fail_after(30):
            await index.wait_changed(generation)
        mesh_change_s = time.perf_counter() - started
        tg.cancel_scope.cancel()
    return {
        "dataplanes": n,
        "load_s": load_s,
        "assignments": full.count,
        "response_bytes": len(full.body),
        "change_to_published": _quantiles(push),
        "assemble": _quantiles(assemble),
        "mesh_change_to_published_s": mesh_change_s,
    }


def bench_build(n: int = 1000, changes: int = 20) -> dict[str, Any]:
    configure_logging("warning")
    return anyio.run(_bench_build, n, changes)


class _Client:
    """One MADS stream that ACKs every response and records when each version arrived."""

    def __init__(self, port: int) -> None:
        self.channel = Channel("127.0.0.1", port)
        self.stream: Any = None
        self.received: list[tuple[float, Any]] = []
        self.arrived = asyncio.Event()

    async def run(self) -> None:
        async with self.channel.request(
            MADS_STREAM_METHOD, Cardinality.STREAM_STREAM, DiscoveryRequest, DiscoveryResponse
        ) as stream:
            first = DiscoveryRequest(type_url=MONITORING_ASSIGNMENT_TYPE)
            first.node.id = "bench"
            await stream.send_message(first)
            while True:
                response = await stream.recv_message()
                if response is None:
                    return
                self.received.append((time.perf_counter(), response))
                self.arrived.set()
                await stream.send_message(
                    DiscoveryRequest(
                        type_url=response.type_url,
                        version_info=response.version_info,
                        response_nonce=response.nonce,
                    )
                )

    async def wait_for(self, predicate: Any, within: float) -> tuple[float, Any]:
        deadline = time.perf_counter() + within
        while True:
            for at, response in self.received:
                if predicate(response):
                    return at, response
            self.arrived.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError("no matching MADS response")
            await asyncio.wait_for(self.arrived.wait(), remaining)


def _has(name: bytes) -> Any:
    return lambda response: any(name in r.value for r in response.resources)


async def _bench_push(
    api: str, port: int, n_clients: int, changes: int, first: int, start: int
) -> dict[str, Any]:
    clients = [_Client(port) for _ in range(n_clients)]
    tasks = [asyncio.create_task(c.run()) for c in clients]
    try:
        async with httpx.AsyncClient(base_url=api, timeout=30) as rest:
            # connected and holding the full set
            for c in clients:
                _, response = await c.wait_for(lambda r: len(r.resources) >= first, 60)
            sizes = len(response.SerializeToString())
            latencies = []
            for k in range(changes):
                i = start + k
                started = time.perf_counter()
                put = await rest.put(f"/meshes/default/dataplanes/dp-{i}", json=dataplane_doc(i))
                put.raise_for_status()
                name = f"/meshes/default/dataplanes/dp-{i}".encode()
                marker = b"\x0a" + bytes([len(name)]) + name  # field 1 (name), length, name
                last = 0.0
                for c in clients:
                    at, _ = await c.wait_for(_has(marker), 30)
                    last = max(last, at)
                latencies.append(last - started)
                await asyncio.sleep(0.05)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c in clients:
            c.channel.close()
    return {"clients": n_clients, "response_bytes": sizes, **_quantiles(latencies)}


def bench_push(
    api: str, port: int, clients: int, changes: int, dataplanes: int, start: int
) -> dict[str, Any]:
    """Push latency to `clients` connected streams; `dataplanes` are in the store already, and
    the dataplanes added are named dp-<start>, dp-<start+1>, ..."""
    return asyncio.run(_bench_push(api, port, clients, changes, dataplanes, start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataplanes", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(bench_build(args.dataplanes, args.changes), indent=2))


if __name__ == "__main__":
    main()
