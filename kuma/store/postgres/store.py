"""PostgresStore: the ResourceStore contract on PostgreSQL (asyncpg + a change log table).

Lifecycle (structured concurrency; no task is started behind the caller's back):

    store = await PostgresStore.connect(dsn, ...)   # pool + schema check + change-feed connection
    try:
        async with anyio.create_task_group() as tg:  # the control plane's root task group
            await tg.start(store.run)               # wake-ups, reads, pruning, reconnects
            ...                                     # until shutdown cancels the group
    finally:
        await store.close()                         # closes every connection, ends subscriptions

`close()` also makes a running `run()` return, so calling it inside the group works too.

`connect()` alone is enough for reads, writes and change events: without `run()`, a
subscriber waiting in `receive()` reads the change log itself (listener.py), so it sees this
store's writes at once and other instances' writes within `poll_interval`. `run()` is what a
control plane starts: it reads the log continuously, sends the wake-ups that let other
instances see this one's writes within milliseconds, prunes old change rows and keeps the
connection healthy. `async with PostgresStore.open(...)` does all three steps for callers that
own no task group (tools, tests).

Rows keep each spec as its proto3-JSON text; reads hand it to `Resource(spec_json=...)`, so a
listing never builds protobuf messages. Every operation is one statement, one round trip on a
pooled connection (`pool.ConnectionPool`; asyncpg prepares and caches each statement per
connection), except an update that fails, which asks once more whether the row exists.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Unpack

import anyio
import anyio.abc
import asyncpg

from kuma.errors import (
    DatabaseNotMigratedError,
    ResourceAlreadyExistsError,
    ResourceConflictError,
    ResourceNotFoundError,
    StoreError,
)
from kuma.model.resource import Resource, ResourceKey, ResourceMeta, ResourceType
from kuma.store.base import ListResult, ResourceStore, now, parse_offset
from kuma.store.events import Subscription
from kuma.store.postgres.listener import ChangeFeed
from kuma.store.postgres.migrate import latest_version, newer_schema_error, read_schema_version
from kuma.store.postgres.pool import ConnectionPool
from kuma.store.postgres.settings import ConnectOptions, PostgresSettings, driver_errors

__all__ = ["DEFAULT_MAX_CONNECTIONS", "PostgresStore", "StoreOptions"]

DEFAULT_MAX_CONNECTIONS = 20
"""Pool size when `max_connections` is 0 (Kuma's "unlimited" cannot be honoured by a pool)."""

_INT4_MAX = 2**31 - 1
_OFFSET_MAX = 2**62

_INSERT = """
INSERT INTO resources (name, mesh, type, version, spec, creation_time, modification_time,
                       owner_name, owner_mesh, owner_type)
VALUES ($1, $2, $3, 1, $4, $5, $5, $6, $7, $8)
"""
_UPDATE = """
UPDATE resources SET spec = $4, version = version + 1, modification_time = $5
WHERE name = $1 AND mesh = $2 AND type = $3 AND version = $6
RETURNING version, creation_time
"""
_EXISTS = "SELECT EXISTS (SELECT 1 FROM resources WHERE name = $1 AND mesh = $2 AND type = $3)"
_DELETE = "DELETE FROM resources WHERE name = $1 AND mesh = $2 AND type = $3"
_GET = """
SELECT spec, version, creation_time, modification_time FROM resources
WHERE name = $1 AND mesh = $2 AND type = $3
"""
_COLUMNS = "name, mesh, spec, version, creation_time, modification_time, count(*) OVER ()"
_LIST_ALL = f"""
SELECT {_COLUMNS} FROM resources WHERE type = $1
ORDER BY name, mesh LIMIT $2 OFFSET $3
"""
_LIST_MESH = f"""
SELECT {_COLUMNS} FROM resources WHERE type = $1 AND mesh = $4
ORDER BY name, mesh LIMIT $2 OFFSET $3
"""
_COUNT_ALL = "SELECT count(*) FROM resources WHERE type = $1"
_COUNT_MESH = "SELECT count(*) FROM resources WHERE type = $1 AND mesh = $2"


class StoreOptions(ConnectOptions, total=False):
    """Keyword arguments of `PostgresStore.connect` besides the DSN."""

    max_connections: int
    min_connections: int
    reconnect_min: float
    reconnect_max: float
    poll_interval: float
    change_retention: float


def _version_number(version: str) -> int | None:
    if not version.isdigit():
        return None
    number = int(version)
    return number if number <= _INT4_MAX else None


class PostgresStore(ResourceStore):
    """Resources in PostgreSQL; see the module docstring for the lifecycle."""

    def __init__(
        self,
        settings: PostgresSettings,
        pool: ConnectionPool,
        feed: ChangeFeed,
    ) -> None:
        """Use `connect()`."""
        self.settings = settings
        self._pool = pool
        self._feed = feed
        self._closed = False

    @classmethod
    async def connect(
        cls,
        dsn: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
        connect_timeout: float = 5.0,
        max_connections: int = 0,
        min_connections: int = 1,
        tls_mode: str = "disable",
        tls_cert_path: str | None = None,
        tls_key_path: str | None = None,
        tls_ca_path: str | None = None,
        reconnect_min: float = 0.5,
        reconnect_max: float = 30.0,
        poll_interval: float = 1.0,
        change_retention: float = 600.0,
    ) -> PostgresStore:
        """Open the pool and the change feed's connection, after checking the schema version.

        Kuma's keys: `store.postgres.{host, port, user, password, dbName (database),
        connectionTimeout (connect_timeout, seconds), maxOpenConnections (max_connections),
        tls.{mode, certPath, keyPath, caPath}}`. `max_connections=0` means
        DEFAULT_MAX_CONNECTIONS. `reconnect_*` bound the change feed's reconnect backoff,
        `poll_interval` is how often it reads the change log without being woken (which also
        checks its connection), and `change_retention` how long change rows are kept after
        being read (seconds; every instance on a database should use the same value).

        Raises DatabaseNotMigratedError when the schema is missing or older than this kuma-py
        needs, and StoreError when the server cannot be reached or the schema is newer.
        """
        settings = PostgresSettings(
            dsn,
            host=host,
            port=port,
            user=user,
            password=password,
            database=database,
            connect_timeout=connect_timeout,
            tls_mode=tls_mode,
            tls_cert_path=tls_cert_path,
            tls_key_path=tls_key_path,
            tls_ca_path=tls_ca_path,
        )
        if max_connections < 0 or min_connections < 0:
            raise StoreError("PostgreSQL pool sizes cannot be negative")
        max_size = max_connections or DEFAULT_MAX_CONNECTIONS
        min_size = min(min_connections, max_size)
        pool = ConnectionPool(settings, max_size=max_size, min_size=min_size)
        feed = ChangeFeed(
            settings,
            pool,
            reconnect_min=reconnect_min,
            reconnect_max=reconnect_max,
            poll_interval=poll_interval,
            retention=change_retention,
        )
        try:
            await pool.open()
            with driver_errors(settings, "read schema version"):
                version = await pool.run(read_schema_version)
            if version < latest_version():
                raise DatabaseNotMigratedError()
            if version > latest_version():
                raise newer_schema_error(version)
            await feed.start()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await feed.close()
                await pool.close()
            raise
        return cls(settings, pool, feed)

    @classmethod
    @asynccontextmanager
    async def open(
        cls, dsn: str | None = None, **options: Unpack[StoreOptions]
    ) -> AsyncIterator[PostgresStore]:
        """`connect()`, `run()` in a task group of its own, and `close()` on the way out."""
        store = await cls.connect(dsn, **options)
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(store.run)
                try:
                    yield store
                finally:
                    await store.close()  # makes run() return, so the task group can exit
        finally:
            await store.close()  # idempotent: covers a failure before the task group

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow the change log, wake other instances after writes, prune old change rows and
        reconnect when needed, until `close()`; start it in the root task group."""
        await self._feed.run(task_status=task_status)

    async def close(self) -> None:
        """Stop `run()`, close the change feed's connection and the pool, end every
        subscription.

        Idempotent; shielded from cancellation and bounded in time, so it is safe in `finally`.
        """
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._feed.close()
            await self._pool.close()

    # -- diagnostics ----------------------------------------------------------------------------

    @property
    def listener_backend_pid(self) -> int | None:
        """Server process id of the change feed's connection (None while it is down)."""
        return self._feed.backend_pid

    @property
    def listener_connected(self) -> bool:
        return self._feed.connected

    @property
    def change_feed(self) -> ChangeFeed:
        """The reader of the change log (position, pending ids, counters)."""
        return self._feed

    # -- writes ---------------------------------------------------------------------------------

    async def create(self, resource: Resource, *, owner: ResourceKey | None = None) -> None:
        meta = resource.meta
        rtype = resource.type.name
        spec = resource.spec_json()
        ts = now()
        owner_args = (owner.name, owner.mesh, owner.type) if owner is not None else (None,) * 3
        with driver_errors(self.settings, f"create {rtype} {meta.mesh}/{meta.name}"):
            try:
                await self._pool.execute(
                    _INSERT, meta.name, meta.mesh, rtype, spec, ts, *owner_args
                )
            except asyncpg.UniqueViolationError:
                raise ResourceAlreadyExistsError(rtype, meta.name, meta.mesh) from None
            except asyncpg.ForeignKeyViolationError:
                if owner is None:
                    raise
                raise ResourceNotFoundError(owner.type, owner.name, owner.mesh) from None
        self._feed.wrote()
        meta.version = "1"
        meta.creation_time = ts
        meta.modification_time = ts

    async def update(self, resource: Resource) -> None:
        meta = resource.meta
        rtype = resource.type.name
        spec = resource.spec_json()
        ts = now()
        expected = _version_number(meta.version)
        with driver_errors(self.settings, f"update {rtype} {meta.mesh}/{meta.name}"):
            row = None
            if expected is not None:
                row = await self._pool.fetchrow(
                    _UPDATE, meta.name, meta.mesh, rtype, spec, ts, expected
                )
            # No row: either someone else changed it since it was read, or it is gone.
            exists = row is not None or await self._pool.fetchval(
                _EXISTS, meta.name, meta.mesh, rtype
            )
        if not exists:
            raise ResourceNotFoundError(rtype, meta.name, meta.mesh)
        if row is None:
            raise ResourceConflictError(rtype, meta.name, meta.mesh)
        self._feed.wrote()
        meta.version = str(row[0])
        meta.creation_time = row[1]
        meta.modification_time = ts

    async def delete(self, rtype: ResourceType, name: str, mesh: str = "") -> None:
        with driver_errors(self.settings, f"delete {rtype.name} {mesh}/{name}"):
            status = await self._pool.execute(_DELETE, name, mesh, rtype.name)
        if status == "DELETE 0":
            raise ResourceNotFoundError(rtype.name, name, mesh)
        self._feed.wrote()

    # -- reads ----------------------------------------------------------------------------------

    async def get(self, rtype: ResourceType, name: str, mesh: str = "") -> Resource:
        with driver_errors(self.settings, f"get {rtype.name} {mesh}/{name}"):
            row = await self._pool.fetchrow(_GET, name, mesh, rtype.name)
        if row is None:
            raise ResourceNotFoundError(rtype.name, name, mesh)
        spec, version, created, modified = row
        meta = ResourceMeta(name, mesh, str(version), created, modified)
        return Resource(rtype, meta, spec_json=spec if spec is not None else "{}")

    async def list(
        self,
        rtype: ResourceType,
        mesh: str | None = None,
        *,
        size: int | None = None,
        offset: str | None = None,
    ) -> ListResult:
        start = min(parse_offset(offset), _OFFSET_MAX)
        limit = size or None  # LIMIT NULL is LIMIT ALL
        with driver_errors(self.settings, f"list {rtype.name}"):
            if mesh is None:
                rows = await self._pool.fetch(_LIST_ALL, rtype.name, limit, start)
            else:
                rows = await self._pool.fetch(_LIST_MESH, rtype.name, limit, start, mesh)
            if rows:
                total = int(rows[0][6])
            elif start == 0:
                total = 0
            elif mesh is None:
                total = int(await self._pool.fetchval(_COUNT_ALL, rtype.name))
            else:
                total = int(await self._pool.fetchval(_COUNT_MESH, rtype.name, mesh))
        items = [
            Resource(
                rtype,
                ResourceMeta(r[0], r[1], str(r[3]), r[4], r[5]),
                spec_json=r[2] if r[2] is not None else "{}",
            )
            for r in rows
        ]
        end = start + len(items)
        next_offset = str(end) if size and end < total else None
        return ListResult(items, total, next_offset)

    def subscribe(self, *, max_buffer: int = 10_000) -> Subscription:
        return self._feed.subscribe(max_buffer=max_buffer)
