"""`make demo` (tools/demo.py) as a user runs it: it comes up, says what to try, what it says
works, and Ctrl-C leaves no process behind.

The demo runs with `--free-ports` (the same topology on ports nobody else uses); Ctrl-C is a
SIGINT to the demo's process group, which is what a terminal sends.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
UP_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0


class Demo:
    def __init__(self, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tools" / "demo.py"), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,  # its own process group, like a shell job
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            if self.proc.poll() is not None:
                self._reader.join(5)
                if text in self.output:
                    return
                raise AssertionError(f"the demo exited ({self.proc.returncode}):\n{self.output}")
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} after {timeout:.0f}s:\n{self.output}")

    def ctrl_c(self) -> int:
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(timeout=STOP_TIMEOUT)
        self._reader.join(5)
        return code


def descendants(pid: int) -> set[int]:
    """Every living process below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for_targets(prometheus: str, instances: set[str]) -> None:
    """Prometheus scrapes every dataplane kuma-prometheus-sd listed (health "up")."""
    deadline = time.monotonic() + 60
    while True:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]
        up = {t["labels"].get("instance") for t in targets["activeTargets"] if t["health"] == "up"}
        if instances <= up:
            return
        assert time.monotonic() < deadline, f"Prometheus targets: {targets}"
        time.sleep(1)


@contextlib.contextmanager
def running_demo(*args: str) -> Iterator[Demo]:
    running = Demo("--free-ports", *args)
    started: set[int] = set()
    try:
        yield running
    finally:
        started |= descendants(running.proc.pid)
        if running.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(running.proc.pid, signal.SIGKILL)
            running.proc.wait(10)
        running._reader.join(5)
        if running.proc.stdout is not None:
            running.proc.stdout.close()
        for pid in started:  # only if the test failed before the demo stopped them
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def demo() -> Iterator[Demo]:
    with running_demo() as running:
        yield running


def stop_and_check_nothing_is_left(demo: Demo) -> None:
    """Ctrl-C: the demo exits 0, every process it started is gone, its directory too."""
    workdir = re.search(r"Starting the demo mesh in (\S+) \.\.\.", demo.output)
    assert workdir, demo.output
    started = descendants(demo.proc.pid)
    assert len(started) >= 7  # 5 processes + the 2 Envoys
    assert demo.ctrl_c() == 0, demo.output
    assert demo.output.rstrip().endswith("Stopped."), demo.output
    deadline = time.monotonic() + 10
    while (left := {pid for pid in started if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"still running after Ctrl-C: {left}"
    assert not Path(workdir.group(1)).exists()


def test_make_demo_brings_up_a_working_mesh_and_stops_cleanly(demo: Demo) -> None:
    demo.wait_for_line("Press Ctrl-C to stop everything.", UP_TIMEOUT)
    out = demo.output
    for name in ("kuma-cp", "backend", "client", "kuma-dp-backend-01", "kuma-dp-client-01"):
        assert re.search(rf"^  {re.escape(name)}\s+\d+\s", out, re.M), f"{name} missing:\n{out}"
    if (BIN / "kuma-prometheus-sd").exists():
        assert re.search(r"^  kuma-prometheus-sd\s+\d+\s", out, re.M), out

    # what the demo tells the user to try
    url = re.search(r"curl -s (http://127\.0\.0\.1:\d+/hello)", out)
    config = re.search(r"kumactl --config-file (\S+) inspect dataplanes", out)
    assert url, out
    assert config, out
    answer = httpx.get(url.group(1), timeout=10)
    assert answer.status_code == 200
    assert answer.text.startswith("GET /hello HTTP/1.1\r\n")

    kumactl = [str(BIN / "kumactl"), "--config-file", config.group(1)]
    inspect = subprocess.run(
        [*kumactl, "inspect", "dataplanes"], capture_output=True, text=True, timeout=30
    )
    cells = [re.split(r"\s{2,}", line.strip()) for line in inspect.stdout.splitlines()[1:]]
    rows = {row[1]: row[3] for row in cells}  # NAME: STATUS
    assert rows == {"backend-01": "Online", "client-01": "Online"}, inspect.stdout

    # metrics, once the mesh serves them; Prometheus, when the demo found one
    metrics = re.search(r"curl -s (http://127\.0\.0\.1:\d+/metrics)", out)
    assert metrics, out
    if (ROOT / "kuma" / "xds" / "generators" / "prometheus.py").exists():
        assert "envoy_cluster_" in httpx.get(metrics.group(1), timeout=10).text
    prometheus = re.search(r"open (http://127\.0\.0\.1:\d+)/targets", out)
    if prometheus:
        wait_for_targets(prometheus.group(1), {"backend-01", "client-01"})

    # "delete traffic-permission client-to-backend  # then the curl above gets 503"
    subprocess.run(
        [*kumactl, "delete", "traffic-permission", "client-to-backend"],
        check=True,
        capture_output=True,
        timeout=30,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            status = httpx.get(url.group(1), timeout=5).status_code
        except httpx.TransportError:
            break
        if status != 200:
            break
        assert time.monotonic() < deadline, "the mesh still lets the client through"
        time.sleep(0.5)

    stop_and_check_nothing_is_left(demo)


@pytest.mark.postgres
def test_make_demo_on_postgres(postgres_db: str) -> None:
    """`make demo DEMO_ARGS=--postgres=DSN`: migrate, then the same mesh on PostgreSQL (the
    demo only says it is up once a request went through the mesh and both are Online)."""
    url = urlsplit(postgres_db)
    if not url.password:  # kuma-cp requires one; the test server trusts loopback
        netloc = f"{url.username or 'postgres'}:kuma@{url.hostname}:{url.port or 5432}"
        postgres_db = urlunsplit(url._replace(netloc=netloc))
    with running_demo(f"--postgres={postgres_db}") as demo:
        demo.wait_for_line("Press Ctrl-C to stop everything.", UP_TIMEOUT)
        stop_and_check_nothing_is_left(demo)
