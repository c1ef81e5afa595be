"""Prometheus scrapes every dataplane: kuma-cp -> MADS -> kuma-prometheus-sd -> file_sd -> a real
Prometheus -> each dataplane's Envoy (`kuma:metrics:prometheus` listener), all on loopback.

kuma-cp runs on PostgreSQL so that its state survives the restart in the middle of the test.
The latency from a Dataplane change (REST PUT/DELETE answered) to the new file is printed
(`-s`); it is asserted only against a generous bound (timing targets belong to `make bench`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import (
    ControlPlane,
    Ports,
    base_env,
    control_plane,
    free_port,
    kuma_dp,
    postgres_env,
    wait_until,
)
from tests.support.prometheus import kuma_prometheus_sd, prometheus_server, read_targets

pytestmark = pytest.mark.e2e

CONVERGE = 30.0
"""Seconds allowed for config to reach Envoy, targets to reach the file, and so on."""
SCRAPE = 60.0
"""Seconds allowed for Prometheus to discover and scrape (its discovery batches every 5 s)."""
CP_AWAY = 3.0
"""Seconds kuma-cp stays stopped."""


def dataplane(name: str, service: str, metrics_port: int) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {
            "address": "127.0.0.1",
            "inbound": [
                {
                    "port": free_port(),
                    "servicePort": free_port(),
                    "tags": {"kuma.io/service": service},
                }
            ],
        },
        # both dataplanes share 127.0.0.1: each needs its own metrics port
        "metrics": {"type": "prometheus", "conf": {"port": metrics_port}},
    }


MESH = {
    "type": "Mesh",
    "name": "default",
    "metrics": {
        "enabledBackend": "prometheus-1",
        "backends": [{"name": "prometheus-1", "type": "prometheus"}],
    },
}


def put(cp: ControlPlane, doc: dict[str, Any]) -> None:
    path = f"/meshes/{doc['name']}"
    if doc["type"] == "Dataplane":
        path = f"/meshes/{doc['mesh']}/dataplanes/{doc['name']}"
    response = httpx.put(cp.api + path, json=doc, timeout=10)
    assert response.status_code in (200, 201), response.text


def delete(cp: ControlPlane, name: str) -> None:
    response = httpx.delete(f"{cp.api}/meshes/default/dataplanes/{name}", timeout=10)
    assert response.status_code == 200, response.text


def file_latency(out: Path, change: Any, expect: Any, what: str) -> float:
    """Seconds from `change()` returning to the file satisfying `expect(targets)` (polled every
    10 ms, for at most CONVERGE seconds)."""
    change()
    start = time.monotonic()
    while not expect(read_targets(out) or {}):
        if time.monotonic() - start > CONVERGE:
            raise AssertionError(f"timed out after {CONVERGE}s waiting for {what}")
        time.sleep(0.01)
    return time.monotonic() - start


def test_prometheus_scrapes_every_dataplane(postgres_db: str, tmp_path: Path) -> None:
    env = postgres_env(postgres_db)
    migrate = subprocess.run(
        [sys.executable, "-m", "kuma.cp", "migrate", "up"],
        env=base_env(**env),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    ports = Ports()  # MADS included: kuma-cp comes back on the same ports
    out = tmp_path / "kuma.file_sd.json"
    metrics = {"backend-01": free_port(), "web-01": free_port()}
    services = {"backend-01": "backend", "web-01": "web"}

    with ExitStack() as stack:
        cp = stack.enter_context(control_plane("run", ports=ports, **env))
        cp.wait_ready()
        put(cp, MESH)
        for name, service in services.items():
            put(cp, dataplane(name, service, metrics[name]))
            admin = free_port()
            stack.enter_context(kuma_dp(cp, name, admin_port=admin))
            wait_until(
                lambda admin=admin: (
                    httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200
                ),
                CONVERGE,
                f"Envoy of {name} to be ready",
            )

        sd = stack.enter_context(kuma_prometheus_sd(cp.api, out))
        expected = {f"127.0.0.1:{port}": name for name, port in metrics.items()}
        wait_until(
            lambda: (
                {a: labels["dataplane"] for a, labels in (read_targets(out) or {}).items()}
                == expected
            ),
            CONVERGE,
            "both dataplanes in the file",
        )

        prom = stack.enter_context(
            prometheus_server(
                [{"job_name": "kuma-dataplanes", "file_sd_configs": [{"files": [str(out)]}]}]
            )
        )

        def all_up() -> list[dict[str, Any]] | None:
            targets = prom.targets()
            ok = len(targets) == 2 and all(t["health"] == "up" for t in targets)
            return targets if ok else None

        targets = wait_until(all_up, SCRAPE, "Prometheus to scrape both dataplanes")
        by_dataplane = {t["labels"]["dataplane"]: t for t in targets}
        assert by_dataplane.keys() == services.keys()
        for name, target in by_dataplane.items():
            assert target["labels"]["mesh"] == "default"
            assert target["labels"]["kuma_io_service"] == services[name]
            assert target["labels"]["job"] == services[name]
            assert target["labels"]["instance"] == name
            assert target["scrapeUrl"] == f"http://127.0.0.1:{metrics[name]}/metrics"

        # an Envoy metric of one dataplane, through PromQL
        live = wait_until(
            lambda: prom.query('envoy_server_live{dataplane="web-01"}'),
            SCRAPE,
            "envoy_server_live of web-01",
        )
        assert [(r["metric"]["mesh"], r["metric"]["job"], r["value"][1]) for r in live] == [
            ("default", "web", "1")
        ]

        # a new dataplane reaches the file; a deleted one leaves it
        extra_port = free_port()
        added = file_latency(
            out,
            lambda: put(cp, dataplane("extra-01", "extra", extra_port)),
            lambda t: f"127.0.0.1:{extra_port}" in t,
            "extra-01 in the file",
        )
        removed = file_latency(
            out,
            lambda: delete(cp, "extra-01"),
            lambda t: f"127.0.0.1:{extra_port}" not in t and len(t) == 2,
            "extra-01 out of the file",
        )
        print(
            f"\nDataplane change -> file: add {added * 1000:.0f} ms, delete {removed * 1000:.0f} ms"
        )

        # kuma-cp goes away: the file stays as it was, the adapter keeps running
        before = out.read_bytes()
        assert cp.stop() == 0
        deadline = time.monotonic() + CP_AWAY
        while time.monotonic() < deadline:
            assert out.read_bytes() == before
            assert sd.alive()
            time.sleep(0.2)
        assert "MADS stream closed by the server" in sd.output() or (
            "xDS stream terminated with an error" in sd.output()
        )

        # it comes back on the same ports: the adapter reconnects and follows changes again
        cp = stack.enter_context(control_plane("run", ports=ports, **env))
        cp.wait_ready()
        delete(cp, "web-01")
        wait_until(
            lambda: (
                {a: labels["dataplane"] for a, labels in (read_targets(out) or {}).items()}
                == {f"127.0.0.1:{metrics['backend-01']}": "backend-01"}
            ),
            CONVERGE,
            "the adapter to reconnect and drop web-01",
        )
        assert sd.output().count("MADS stream open") >= 2
