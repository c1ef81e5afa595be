"""A real in-process control plane for kuma-dp tests, and kuma-dp run as a real subprocess.

`serve_cp` serves, with hypercorn on 127.0.0.1, the bootstrap app (kuma/xds/bootstrap) and a
`GET /catalog` shaped exactly like kuma-cp's (reference 3.1). kuma-cp's own wiring of these
servers lands separately; this is the same app behind the same HTTP contract.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from kuma.manager import ResourceManager
from kuma.model.yamlio import load_resources
from kuma.store.memory import MemoryStore
from kuma.xds.bootstrap import BootstrapSettings, build_bootstrap_app

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening_socket() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock, int(sock.getsockname()[1])


async def new_manager(*documents: str) -> ResourceManager:
    manager = ResourceManager(MemoryStore())
    await manager.ensure_default_mesh()
    for doc in documents:
        for resource in load_resources(doc):
            await manager.create(resource)
    return manager


def dataplane_yaml(name: str, *, inbound_port: int, service_port: int, service: str = "web") -> str:
    return f"""
type: Dataplane
mesh: default
name: {name}
networking:
  address: 127.0.0.1
  inbound:
  - port: {inbound_port}
    servicePort: {service_port}
    tags:
      kuma.io/service: {service}
"""


class _RecordPaths:
    """ASGI middleware noting `METHOD path` of every HTTP request."""

    def __init__(self, app: ASGIApp, seen: list[str]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.seen.append(f"{scope['method']} {scope['path']}")
        await self.app(scope, receive, send)


@dataclass
class ControlPlane:
    api_url: str
    bootstrap_url: str
    xds_port: int
    requests: list[str] = field(default_factory=list)


def catalog_json(bootstrap_url: str, *, token_required: bool) -> dict[str, Any]:
    """kuma-cp's GET /catalog at 0.7.3 (reference 3.1); the token server shows as a localUrl."""
    admin_local = "http://localhost:5679"
    return {
        "apis": {
            "bootstrap": {"url": bootstrap_url},
            "dataplaneToken": {"localUrl": admin_local if token_required else "", "publicUrl": ""},
            "admin": {"localUrl": admin_local, "publicUrl": ""},
            "monitoringAssignment": {"url": "grpc://127.0.0.1:5676"},
        }
    }


async def _serve(app: ASGIApp, sock: socket.socket, stop: anyio.Event) -> None:
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the socket
    config.accesslog = None
    config.graceful_timeout = 1.0
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


@asynccontextmanager
async def serve_cp(
    manager: ResourceManager, *, token_required: bool = False
) -> AsyncIterator[ControlPlane]:
    """The API server's /catalog and the bootstrap server, on two loopback ports."""
    api_sock, api_port = _listening_socket()
    boot_sock, boot_port = _listening_socket()
    cp = ControlPlane(
        api_url=f"http://127.0.0.1:{api_port}",
        bootstrap_url=f"http://127.0.0.1:{boot_port}",
        xds_port=free_port(),  # nothing serves ADS here: Envoy keeps retrying, which is fine
    )

    async def catalog(_request: Request) -> JSONResponse:
        return JSONResponse(catalog_json(cp.bootstrap_url, token_required=token_required))

    api_app = _RecordPaths(Starlette(routes=[Route("/catalog", catalog)]), cp.requests)
    settings = BootstrapSettings(xds_host="127.0.0.1", xds_port=cp.xds_port)
    boot_app = _RecordPaths(build_bootstrap_app(manager, settings), cp.requests)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(_serve, api_app, api_sock, stop)
        tg.start_soon(_serve, boot_app, boot_sock, stop)
        try:
            yield cp
        finally:
            stop.set()


def kuma_dp_env(**overrides: str) -> dict[str, str]:
    """The test process's environment without any KUMA_* variable, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(overrides)
    return env


@dataclass
class KumaDp:
    process: anyio.abc.Process
    log_file: Path

    @property
    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def envoy_pid(self) -> int | None:
        match = re.search(r"Envoy started\s+pid=(\d+)", self.log)
        return int(match.group(1)) if match else None

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)


@asynccontextmanager
async def kuma_dp(args: list[str], log_dir: Path, **env: str) -> AsyncIterator[KumaDp]:
    """`python -m kuma.dp run <args>`; stdout+stderr (kuma-dp's and Envoy's) go to a file.

    On leaving, kuma-dp and any Envoy it started are killed if still running.
    """
    log_file = log_dir / "kuma-dp.log"
    with log_file.open("wb") as out:
        process = await anyio.open_process(
            [sys.executable, "-m", "kuma.dp", "run", *args],
            stdin=None,
            stdout=out,
            stderr=out,
            env=kuma_dp_env(**env),
            cwd=str(log_dir),
        )
    dp = KumaDp(process, log_file)
    try:
        yield dp
    finally:
        envoy = dp.envoy_pid()
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                with suppress(ProcessLookupError):
                    process.kill()
            with anyio.move_on_after(10):
                await process.wait()
            if envoy is not None and pid_alive(envoy):
                with suppress(ProcessLookupError):
                    os.kill(envoy, signal.SIGKILL)
            await process.aclose()


async def envoy_server_info(port: int) -> dict[str, Any] | None:
    """Envoy's admin `/server_info` on 127.0.0.1:`port`, or None while it does not answer."""
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(f"http://127.0.0.1:{port}/server_info")
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    info: dict[str, Any] = response.json()
    return info


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = re.search(r"^State:\s+(\S)", status, re.M)
    return state is not None and state.group(1) != "Z"


async def wait_for(check: Callable[[], Any], *, within: float, what: str) -> Any:
    """Poll `check` (sync or async) until it returns something truthy."""
    with anyio.fail_after(within):
        while True:
            result = check()
            if hasattr(result, "__await__"):
                result = await result
            if result:
                return result
            await anyio.sleep(0.05)
    raise AssertionError(what)  # pragma: no cover - fail_after raises first
