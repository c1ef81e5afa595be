"""`make bench`: kuma-py's speed report.

Each section starts what it measures as real processes on loopback (kuma-cp with the memory or
PostgreSQL store, a load generator in its own process), prints figures and their ratio to the
target, and cleans up. Figures on a shared 2-core machine are noisy: compare ratios, not digits.

    python -m tools.bench [--only rest,postgres,xds,policies,mads] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Row:
    section: str
    metric: str
    value: float
    unit: str
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""

    def ratio(self) -> str:
        if self.target is None or self.value == 0:
            return ""
        r = self.value / self.target if self.higher_is_better else self.target / self.value
        return f"{r:.2f}x {'OK' if r >= 1 else 'BELOW TARGET'}"


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        row = Row(*args, **kwargs)
        self.rows.append(row)
        target = ""
        if row.target is not None:
            op = ">=" if row.higher_is_better else "<="
            target = f"(target {op} {row.target:g} {row.unit})"
        print(
            f"  {row.metric:<48} {row.value:>12,.2f} {row.unit:<8} {target:<28} {row.ratio()}",
            flush=True,
        )

    def summary(self) -> None:
        print("\nsummary (ratio = how far past the target; >= 1.00x meets it)")
        for row in self.rows:
            if row.target is not None:
                print(f"  {row.section:<10} {row.metric:<48} {row.ratio()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ControlPlane:
    api: str
    diagnostics: str
    xds_port: int
    pid: int
    mads_port: int = 0

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@contextmanager
def kuma_cp(env_extra: dict[str, str]) -> Iterator[ControlPlane]:
    """A `kuma-cp run` subprocess on free loopback ports."""
    api, diag, admin, xds, mads = free_port(), free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "KUMA_API_SERVER_PORT": str(api),
        "KUMA_XDS_SERVER_DIAGNOSTICS_PORT": str(diag),
        "KUMA_ADMIN_SERVER_LOCAL_PORT": str(admin),
        "KUMA_BOOTSTRAP_SERVER_PORT": str(free_port()),
        "KUMA_XDS_SERVER_GRPC_PORT": str(xds),
        "KUMA_SDS_SERVER_GRPC_PORT": str(free_port()),
        "KUMA_MONITORING_ASSIGNMENT_SERVER_GRPC_PORT": str(mads),
        **env_extra,
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuma.cp", "--log-level", "off", "run"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{diag}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"kuma-cp did not start:\n{log.read().decode()[-3000:]}")
            time.sleep(0.1)
        yield ControlPlane(
            f"http://127.0.0.1:{api}", f"http://127.0.0.1:{diag}", xds, proc.pid, mads
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def put_dataplanes(api: str, n: int, services: int = 100) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(base_url=api, timeout=30) as client:
            sem = asyncio.Semaphore(16)

            async def one(i: int) -> None:
                body = {
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
                        "outbound": [
                            {
                                "port": 10000 + k,
                                "tags": {"kuma.io/service": f"svc-{(i + k) % services}"},
                            }
                            for k in range(1, 4)
                        ],
                    },
                }
                async with sem:
                    r = await client.put(f"/meshes/default/dataplanes/dp-{i}", json=body)
                    r.raise_for_status()

            await asyncio.gather(*(one(i) for i in range(n)))

    asyncio.run(go())


def loadgen(url: str, concurrency: int, seconds: float, spread: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.loadgen",
            "--url",
            url,
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
            "--spread",
            str(spread),
        ],
        capture_output=True,
        check=True,
        cwd=ROOT,
        timeout=seconds + 60,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def list_latency(api: str, path: str, repeats: int) -> tuple[float, float]:
    samples = []
    with httpx.Client(base_url=api, timeout=30) as client:
        client.get(path).raise_for_status()  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            r = client.get(path)
            samples.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            assert len(r.json()["items"]) > 0
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def rest_section(report: Report, name: str, env: dict[str, str], seconds: float) -> None:
    print(f"\n[{name}] kuma-cp REST API ({env.get('KUMA_STORE_TYPE', 'memory')} store)")
    with kuma_cp(env) as cp:
        api = cp.api
        start = time.perf_counter()
        put_dataplanes(api, 1000)
        report.add(name, "PUT 1,000 dataplanes (concurrency 16)", time.perf_counter() - start, "s")
        result = loadgen(f"{api}/meshes/default/dataplanes/dp-{{i}}", 16, seconds, 1000)
        if result["errors"]:
            print(f"  !! {result['errors']} non-200 responses")
        target = 2000.0 if name == "memory" else None
        report.add(name, "GET one dataplane, concurrency 16", result["req_per_s"], "req/s", target)
        report.add(name, "  latency p99 at concurrency 16", result["p99_ms"], "ms")
        p50, p99 = list_latency(api, "/meshes/default/dataplanes?size=1000", 50)
        report.add(name, "list 1,000 dataplanes p50", p50, "ms")
        report.add(name, "list 1,000 dataplanes p99", p99, "ms", 100.0, higher_is_better=False)


@contextmanager
def postgres_database() -> Iterator[dict[str, str]]:
    import asyncpg

    admin_dsn = os.environ.get("KUMA_TEST_POSTGRES_DSN", DEFAULT_PG)
    name = f"kuma_bench_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    from urllib.parse import urlsplit

    parts = urlsplit(admin_dsn)
    try:
        yield {
            "dsn": parts._replace(path="/" + name).geturl(),
            "KUMA_STORE_TYPE": "postgres",
            "KUMA_STORE_POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "KUMA_STORE_POSTGRES_PORT": str(parts.port or 5432),
            "KUMA_STORE_POSTGRES_USER": parts.username or "postgres",
            # kuma-cp requires a password (as Kuma does); a trust-auth server ignores it
            "KUMA_STORE_POSTGRES_PASSWORD": parts.password or "unused",
            "KUMA_STORE_POSTGRES_DB_NAME": name,
        }
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def postgres_section(report: Report, seconds: float) -> None:
    from tools.bench_postgres import bench_event_latency, bench_list, bench_optimistic_updates

    with postgres_database() as db:
        db.pop("dsn")
        subprocess.run(
            [sys.executable, "-m", "kuma.cp", "migrate", "up"],
            env={**os.environ, **db},
            check=True,
            capture_output=True,
            timeout=60,
        )
        rest_section(report, "postgres", db, seconds)
    admin_dsn = os.environ.get("KUMA_TEST_POSTGRES_DSN", DEFAULT_PG)
    print("\n[postgres] store layer (no HTTP)")
    listing = asyncio.run(bench_list(admin_dsn, n=1000, repeats=50))
    report.add("postgres", "store.list 1,000 dataplanes p99", listing["p99_ms"], "ms")
    result = asyncio.run(bench_optimistic_updates(admin_dsn, seconds=seconds, concurrency=16))
    report.add(
        "postgres",
        "optimistic updates/s (get+update, concurrency 16)",
        float(result["updates_per_s"]),
        "upd/s",
        3000.0,
    )
    report.add("postgres", "  conflicts during that run", float(result["conflicts"]), "")
    latency = asyncio.run(bench_event_latency(admin_dsn, samples=200))
    report.add("postgres", "change event write -> other cp instance p99", latency["p99_ms"], "ms")


def _summary_quantiles(metrics_text: str, name: str) -> dict[str, float]:
    out = {}
    for line in metrics_text.splitlines():
        if line.startswith(name + "{") and "quantile=" in line:
            quantile = line.split('quantile="')[1].split('"')[0]
            out[quantile] = float(line.rsplit(" ", 1)[1])
    return out


def xds_section(report: Report, seconds: float) -> None:
    from tools.bench_xds_generation import bench_generation

    print("\n[xds] config generation in-process (1,000 dataplanes, 100 services, 3 outbounds)")
    gen = bench_generation(1000, 100, 3)
    report.add("xds", "generation per dataplane, warm p99", gen["warm"]["p99_ms"], "ms", 5.0, False)
    report.add("xds", "generation per dataplane, cold p99", gen["cold"]["p99_ms"], "ms")

    print("\n[xds] kuma-cp + 1,000 simulated Envoys (tools.xds_loadclient, own process)")
    with kuma_cp(NO_TOKENS) as cp:
        put_dataplanes(cp.api, 1000, services=100)
        time.sleep(1.0)  # let the catalog settle
        rss_before = cp.rss_kib()
        with load_clients(cp, 1000) as clients:
            ready = clients.event("ready")
            report.add("xds", "1,000 streams connected and configured", ready["seconds"], "s")
            time.sleep(2.0)  # insights flushed, memory settled
            rss_after = cp.rss_kib()
            per_dp = (rss_after - rss_before) / 1000
            report.add("xds", "cp RSS per connected dataplane", per_dp, "KiB", 256.0, False)
            report.add("xds", "  cp RSS with 1,000 connected", rss_after / 1024, "MiB")

            clients.send("mark move svc-0")
            marked = clients.event("marked")
            # move one endpoint of svc-0: dp-0's inbound port changes
            body = {
                "type": "Dataplane",
                "mesh": "default",
                "name": "dp-0",
                "networking": {
                    "address": "10.0.0.0",
                    "inbound": [
                        {"port": 9090, "tags": {"kuma.io/service": "svc-0", "version": "v1"}}
                    ],
                    "outbound": [
                        {"port": 10000 + k, "tags": {"kuma.io/service": f"svc-{k}"}}
                        for k in range(1, 4)
                    ],
                },
            }
            httpx.put(f"{cp.api}/meshes/default/dataplanes/dp-0", json=body, timeout=10)
            summary = clients.event("summary")
            report.add(
                "xds",
                f"endpoint change -> all {marked['expected']} affected ACKed (max)",
                summary["max"] or 0.0,
                "s",
                2.0,
                False,
            )
            report.add("xds", "  ... p50", summary["p50"] or 0.0, "s")
            if summary["changed"] != summary["expected"]:
                print(f"  !! only {summary['changed']} of {summary['expected']} clients changed")
            metrics = httpx.get(f"{cp.diagnostics}/metrics", timeout=10).text
            q = _summary_quantiles(metrics, "xds_generation")
            if q:
                report.add("xds", "kuma-cp xds_generation p99 (live)", q.get("0.99", 0.0), "ms")


# The simulated Envoys carry no dataplane tokens: the xDS figures measure config delivery.
NO_TOKENS = {"KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED": "false"}


@dataclass
class LoadClients:
    proc: subprocess.Popen[str]

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def event(self, name: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            data = json.loads(line)
            if data.get("event") == name:
                return data  # type: ignore[no-any-return]
        raise RuntimeError(f"load client ended before {name!r}")


@contextmanager
def load_clients(cp: ControlPlane, n: int) -> Iterator[LoadClients]:
    """`n` simulated Envoys (dp-0..dp-<n-1>) in their own process (tools.xds_loadclient)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.xds_loadclient",
            "--address",
            f"127.0.0.1:{cp.xds_port}",
            "--mesh",
            "default",
            "--names",
            f"dp-0..dp-{n - 1}",
            "--ready-timeout",
            "180",
            "--change-timeout",
            "60",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield LoadClients(proc)
        LoadClients(proc).send("quit")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _permission(sources: list[str]) -> dict[str, Any]:
    return {
        "type": "TrafficPermission",
        "mesh": "default",
        "name": "allow",
        "sources": [{"match": {"kuma.io/service": s}} for s in sources],
        "destinations": [{"match": {"kuma.io/service": "*"}}],
    }


