"""A real control plane for kumactl tests: kuma.api's apps served by hypercorn on loopback.

The REST API and the admin server run in one background thread with its own asyncio loop,
over a ResourceManager on a MemoryStore (the `default` mesh created, like `kuma-cp run`).
Tests drive kumactl in the main thread and look at the store through `call()`.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from hypercorn.asyncio import serve
from hypercorn.config import Config

from kuma.api import AdminSettings, ApiSettings, build_admin_app, build_api_app
from kuma.manager.manager import ResourceManager
from kuma.store.memory import MemoryStore
from kuma.version import __version__

T = TypeVar("T")

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def _listening_fd() -> tuple[int, int]:
    """A bound loopback socket handed over to hypercorn as `fd://`; (fd, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    return sock.detach(), port


class ControlPlane:
    """Handles to a running control plane: its URLs, its manager, and its event loop."""

    def __init__(self, *, version: str = __version__, read_only: bool = False) -> None:
        self.version = version
        self.read_only = read_only
        self.manager = ResourceManager(MemoryStore())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.url = ""
        self.admin_url = ""

    def call(self, fn: Callable[[], Awaitable[T]], timeout: float = 10.0) -> T:
        """Run `fn()` on the control plane's loop and wait for its result."""
        assert self._loop is not None

        async def run() -> T:
            return await fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    async def _main(self, api_fd: int, admin_fd: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await self.manager.ensure_default_mesh()
        api = build_api_app(
            self.manager,
            ApiSettings(
                version=self.version,
                hostname="kuma-py-test",
                public_url=self.url,
                read_only=self.read_only,
                catalog={
                    "apis": {
                        "bootstrap": {"url": "http://localhost:5682"},
                        "dataplaneToken": {"localUrl": self.admin_url, "publicUrl": ""},
                        "admin": {"localUrl": self.admin_url, "publicUrl": ""},
                        "monitoringAssignment": {"url": "grpc://localhost:5676"},
                    }
                },
            ),
        )
        admin = build_admin_app(self.manager, AdminSettings(read_only=self.read_only))
        configs = []
        for fd in (api_fd, admin_fd):
            config = Config()
            config.bind = [f"fd://{fd}"]
            config.accesslog = None
            config.errorlog = None
            config.graceful_timeout = 1.0
            configs.append(config)
        stop = self._stop

        async def wait_stop() -> None:
            await stop.wait()

        tasks = [
            asyncio.create_task(serve(api, configs[0], shutdown_trigger=wait_stop)),
            asyncio.create_task(serve(admin, configs[1], shutdown_trigger=wait_stop)),
        ]
        self._ready.set()
        await asyncio.gather(*tasks)

    def _thread_main(self, api_fd: int, admin_fd: int) -> None:
        try:
            asyncio.run(self._main(api_fd, admin_fd))
        except BaseException as e:  # reported by start()/stop()
            self._error = e
            self._ready.set()

    def start(self) -> None:
        api_fd, api_port = _listening_fd()
        admin_fd, admin_port = _listening_fd()
        self.url = f"http://127.0.0.1:{api_port}"
        self.admin_url = f"http://127.0.0.1:{admin_port}"
        self._thread = threading.Thread(
            target=self._thread_main, args=(api_fd, admin_fd), name="kuma-cp-test", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise RuntimeError("the control plane did not start in time")
        if self._error is not None:
            raise RuntimeError("the control plane failed to start") from self._error
        _wait_listening(api_port)
        _wait_listening(admin_port)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)
            if self._thread.is_alive():
                raise RuntimeError("the control plane did not stop in time")
        if self._error is not None:
            raise RuntimeError("the control plane failed") from self._error


def _wait_listening(port: int) -> None:
    deadline = START_TIMEOUT
    step = 0.02
    waited = 0.0
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if waited >= deadline:
                raise
            threading.Event().wait(step)
            waited += step


@contextmanager
def running_control_plane(**kwargs: Any) -> Iterator[ControlPlane]:
    cp = ControlPlane(**kwargs)
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()
