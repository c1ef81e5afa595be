"""Change events from PostgreSQL: the `resource_changes` log, read by every control plane.

How a change travels (migration 0003):

1. A trigger on `resources` inserts one row into `resource_changes` for every row inserted,
   updated or deleted (cascaded deletes included), in the writer's transaction.
2. After a successful write, the store calls `ChangeFeed.wrote()`. That wakes this instance's
   reader at once, and asks the *waker* to send one `NOTIFY kuma_resource_changes_wake` (a tiny
   transaction of its own on a pool connection) so the other instances read too. The waker has
   at most one NOTIFY in flight and one pending, and spaces them `wake_interval` apart, so a
   burst of thousands of writes costs a handful of NOTIFYs - never one per write, which is what
   made writes slow: PostgreSQL serialises the commits of notifying transactions.
3. Each instance's reader, on its own connection (LISTENing on that channel), reads
   `resource_changes` past what it has already read and publishes one `ChangeEvent` per row,
   in id order, on the store's `EventBus`. It also reads every `poll_interval` without being
   woken, so writers that send no NOTIFY (another tool, hand-written SQL, an instance started
   without `run()`) are seen too, and that read doubles as the connection's health check.
   Ids that commit out of order are tracked by `cursor.ChangeCursor` (never lost, never
   published twice).
4. `run()` also prunes the log: a row is deleted once this instance had read past it at least
   `retention` ago (any instance may do it; it is idempotent).

A lost connection is re-opened with exponential backoff; then one `Resync` is published and the
reader restarts from the newest change (what happened while it was away is not replayed). A
reader that could not read for more than `retention / 2` (an event loop stalled for minutes)
does the same, since the rows it missed may have been pruned.

Who drives the reader: `run()` (started in the control plane's task group) does, together with
the waker and the pruning. Without `run()`, a subscription of this store drives it while its
owner waits in `receive()` (`pump()`), so `connect()` alone still delivers every event - this
instance's writes at once, other instances' writes when their wake-up arrives or within
`poll_interval` - without any task of ours running in the background. Only `run()` sends
wake-ups and prunes, so a control plane must run it.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections import deque
from functools import partial

import anyio
import anyio.abc
import asyncpg
import structlog

from kuma.errors import StoreError
from kuma.store.events import ChangeEvent, ChangeOp, EventBus, Resync, Subscription
from kuma.store.postgres.cursor import ChangeCursor
from kuma.store.postgres.pool import ConnectionPool
from kuma.store.postgres.settings import DRIVER_ERRORS, PostgresSettings

__all__ = ["CHANGES_TABLE", "WAKE_CHANNEL", "ChangeFeed"]

CHANGES_TABLE = "resource_changes"
"""The change log (migration 0003_resource_change_log)."""

WAKE_CHANNEL = "kuma_resource_changes_wake"
"""The NOTIFY channel of wake-ups; the payload is the sending instance's id."""

log = structlog.get_logger("kuma.store.postgres")

_OPS = {op.value: op for op in ChangeOp}

# The reader's connection plans every query for its actual parameters, and never scans the
# whole log when the primary key can answer: a new log has no statistics (nor does a cached
# generic plan know that `id > $1` selects only the newest rows), and the planner would
# otherwise pick a sequential scan of a table holding minutes of changes, several times a
# second.
_READER_SETTINGS = "SET plan_cache_mode = force_custom_plan; SET enable_seqscan = off"
_READ = """
SELECT id, op, type, mesh, name FROM resource_changes
WHERE id > $1 OR id = ANY($2::bigint[])
ORDER BY id LIMIT $3
"""
# Transactions that may still commit a change row: every writer of `resource_changes` holds
# this lock from before it draws an id until after its commit is visible.
_WRITERS = """
SELECT coalesce(array_agg(virtualtransaction), '{}') FROM pg_locks
WHERE locktype = 'relation' AND mode = 'RowExclusiveLock' AND granted
  AND relation = 'resource_changes'::regclass
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_LAST_ID = (
    "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "
    "FROM resource_changes_id_seq"
)
_IDS_BETWEEN = (
    "SELECT coalesce(array_agg(id), '{}') FROM resource_changes WHERE id > $1 AND id <= $2"
)
_WAKE = "SELECT pg_notify($1, $2)"


async def _prune(conn: asyncpg.Connection, high: int, holes: list[int]) -> int:
    """Delete change rows up to `high` except `holes`; how many were deleted. The numbers are
    inline (planned for them, not a cached generic plan) and the primary key is preferred, as
    on the reader's connection."""
    keep = ",".join(str(int(hole)) for hole in holes)
    async with conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        status: str = await conn.execute(
            f"DELETE FROM resource_changes WHERE id <= {int(high)} AND id <> ALL('{{{keep}}}')"
        )
    return int(status.rsplit(" ", 1)[-1])


