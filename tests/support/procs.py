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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

T = TypeVar("T")

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A loopback port nothing listens on, never one this process was given before: the kernel
    may hand the same ephemeral port to two bind(0) calls in a row, and two listeners of one
    kuma-cp (Ports) on the same port make it exit with "address already in use"."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


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
    sds: int = field(default_factory=free_port)
    mads: int = field(default_factory=free_port)

    def env(self) -> dict[str, str]:
        return {
            "KUMA_API_SERVER_PORT": str(self.api),
            "KUMA_ADMIN_SERVER_LOCAL_PORT": str(self.admin),
            "KUMA_XDS_SERVER_DIAGNOSTICS_PORT": str(self.diagnostics),
            "KUMA_BOOTSTRAP_SERVER_PORT": str(self.bootstrap),
            "KUMA_XDS_SERVER_GRPC_PORT": str(self.xds),
            "KUMA_SDS_SERVER_GRPC_PORT": str(self.sds),
            "KUMA_MONITORING_ASSIGNMENT_SERVER_GRPC_PORT": str(self.mads),
        }

    def all(self) -> list[int]:
        return [
            self.api,
            self.admin,
            self.diagnostics,
            self.bootstrap,
            self.xds,
            self.sds,
            self.mads,
        ]


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
                proc.terminate()  # let it stop what it started (kuma-dp stops its Envoy)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)


@contextmanager
def control_plane(*args: str, ports: Ports | None = None, **env: str) -> Iterator[ControlPlane]:
    """`kuma-cp <args>` (usually `run`) on free ports; killed on exit if still running."""
    ports = ports or Ports()
    argv = [sys.executable, "-m", "kuma.cp", *args]
    with spawn(argv, base_env(**ports.env(), **env)) as p:
        yield ControlPlane(p.proc, p.log, ports)


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy (returned), else fail naming `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as e:  # a check may fail until the system converges
            last_error = e
        time.sleep(0.1)
    detail = f" (last error: {last_error!r})" if last_error else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


@contextmanager
def echo_server(port: int) -> Iterator[Process]:
    """kuma-tcp-echo on 127.0.0.1:port, accepting connections when this yields."""
    argv = [sys.executable, "-m", "kuma.echo", "--port", str(port), "--address", "127.0.0.1"]
    with spawn(argv, base_env()) as p:
        wait_until(lambda: _connects(port), START_TIMEOUT, f"echo server on {port}")
        yield p


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def kuma_dp(
    cp: ControlPlane, name: str, *, admin_port: int, mesh: str = "default", **env: str
) -> Iterator[Process]:
    """`kuma-dp run` for dataplane `name` with the wheel's Envoy; Envoy admin on admin_port.

    Its dataplane token is issued by the control plane's admin server (as `kumactl generate
    dataplane-token` does) and handed over in a temporary file.
    """
    catalog = httpx.get(f"{cp.api}/catalog", timeout=10).json()
    token_file = tempfile.NamedTemporaryFile("w", suffix=".token", delete=False)  # noqa: SIM115
    with token_file:
        if catalog["apis"]["dataplaneToken"]["localUrl"]:  # tokens are on
            token = httpx.post(
                f"http://127.0.0.1:{cp.ports.admin}/tokens",
                json={"name": name, "mesh": mesh},
                timeout=10,
            )
            token.raise_for_status()
            token_file.write(token.text)
    argv = [
        sys.executable,
        "-m",
        "kuma.dp",
        "run",
        f"--name={name}",
        f"--mesh={mesh}",
        f"--cp-address={cp.api}",
        f"--admin-port={admin_port}",
    ]
    if os.path.getsize(token_file.name):
        argv.append(f"--dataplane-token-file={token_file.name}")
    try:
        with spawn(argv, base_env(**env)) as p:
            try:
                yield p
            finally:
                if p.alive():
                    p.stop(timeout=STOP_TIMEOUT)
    finally:
        os.unlink(token_file.name)


def send_and_receive(port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    """Connect to 127.0.0.1:port, send `payload`, read until as many bytes came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def postgres_env(dsn: str) -> dict[str, str]:
    """KUMA_STORE_* variables that point kuma-cp at the database of `dsn`."""
    parts = urlsplit(dsn)
    return {
        "KUMA_STORE_TYPE": "postgres",
        "KUMA_STORE_POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "KUMA_STORE_POSTGRES_PORT": str(parts.port or 5432),
        "KUMA_STORE_POSTGRES_USER": unquote(parts.username or "postgres"),
        # Kuma requires a password; trust authentication ignores it
        "KUMA_STORE_POSTGRES_PASSWORD": unquote(parts.password or "unused"),
        "KUMA_STORE_POSTGRES_DB_NAME": unquote(parts.path.lstrip("/")),
    }
