"""PostgreSQL store benchmarks (called by `make bench`; also runnable on their own).

Each function takes the DSN of a server it may create databases on (the admin DSN, as in
KUMA_TEST_POSTGRES_DSN), creates a scratch database, migrates it, measures, and drops it.

    python -m tools.bench_postgres [--dsn postgresql://...] [--seconds 3] [--concurrency 16]

Prints JSON lines: optimistic_updates, list_1000_dataplanes, and the write -> event latency
between two instances, idle and under the optimistic-update load (event_latency_*).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg

from kuma.errors import ResourceConflictError
from kuma.model import registry as r
from kuma.model.resource import Resource, ResourceKey, ResourceMeta
from kuma.pb.kuma.mesh import v1alpha1 as pb
from kuma.store.events import ChangeEvent
from kuma.store.postgres import PostgresStore, migrate_up

__all__ = ["bench_event_latency", "bench_list", "bench_optimistic_updates", "scratch_database"]

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@asynccontextmanager
async def scratch_database(
    admin_dsn: str, *, synchronous_commit: bool = True
) -> AsyncIterator[str]:
    """A new migrated database on the server of `admin_dsn`; yields its DSN, drops it after.

    `synchronous_commit=False` sets that server option on the database (commits return before
    their WAL is flushed), to show what durability costs; kuma-py never sets it itself.
    """
    name = f"kuma_bench_{uuid.uuid4().hex[:10]}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    if not synchronous_commit:
        await admin(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    parts = urlsplit(admin_dsn)
    dsn = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    try:
        await migrate_up(dsn)
        yield dsn
    finally:
        with anyio.CancelScope(shield=True):
            await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _dataplane(name: str, port: int) -> Resource:
    spec = pb.Dataplane(
        networking=pb.DataplaneNetworking(
            address="10.0.0.1",
            inbound=[
                pb.DataplaneNetworkingInbound(
                    port=port,
                    tags={"kuma.io/service": name, "version": "v1", "region": "eu"},
                )
            ],
        )
    )
    return Resource(r.DATAPLANE, ResourceMeta(name=name, mesh="default"), spec)


async def _fill(store: PostgresStore, n: int) -> None:
    await store.create(Resource(r.MESH, ResourceMeta(name="default")))
    owner = ResourceKey("Mesh", "", "default")
    sem = anyio.Semaphore(16)

    async def one(i: int) -> None:
        async with sem:
            await store.create(_dataplane(f"dp-{i:05d}", 10_000 + i), owner=owner)

    async with anyio.create_task_group() as tg:
        for i in range(n):
            tg.start_soon(one, i)


async def _server_pids(dsn: str) -> list[int]:
    """Backend pids serving the database (for CPU accounting when the server is local)."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return [int(row[0]) for row in rows]


def _cpu_seconds(pids: list[int]) -> float | None:
    """utime + stime of the processes, from /proc; None when they are not visible here."""
    ticks = 0
    try:
        for pid in pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_optimistic_updates(
    dsn: str = DEFAULT_DSN,
    seconds: float = 3.0,
    concurrency: int = 16,
    *,
    resources: int = 1000,
    pool_size: int | None = None,
    synchronous_commit: bool = True,
) -> dict[str, Any]:
    """Optimistic updates per second: `concurrency` workers each loop get -> change the spec
    -> update(version), retrying on ResourceConflictError, on dataplanes picked at random from
    `resources` (so the figure is throughput, not contention; conflicts are reported).

    As in kuma-cp, the store runs `run()` and one subscriber consumes every change event (the
    mesh catalog's role), so the figure includes the cost of producing and delivering them.

    `pool_size` defaults to `concurrency` connections. Returns updates_per_s, updates,
    conflicts, the latency of one successful read-modify-write (p50_ms, p99_ms), the CPU one
    update costs in this process and in the server's backends (client_cpu_us, server_cpu_us;
    the latter None for a remote server), the events the subscriber received while measuring
    (events), and the setup.
    """
    async with scratch_database(dsn, synchronous_commit=synchronous_commit) as db:
        pool = pool_size or concurrency
        async with (
            PostgresStore.open(db, max_connections=pool, min_connections=pool) as store,
            store.subscribe(max_buffer=1_000_000) as sub,
        ):
            await _fill(store, resources)
            names = [f"dp-{i:05d}" for i in range(resources)]
            updates = conflicts = 0
            latencies: list[float] = []
            measuring = False
            stop = anyio.Event()

            async def worker(seed: int) -> None:
                nonlocal updates, conflicts
                rng = random.Random(seed)
                while not stop.is_set():
                    name = rng.choice(names)
                    started = time.perf_counter()
                    while True:
                        res = await store.get(r.DATAPLANE, name, "default")
                        res.spec.networking.inbound[0].port += 1
                        try:
                            await store.update(res)
                            break
                        except ResourceConflictError:
                            if measuring:
                                conflicts += 1
                    if measuring:
                        updates += 1
                        latencies.append(time.perf_counter() - started)

            events = 0

            async def consume() -> None:
                nonlocal events
                while not stop.is_set():
                    batch = [await sub.receive(), *sub.drain()]
                    if measuring:
                        events += len(batch)

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                for i in range(concurrency):
                    tg.start_soon(worker, i)
                await anyio.sleep(min(1.0, seconds / 3))  # warm up: pool, prepared statements
                pids = await _server_pids(db)
                server_before = _cpu_seconds(pids)
                measuring = True
                client_before = time.process_time()
                began = time.perf_counter()
                await anyio.sleep(seconds)
                measuring = False
                elapsed = time.perf_counter() - began
                client_cpu = time.process_time() - client_before
                server_after = _cpu_seconds(pids)
                stop.set()
                tg.cancel_scope.cancel()  # the consumer may be waiting for an event
    server_cpu = (
        server_after - server_before
        if server_before is not None and server_after is not None
        else None
    )
    return {
        "updates_per_s": round(updates / elapsed, 1),
        "updates": updates,
        "conflicts": conflicts,
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2) if latencies else None,
        # CPU per successful update (client: this process; server: the database's backends,
        # when they run on this machine). On a shared machine these are steadier than the rate.
        "client_cpu_us": round(client_cpu / updates * 1e6) if updates else None,
        "server_cpu_us": round(server_cpu / updates * 1e6) if updates and server_cpu else None,
        "events": events,
        "seconds": round(elapsed, 2),
        "concurrency": concurrency,
        "pool_size": pool,
        "resources": resources,
        "synchronous_commit": synchronous_commit,
    }


