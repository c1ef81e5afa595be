"""Change events from PostgreSQL: one LISTEN connection feeding the store's EventBus.

The trigger installed by migration 0002 NOTIFYs `kuma_resource_changes` for every row inserted,
updated or deleted (cascaded deletes included), after commit. Every control plane on the
database LISTENs on its own dedicated connection and republishes each notification as a
`ChangeEvent`, so a write made through any instance reaches the subscribers of all of them, and
a write made through this instance reaches its own subscribers the same way (one path, in
commit order).

`start()` opens the connection; from then on notifications are delivered by asyncpg's protocol
callbacks, with no task of ours. `run()` is the supervisor a control plane starts in its root
task group: it notices a lost connection (the server closed it, or a periodic health query
fails or hangs), reconnects with exponential backoff, and publishes one `Resync` after each
reconnect because notifications sent while disconnected are lost for good.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import anyio
import anyio.abc
import asyncpg
import structlog

from kuma.errors import StoreError
from kuma.store.events import ChangeEvent, ChangeOp, EventBus, Resync
from kuma.store.postgres.settings import DRIVER_ERRORS, PostgresSettings

__all__ = ["CHANNEL", "ChangeListener"]

CHANNEL = "kuma_resource_changes"
"""The NOTIFY channel (fixed by migration 0002_notify_resource_changes)."""

log = structlog.get_logger("kuma.store.postgres")


class ChangeListener:
    def __init__(
        self,
        settings: PostgresSettings,
        bus: EventBus,
        *,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        health_check_interval: float = 10.0,
    ) -> None:
        self._settings = settings
        self._bus = bus
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._health_check_interval = health_check_interval
        self._conn: asyncpg.Connection | None = None
        self._wakeup = anyio.Event()
        self._closed = False
        self._run_scope: anyio.CancelScope | None = None
        self._run_done: anyio.Event | None = None
        self.reconnects = 0
        """How many times `run()` re-established the connection (diagnostics)."""

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the LISTEN connection, None while disconnected."""
        conn = self._conn
        return conn.get_server_pid() if conn is not None and not conn.is_closed() else None

    async def start(self) -> None:
        """Open the LISTEN connection; StoreError if the server cannot be reached."""
        if self._closed:
            raise StoreError("change listener is closed")
        await self._open()

    async def _open(self) -> None:
        conn = await self._settings.connect(application_name="kuma-cp change listener")
        try:
            await conn.add_listener(CHANNEL, self._on_notification)
        except DRIVER_ERRORS as e:
            conn.terminate()
            raise StoreError(
                f"PostgreSQL {self._settings.target}: cannot LISTEN on {CHANNEL}: {e}"
            ) from e
        conn.add_termination_listener(self._on_termination)
        if self._closed:  # close() ran while we were connecting
            conn.terminate()
            return
        self._conn = conn

    def _on_notification(
        self, _conn: asyncpg.Connection, _pid: int, _channel: str, payload: str
    ) -> None:
        try:
            data: dict[str, Any] = json.loads(payload)
            event = ChangeEvent(
                ChangeOp(data["op"]), str(data["type"]), str(data["mesh"]), str(data["name"])
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed change notification", payload=payload[:200])
            return
        self._bus.publish(event)

    def _on_termination(self, conn: asyncpg.Connection) -> None:
        if conn is not self._conn or self._closed:
            return
        self._conn = None
        if self._run_scope is None:
            log.warning(
                "change-event connection to PostgreSQL lost and nothing will reconnect it: "
                "start PostgresStore.run() in the control plane's task group",
                target=self._settings.target,
            )
        else:
            log.warning("change-event connection to PostgreSQL lost", target=self._settings.target)
        self._wakeup.set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep the LISTEN connection up until `close()`; returns when closed."""
        if self._run_done is not None:
            raise RuntimeError("ChangeListener.run() is already running")
        self._run_done = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                self._run_scope = scope
                if self._closed:
                    scope.cancel()
                task_status.started()
                await self._supervise()
        finally:
            self._run_scope = None
            done, self._run_done = self._run_done, None
            done.set()

    async def _supervise(self) -> None:
        delay = self._reconnect_min
        while True:
            if self._conn is None:
                try:
                    await self._open()
                except StoreError as e:
                    log.warning(
                        "cannot reconnect change-event listener", error=str(e), retry_in=delay
                    )
                    await anyio.sleep(delay)
                    delay = min(delay * 2, self._reconnect_max)
                    continue
                delay = self._reconnect_min
                self.reconnects += 1
                log.info("change-event listener reconnected", target=self._settings.target)
                self._bus.publish(
                    Resync("change-event connection to PostgreSQL was re-established")
                )
                continue
            woken = False
            with anyio.move_on_after(self._health_check_interval):
                await self._wakeup.wait()
                woken = True
            self._wakeup = anyio.Event()
            if not woken:
                await self._health_check()

    async def _health_check(self) -> None:
        conn = self._conn
        if conn is None:
            return
        healthy = False
        with anyio.move_on_after(self._settings.connect_timeout):
            try:
                await conn.fetchval("SELECT 1")
                healthy = True
            except DRIVER_ERRORS as e:
                log.warning("change-event connection failed its health check", error=str(e))
        if not healthy:
            conn.terminate()
            if self._conn is conn:
                self._conn = None
                self._wakeup.set()  # the supervisor reconnects

    async def close(self) -> None:
        """Stop `run()` (if running) and close the connection. Idempotent; never raises."""
        self._closed = True
        if self._run_scope is not None:
            self._run_scope.cancel()
        conn, self._conn = self._conn, None
        with anyio.CancelScope(shield=True):
            if conn is not None:
                conn.remove_termination_listener(self._on_termination)
                with anyio.move_on_after(2):
                    with contextlib.suppress(*DRIVER_ERRORS):
                        await conn.close()
                if not conn.is_closed():
                    conn.terminate()
            done = self._run_done
            if done is not None:
                with anyio.move_on_after(5):
                    await done.wait()
