"""Real kuma-py processes on loopback for tests: free ports, kuma-cp, kuma-dp, echo servers.

Every helper bounds its waits and kills what it started, even when the test fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

import httpx

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Nothing listens on `port` (on any interface): we can bind it ourselves."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("::", port))
            s.listen(1)
        except OSError:
            return False
    return True


def base_env(**extra: str) -> dict[str, str]:
    """The test's environment without any KUMA_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Ports:
    """Free loopback ports for every kuma-cp listener."""

    api: int = field(default_factory=free_port)
    admin: int = field(default_factory=free_port)
    diagnostics: int = field(default_factory=free_port)
    bootstrap: int = field(default_factory=free_port)
    xds: int = field(default_factory=free_port)

    def env(self) -> dict[str, str]:
        return {
            "KUMA_API_SERVER_PORT": str(self.api),
            "KUMA_ADMIN_SERVER_LOCAL_PORT": str(self.admin),
            "KUMA_XDS_SERVER_DIAGNOSTICS_PORT": str(self.diagnostics),
            "KUMA_BOOTSTRAP_SERVER_PORT": str(self.bootstrap),
            "KUMA_XDS_SERVER_GRPC_PORT": str(self.xds),
        }

    def all(self) -> list[int]:
        return [self.api, self.admin, self.diagnostics, self.bootstrap, self.xds]


@dataclass
class Process:
    """A subprocess whose combined output goes to a temporary file."""

    proc: subprocess.Popen[bytes]
    log: IO[bytes]

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


@dataclass
class ControlPlane(Process):
    ports: Ports = field(default_factory=Ports)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.ports.api}"

    @property
    def diagnostics(self) -> str:
        return f"http://127.0.0.1:{self.ports.diagnostics}"

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"kuma-cp exited with {self.proc.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(f"{self.diagnostics}/ready", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"kuma-cp not ready after {timeout}s:\n{self.output()}")


@contextmanager
def spawn(argv: list[str], env: dict[str, str]) -> Iterator[Process]:
    """Start `argv`; on exit kill it if it is still running."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield Process(proc, log)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)


@contextmanager
def control_plane(*args: str, ports: Ports | None = None, **env: str) -> Iterator[ControlPlane]:
    """`kuma-cp <args>` (usually `run`) on free ports; killed on exit if still running."""
    ports = ports or Ports()
    argv = [sys.executable, "-m", "kuma.cp", *args]
    with spawn(argv, base_env(**ports.env(), **env)) as p:
        yield ControlPlane(p.proc, p.log, ports)
