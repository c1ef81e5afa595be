"""Fixtures for kumactl tests: a runner with a temporary config file, a pinned clock, goldens."""

from __future__ import annotations

import datetime as dt
import http.server
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kuma.cli import Kumactl, Runtime, build_root

GOLDEN_DIR = Path(__file__).parent / "golden"

# The clock every test pins kumactl to; AGE and "... AGO" cells are computed from it.
NOW = dt.datetime(2020, 10, 22, 12, 0, 0, tzinfo=dt.UTC)


def assert_golden(name: str, actual: str) -> None:
    """Compare with tests/cli/golden/<name>; UPDATE_GOLDEN_FILES=true rewrites the file."""
    path = GOLDEN_DIR / name
    if os.environ.get("UPDATE_GOLDEN_FILES") == "true":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    assert path.exists(), f"missing golden file {path} (run with UPDATE_GOLDEN_FILES=true)"
    expected = path.read_text()
    assert actual == expected, f"{name} differs from the golden file"


@dataclass
class KumactlRunner:
    """Runs kumactl in-process against a config file of its own."""

    config_file: Path
    now: dt.datetime = NOW
    tz: dt.tzinfo | None = dt.UTC
    version: str | None = None

    def __call__(self, *args: str, input: str | None = None, config: bool = True) -> Result:
        runtime = Runtime(now=lambda: self.now, tz=self.tz)
        if self.version is not None:
            runtime.version = self.version
        argv = ["--config-file", str(self.config_file), *args] if config else list(args)
        return CliRunner().invoke(
            build_root(), argv, obj=Kumactl(runtime), input=input, prog_name="kumactl"
        )


@pytest.fixture
def kumactl(tmp_path: Path) -> KumactlRunner:
    return KumactlRunner(tmp_path / "kumactl" / "config")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: StaticServer = self.server  # type: ignore[assignment]
        server.requests.append(self.path)
        self.send_response(server.status)
        self.send_header("Content-Type", server.content_type)
        self.end_headers()
        self.wfile.write(server.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class StaticServer(http.server.ThreadingHTTPServer):
    """Answers every GET with `status` and `body`; records the paths asked for."""

    status = 200
    body = b""
    content_type = "application/json"

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def static_server() -> Iterator[StaticServer]:
    """A real HTTP server on loopback that is not a Kuma control plane."""
    server = StaticServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()