def policies_section(report: Report, seconds: float) -> None:
    from kuma.ca.pki import issue_workload_cert, new_root_ca

    print("\n[policies] identity certificates (RSA-2048, in-process)")
    ca = new_root_ca("default")
    start = time.perf_counter()
    for i in range(20):
        issue_workload_cert(ca, "default", [f"svc-{i}"])
    per_cert = (time.perf_counter() - start) / 20
    report.add("policies", "issue one identity certificate", per_cert * 1000, "ms")
    report.add("policies", "  ... for 1,000 dataplanes (one core)", per_cert * 1000, "s")

    print("\n[policies] TrafficPermission change -> 1,000 simulated Envoys, mTLS mesh")
    with kuma_cp(NO_TOKENS) as cp:
        mesh = {
            "type": "Mesh",
            "name": "default",
            "mtls": {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]},
        }
        httpx.put(f"{cp.api}/meshes/default", json=mesh, timeout=30).raise_for_status()
        put_dataplanes(cp.api, 1000, services=100)
        path = f"{cp.api}/meshes/default/traffic-permissions/allow"
        httpx.put(path, json=_permission(["*"]), timeout=10).raise_for_status()
        time.sleep(1.0)
        with load_clients(cp, 1000) as clients:
            clients.event("ready")
            time.sleep(2.0)
            clients.send("mark-lds allow")
            clients.event("marked")
            started = time.perf_counter()
            httpx.put(path, json=_permission(["svc-0", "svc-1"]), timeout=10).raise_for_status()
            summary = clients.event("summary")
            report.add(
                "policies",
                f"TrafficPermission change -> {summary['changed']}/{summary['expected']} ACKed",
                summary["max"] or (time.perf_counter() - started),
                "s",
                2.0,
                False,
            )
            report.add("policies", "  ... p50", summary["p50"] or 0.0, "s")


