"""A real Prometheus for tests (find the binary, run it on a free loopback port, query it), and
kuma-prometheus-sd as a process with a reader for the file it writes.

    with prometheus_server(scrape_configs=[...]) as prom:
        prom.targets()                 # /api/v1/targets -> activeTargets
        prom.query("up")               # /api/v1/query -> result vector

The binary is the one `tools/install_prometheus.sh` unpacks into `.cache/prometheus` (which
`make test` runs first), else `$KUMA_TEST_PROMETHEUS`, else `prometheus` on PATH. Without one the
test fails (CI must never pass by skipping); a developer can opt into skipping with
`KUMA_TEST_ALLOW_NO_PROMETHEUS=1`, which CI (`CI=true`) ignores.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.procs import START_TIMEOUT, Process, base_env, free_port, spawn

__all__ = [
    "Prometheus",
    "kuma_prometheus_sd",
    "prometheus_binary",
    "prometheus_server",
    "read_targets",
]

ROOT = Path(__file__).resolve().parents[2]
LOCAL_BINARY = ROOT / ".cache" / "prometheus" / "usr" / "bin" / "prometheus"
INSTALL_HINT = "run `make test` or tools/install_prometheus.sh"


def prometheus_binary() -> str:
    """Path of a runnable Prometheus, or fail the test (see module docstring)."""
    candidates = [os.environ.get("KUMA_TEST_PROMETHEUS", ""), str(LOCAL_BINARY)]
    candidates.append(shutil.which("prometheus") or "")
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    reason = f"no Prometheus binary (looked for $KUMA_TEST_PROMETHEUS, {LOCAL_BINARY}, PATH)"
    in_ci = os.environ.get("CI", "").lower() in ("1", "true")
    if os.environ.get("KUMA_TEST_ALLOW_NO_PROMETHEUS") == "1" and not in_ci:
        pytest.skip(reason)
    pytest.fail(f"Prometheus is required: {reason}; {INSTALL_HINT}")


@dataclass
class Prometheus:
    process: Process
    url: str
    directory: Path

    def api(self, path: str, **params: str) -> Any:
        resp = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=5)
        resp.raise_for_status()
        body = resp.json()
        assert body["status"] == "success", body
        return body["data"]

    def targets(self) -> list[dict[str, Any]]:
        """The active targets (`labels`, `health`, `scrapeUrl`, `lastError`, ...)."""
        return list(self.api("targets", state="active")["activeTargets"])

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector: `[{"metric": {...}, "value": [t, "v"]}, ...]`."""
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return list(data["result"])


@contextmanager
def prometheus_server(
    scrape_configs: list[dict[str, Any]], *, scrape_interval: str = "1s"
) -> Iterator[Prometheus]:
    """Prometheus on a free 127.0.0.1 port with its own temporary storage, ready when this
    yields; killed (and its directory removed) on exit."""
    binary = prometheus_binary()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kuma-prometheus-") as tmp:
        directory = Path(tmp)
        config = {
            "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval},
            "scrape_configs": scrape_configs,
        }
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        argv = [
            binary,
            f"--config.file={directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        with spawn(argv, dict(os.environ)) as process:
            prom = Prometheus(process, f"http://127.0.0.1:{port}", directory)
            _wait_ready(prom)
            yield prom


def _wait_ready(prom: Prometheus, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not prom.process.alive():
            raise AssertionError(f"Prometheus exited:\n{prom.process.output()}")
        try:
            if httpx.get(f"{prom.url}/-/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"Prometheus not ready after {timeout}s:\n{prom.process.output()}")


@contextmanager
def kuma_prometheus_sd(cp_api: str, output_file: Path, *args: str, **env: str) -> Iterator[Process]:
    """`kuma-prometheus-sd run` against the control plane at `cp_api`; stopped on exit."""
    argv = [
        sys.executable,
        "-m",
        "kuma.sd",
        "run",
        f"--cp-address={cp_api}",
        f"--output-file={output_file}",
        *args,
    ]
    with spawn(argv, base_env(**env)) as process:
        try:
            yield process
        finally:
            if process.alive():
                process.stop()


def read_targets(output_file: Path) -> dict[str, dict[str, str]] | None:
    """The file_sd file as `{address: labels}`, or None while it does not exist."""
    try:
        groups = json.loads(output_file.read_text())
    except FileNotFoundError:
        return None
    return {target: group["labels"] for group in groups for target in group["targets"]}