async def bench_event_latency(
    dsn: str = DEFAULT_DSN,
    samples: int = 200,
    *,
    interval: float = 0.02,
    load_concurrency: int = 0,
    resources: int = 1000,
) -> dict[str, Any]:
    """Write -> event latency between two control planes on one database: instance A creates
    `samples` meshes, one every `interval` seconds; instance B (another PostgresStore, both
    running `run()`) receives the events. Latency = event received by B - A's create returned
    (0 when the event arrived before the create returned).

    With `load_concurrency` > 0, A also runs that many optimistic-update workers on `resources`
    dataplanes meanwhile (the events B must deliver include theirs). Both instances share this
    process and its event loop, so B's reader competes with A's workers for one CPU, as two
    kuma-cp on one small machine would. Returns p50_ms, p99_ms, max_ms, lost (probes whose
    event never arrived within 5 s), updates_per_s of the load, and the setup.
    """
    async with scratch_database(dsn) as db:
        pool = max(load_concurrency, 4)
        async with (
            PostgresStore.open(db, max_connections=pool, min_connections=pool) as a,
            PostgresStore.open(db) as b,
            b.subscribe(max_buffer=1_000_000) as sub,
        ):
            if load_concurrency:
                await _fill(a, resources)
            names = [f"dp-{i:05d}" for i in range(resources)]
            written: dict[str, float | None] = {}  # None: the create has not returned yet
            latencies: list[float] = []
            stop = anyio.Event()
            all_received = anyio.Event()
            updates = 0

            async def receive() -> None:
                while True:
                    event = await sub.receive()
                    now = time.perf_counter()
                    if isinstance(event, ChangeEvent) and event.name in written:
                        returned = written.pop(event.name)
                        latencies.append(0.0 if returned is None else now - returned)
                        if stop.is_set() and not written:
                            all_received.set()

            async def load(seed: int) -> None:
                nonlocal updates
                rng = random.Random(seed)
                while not stop.is_set():
                    res = await a.get(r.DATAPLANE, rng.choice(names), "default")
                    res.spec.networking.inbound[0].port += 1
                    try:
                        await a.update(res)
                        updates += 1
                    except ResourceConflictError:
                        pass

            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                for i in range(load_concurrency):
                    tg.start_soon(load, i)
                await anyio.sleep(0.5)  # warm up
                began = time.perf_counter()
                counted = updates
                for i in range(samples):
                    name = f"probe-{i:05d}"
                    written[name] = None
                    await a.create(Resource(r.MESH, ResourceMeta(name=name)))
                    if name in written:
                        written[name] = time.perf_counter()
                    await anyio.sleep(interval)
                elapsed = time.perf_counter() - began
                counted = updates - counted
                stop.set()
                if written:
                    with anyio.move_on_after(5):
                        await all_received.wait()
                tg.cancel_scope.cancel()
    return {
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2) if latencies else None,
        "max_ms": round(max(latencies) * 1000, 2) if latencies else None,
        "lost": len(written),
        "samples": samples,
        "interval_s": interval,
        "load_concurrency": load_concurrency,
        "updates_per_s": round(counted / elapsed, 1) if load_concurrency else None,
    }


async def bench_list(dsn: str = DEFAULT_DSN, n: int = 1000, repeats: int = 50) -> dict[str, Any]:
    """Latency of `store.list(DATAPLANE, "default")` returning all `n` dataplanes (spec text
    only, as the REST API gets it), over `repeats` calls after one warm-up call."""
    async with scratch_database(dsn) as db, PostgresStore.open(db) as store:
        await _fill(store, n)
        first = await store.list(r.DATAPLANE, "default")
        if first.total != n or len(first.items) != n:
            raise RuntimeError(f"listed {len(first.items)} of {n} dataplanes")
        samples = []
        for _ in range(repeats):
            started = time.perf_counter()
            await store.list(r.DATAPLANE, "default")
            samples.append(time.perf_counter() - started)
    return {
        "p50_ms": round(_percentile(samples, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(samples, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(samples) * 1000, 2),
        "n": n,
        "repeats": repeats,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", default=os.environ.get("KUMA_TEST_POSTGRES_DSN", DEFAULT_DSN))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pool-size", type=int, default=None)
    parser.add_argument("--resources", type=int, default=1000)
    args = parser.parse_args()
    updates = asyncio.run(
        bench_optimistic_updates(
            args.dsn,
            args.seconds,
            args.concurrency,
            resources=args.resources,
            pool_size=args.pool_size,
        )
    )
    print(json.dumps({"optimistic_updates": updates}))
    listing = asyncio.run(bench_list(args.dsn))
    print(json.dumps({"list_1000_dataplanes": listing}))
    idle = asyncio.run(bench_event_latency(args.dsn))
    print(json.dumps({"event_latency_idle": idle}))
    loaded = asyncio.run(bench_event_latency(args.dsn, load_concurrency=args.concurrency))
    print(json.dumps({"event_latency_under_load": loaded}))


if __name__ == "__main__":
    main()