def mads_section(report: Report, seconds: float) -> None:
    from tools.bench_mads import TARGET_PUSH_S, bench_build, bench_push, prometheus_mesh_doc

    print("\n[mads] monitoring assignments in-process (1,000 dataplanes, memory store)")
    built = bench_build(1000, 20)
    report.add("mads", "initial load: 1,000 assignments built", built["load_s"] * 1000, "ms")
    report.add("mads", "  full response (1,000 assignments)", built["response_bytes"] / 1024, "KiB")
    published = built["change_to_published"]
    report.add("mads", "store write -> new set published, p99", published["p99"] * 1000, "ms")
    report.add(
        "mads", "  set assembled once for all clients, p99", built["assemble"]["p99"] * 1000, "ms"
    )
    report.add(
        "mads",
        "mesh port change -> 1,000 rebuilt and published",
        built["mesh_change_to_published_s"] * 1000,
        "ms",
    )

    print("\n[mads] kuma-cp with 1,000 dataplanes, MADS clients on loopback (20 changes each)")
    with kuma_cp(NO_TOKENS) as cp:
        httpx.put(
            f"{cp.api}/meshes/default", json=prometheus_mesh_doc(), timeout=30
        ).raise_for_status()
        put_dataplanes(cp.api, 1000, services=100)
        for clients, start in ((1, 10_000), (10, 20_000)):
            got = bench_push(cp.api, cp.mads_port, clients, 20, 1000, start)
            who = "1 client has it" if clients == 1 else f"all {clients} clients have it"
            target = TARGET_PUSH_S * 1000
            report.add(
                "mads", f"dataplane PUT -> {who}, p99", got["p99"] * 1000, "ms", target, False
            )
            report.add("mads", "  ... p50", got["p50"] * 1000, "ms")


SECTIONS: dict[str, Callable[[Report, float], None]] = {
    "rest": lambda report, seconds: rest_section(report, "memory", {}, seconds),
    "postgres": postgres_section,
    "xds": xds_section,
    "policies": policies_section,
    "mads": mads_section,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each load run")
    args = parser.parse_args()
    print(f"kuma-py bench  ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})")
    report = Report()
    for name in args.only.split(","):
        SECTIONS[name.strip()](report, args.seconds)
    report.summary()


if __name__ == "__main__":
    main()