_BACKGROUND_ERRORS: tuple[type[BaseException], ...] = (StoreError, *DRIVER_ERRORS)

_START_TAIL = 1000
"""At (re)start, ids this far below the newest may still be committing and are awaited."""


class ChangeFeed:
    """Reads `resource_changes` and publishes each change on the store's bus (module doc)."""

    def __init__(
        self,
        settings: PostgresSettings,
        pool: ConnectionPool,
        *,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        poll_interval: float = 1.0,
        retention: float = 600.0,
        wake_interval: float = 0.02,
        read_interval: float = 0.01,
        settle_after: float = 0.1,
        batch: int = 5000,
    ) -> None:
        """`poll_interval`: read at least this often (seconds), woken or not. `retention`:
        keep change rows this long after reading past them. `wake_interval`: at least this long
        between two wake-up NOTIFYs. `read_interval`: at least this long between two reads (a
        batching window). `settle_after`: how long an id may be missing before asking which
        transactions could still commit it (see `cursor`). `batch`: rows per read at most."""
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if retention < 4 * poll_interval:
            # A reader that has not read for retention / 2 assumes it missed pruned rows.
            raise ValueError("the change retention must be at least 4 poll intervals")
        self._settings = settings
        self._pool = pool
        self._bus = EventBus()
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._poll_interval = poll_interval
        self._retention = retention
        self._wake_interval = wake_interval
        self._read_interval = read_interval
        self._settle_after = settle_after
        self._batch = batch
        self._timeout = settings.connect_timeout
        self.instance_id = uuid.uuid4().hex
        """Payload of this instance's wake-ups (its reader ignores its own)."""

        self._conn: asyncpg.Connection | None = None
        self._cursor = ChangeCursor(0)
        self._closed = False
        self._closing = anyio.Event()
        self._kick = anyio.Event()  # something to read: a write here, a wake-up, a lost conn
        self._wake_wanted = anyio.Event()  # this instance wrote: others should read
        self._progress = anyio.Event()  # a reader step ended (pumps waiting for one re-check)
        self._read_lock = anyio.Lock()
        self._read_soon = False
        self._last_read = -math.inf
        self._last_ok = time.monotonic()
        self._last_writers_check = -math.inf
        self._retry_at = 0.0
        self._delay = reconnect_min
        self._driven = False
        self._run_scope: anyio.CancelScope | None = None
        self._run_done: anyio.Event | None = None
        self.reconnects = 0
        """How many times the connection was re-established (diagnostics)."""
        self.wakes_sent = 0
        """Wake-up NOTIFYs this instance sent (diagnostics)."""
        self.pruned = 0
        """Change rows this instance deleted (diagnostics)."""

    # -- state ----------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def backend_pid(self) -> int | None:
        """The server process id of the reader's connection, None while disconnected."""
        conn = self._conn
        return conn.get_server_pid() if conn is not None and not conn.is_closed() else None

    @property
    def pending_ids(self) -> list[int]:
        """Change ids below the newest read that may still commit (diagnostics)."""
        return self._cursor.holes

    @property
    def position(self) -> int:
        """The newest change id read."""
        return self._cursor.high

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the reader's connection and take the current position in the log; changes
        committed from now on are published. StoreError if the server cannot be reached."""
        if self._closed:
            raise StoreError("change feed is closed")
        await self._open()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Read, wake other instances and prune, until `close()`; returns when closed."""
        if self._run_done is not None:
            raise RuntimeError("ChangeFeed.run() is already running")
        self._run_done = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                self._run_scope = scope
                if self._closed:
                    scope.cancel()
                self._driven = True
                self._kick.set()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._read_loop)
                    tg.start_soon(self._wake_loop)
                    tg.start_soon(self._prune_loop)
                    task_status.started()
        finally:
            self._driven = False
            self._run_scope = None
            done, self._run_done = self._run_done, None
            done.set()

    async def close(self) -> None:
        """Stop `run()` (if running), close the connection, end every subscription.
        Idempotent; never raises."""
        self._closed = True
        self._closing.set()
        self._kick.set()
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
        self._bus.close()

    # -- the store's side -----------------------------------------------------------------------

    def wrote(self) -> None:
        """A write just committed: read now, and wake the other instances."""
        if self._closed:
            return
        self._kick.set()
        self._wake_wanted.set()

    def subscribe(self, *, max_buffer: int = 10_000) -> Subscription:
        sub = self._bus.attach(_FeedSubscription(self, self._bus, max_buffer))
        if self._closed:
            sub.close()  # receive() ends at once, as for subscriptions open at close()
        return sub

    @property
    def _needs_pump(self) -> bool:
        return not self._driven and not self._closed

    async def pump(self) -> None:
        """One reader step on behalf of a subscriber waiting for events while `run()` is not
        running; if another task is already stepping, wait for it to finish its step."""
        if self._read_lock.locked():
            await self._progress.wait()
            return
        async with self._read_lock:
            await self._step()

    # -- reader ---------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while not self._closed:
            async with self._read_lock:
                await self._step()

    async def _step(self) -> None:
        """(Re)connect if needed, else wait for a reason to read, then read once."""
        try:
            if self._closed:
                return
            conn = self._conn
            if conn is None:
                await self._reconnect()
                return
            await self._wait_for_reason()
            if self._closed or self._conn is not conn:
                return
            await self._read_once(conn)
        finally:
            progress, self._progress = self._progress, anyio.Event()
            progress.set()

    async def _wait_for_reason(self) -> None:
        now = time.monotonic()
        if self._read_soon:
            deadline = now
        else:
            deadline = self._last_read + self._poll_interval
            oldest = self._cursor.oldest_hole()
            if oldest is not None:  # re-read for late commits; young holes often, old ones less
                recheck = min(max((now - oldest) / 4, self._read_interval), self._poll_interval)
                deadline = min(deadline, self._last_read + recheck)
        if deadline > now:
            with anyio.move_on_after(deadline - now):
                await self._kick.wait()
        spacing = self._last_read + self._read_interval - time.monotonic()
        if spacing > 0:  # let writes that land meanwhile join this read
            await anyio.sleep(spacing)
        self._kick = anyio.Event()
        self._read_soon = False

    async def _read_once(self, conn: asyncpg.Connection) -> None:
        self._last_read = time.monotonic()
        error = "timed out"
        ok = False
        # Shielded (and bounded): a subscriber cancelled while it pumps must not leave the
        # connection mid-query or the cursor half-updated.
        with anyio.CancelScope(shield=True), anyio.move_on_after(self._timeout):
            try:
                await self._read(conn)
                ok = True
            except DRIVER_ERRORS as e:
                error = str(e) or type(e).__name__
        if not ok and not self._closed and self._conn is conn:
            log.warning(
                "reading resource changes failed; reconnecting",
                target=self._settings.target,
                error=error,
            )
            self._drop(conn)

    async def _read(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now - self._last_ok > self._retention / 2:
            # Rows we never read may have been pruned by now: say so, start afresh.
            log.warning(
                "change feed was not read for too long; subscribers resync",
                seconds=round(now - self._last_ok),
            )
            self._cursor = await self._restart_cursor(conn)
            self._last_ok = now
            self._bus.publish(Resync("change events were not read for too long"))
            return
        cursor = self._cursor
        high, holes = cursor.query()
        rows = await conn.fetch(_READ, high, holes, self._batch)
        publish, skipped = cursor.accept([row[0] for row in rows], now)
        if skipped:
            log.warning("change ids jumped; subscribers resync", skipped=skipped)
            self._bus.publish(Resync(f"{skipped} change ids were skipped"))
        bus = self._bus
        for change_id, op, rtype, mesh, name in rows:
            if change_id not in publish:
                continue
            change_op = _OPS.get(op)
            if change_op is None:
                log.warning("ignoring a change row with an unknown op", id=change_id, op=op)
                continue
            bus.publish(ChangeEvent(change_op, rtype, mesh, name))
        self._read_soon = len(rows) >= self._batch
        if cursor.wants_writers(now) and now - self._last_writers_check >= self._settle_after:
            self._last_writers_check = now
            writers: list[str] = await conn.fetchval(_WRITERS)
            if cursor.observe_writers(frozenset(writers), time.monotonic()):
                self._read_soon = True
        self._last_ok = now

    async def _restart_cursor(self, conn: asyncpg.Connection) -> ChangeCursor:
        """Position after the newest change id drawn; ids just below it whose transactions
        are still running are awaited (their commits come after this point)."""
        last = int(await conn.fetchval(_LAST_ID))
        writers = frozenset(await conn.fetchval(_WRITERS))
        now = time.monotonic()
        if not writers:  # nothing is committing: every id drawn so far is final
            return ChangeCursor(last, now=now, settle_after=self._settle_after)
        first = max(0, last - _START_TAIL)
        visible = set(await conn.fetchval(_IDS_BETWEEN, first, last))
        missing = [i for i in range(first + 1, last + 1) if i not in visible]
        return ChangeCursor(
            last, now=now, holes=missing, writers=writers, settle_after=self._settle_after
        )

    async def _open(self) -> None:
        conn = await self._settings.connect(application_name="kuma-cp change listener")
        try:
            with anyio.fail_after(self._timeout):
                await conn.execute(_READER_SETTINGS)
                await conn.add_listener(WAKE_CHANNEL, self._on_wake)
                cursor = await self._restart_cursor(conn)
        except DRIVER_ERRORS as e:
            conn.terminate()
            raise StoreError(
                f"PostgreSQL {self._settings.target}: cannot follow {CHANGES_TABLE}: {e}"
            ) from e
        except BaseException:
            conn.terminate()
            raise
        if self._closed:  # close() ran while we were connecting
            conn.terminate()
            return
        conn.add_termination_listener(self._on_termination)
        self._conn = conn
        self._cursor = cursor
        self._last_ok = time.monotonic()
        self._last_writers_check = -math.inf
        self._read_soon = bool(cursor.holes)

    async def _reconnect(self) -> None:
        now = time.monotonic()
        if now < self._retry_at:
            with anyio.move_on_after(self._retry_at - now):
                await self._closing.wait()
            return
        try:
            await self._open()
        except StoreError as e:
            log.warning(
                "cannot reconnect change-event listener", error=str(e), retry_in=self._delay
            )
            self._retry_at = time.monotonic() + self._delay
            self._delay = min(self._delay * 2, self._reconnect_max)
            return
        if self._conn is None:
            return
        self._delay = self._reconnect_min
        self.reconnects += 1
        log.info("change-event listener reconnected", target=self._settings.target)
        self._bus.publish(Resync("change-event connection to PostgreSQL was re-established"))

    def _drop(self, conn: asyncpg.Connection) -> None:
        conn.remove_termination_listener(self._on_termination)
        conn.terminate()
        if self._conn is conn:
            self._conn = None
            self._retry_at = 0.0
            self._kick.set()

    def _on_wake(self, _conn: asyncpg.Connection, _pid: int, _channel: str, payload: str) -> None:
        if payload != self.instance_id:
            self._kick.set()

    def _on_termination(self, conn: asyncpg.Connection) -> None:
        if conn is not self._conn or self._closed:
            return
        log.warning("change-event connection to PostgreSQL lost", target=self._settings.target)
        self._conn = None
        self._retry_at = 0.0
        self._kick.set()

    # -- waker and pruning (run() only) ---------------------------------------------------------

    async def _wake_loop(self) -> None:
        while True:
            await self._wake_wanted.wait()
            self._wake_wanted = anyio.Event()
            try:
                with anyio.fail_after(self._timeout):
                    await self._pool.execute(_WAKE, WAKE_CHANNEL, self.instance_id)
                self.wakes_sent += 1
            except _BACKGROUND_ERRORS as e:
                # The others still see the change on their next poll.
                log.debug("could not send a change wake-up", error=str(e))
            await anyio.sleep(self._wake_interval)

    async def _prune_loop(self) -> None:
        interval = min(10.0, self._retention / 10)
        samples: deque[tuple[float, int, list[int]]] = deque()
        while True:
            await anyio.sleep(interval)
            if self._conn is None:
                continue
            now = time.monotonic()
            samples.append((now, self._cursor.high, self._cursor.holes))
            chosen = None
            while samples and samples[0][0] <= now - self._retention:
                chosen = samples.popleft()
            if chosen is None:
                continue
            _, high, holes = chosen
            try:
                with anyio.fail_after(max(self._timeout, 30.0)):
                    self.pruned += await self._pool.run(partial(_prune, high=high, holes=holes))
            except _BACKGROUND_ERRORS as e:
                log.warning("could not prune old change rows", error=str(e))


class _FeedSubscription(Subscription):
    """A subscription that, while nobody runs the feed, drives it from `receive()`."""

    def __init__(self, feed: ChangeFeed, bus: EventBus, max_buffer: int) -> None:
        super().__init__(bus, max_buffer)
        self._feed = feed
        self._ended = False

    async def receive(self) -> ChangeEvent | Resync:
        feed = self._feed
        while not self._ended and not self.pending() and feed._needs_pump:
            await feed.pump()
        return await super().receive()

    def close(self) -> None:
        self._ended = True
        super().close()
