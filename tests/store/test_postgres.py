"""PostgreSQL store behaviour beyond the shared contract: migrations, the schema check, restarts,
several control planes on one database, change events across them, and failures (server down,
silent server, connections killed) - all against a real server, on a throwaway database."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.lowlevel
import asyncpg
import pytest

from kuma.errors import DatabaseNotMigratedError, ResourceConflictError, StoreError
from kuma.model import registry as r
from kuma.model.resource import Resource, ResourceKey, ResourceMeta
from kuma.pb.kuma.mesh import v1alpha1 as pb
from kuma.store.events import ChangeEvent, ChangeOp, Resync, Subscription
from kuma.store.postgres import (
    ConnectionPool,
    PostgresSettings,
    PostgresStore,
    latest_version,
    migrate_up,
    migrations,
    schema_status,
)

pytestmark = pytest.mark.anyio

NOT_MIGRATED = (
    'database is not migrated. Run "kuma-cp migrate up" to update database to the newest schema'
)


# -- helpers ------------------------------------------------------------------------------------


def mesh(name: str) -> Resource:
    return Resource(r.MESH, ResourceMeta(name=name))


def dataplane(name: str, mesh_name: str = "default", port: int = 8000) -> Resource:
    spec = pb.Dataplane(
        networking=pb.DataplaneNetworking(
            address="10.0.0.1",
            inbound=[pb.DataplaneNetworkingInbound(port=port, tags={"kuma.io/service": name})],
        )
    )
    return Resource(r.DATAPLANE, ResourceMeta(name=name, mesh=mesh_name), spec)


def mesh_key(name: str) -> ResourceKey:
    return ResourceKey("Mesh", "", name)


async def sql(dsn: str, statement: str, *args: object) -> object:
    """One statement on a connection of its own (what an operator would do with psql)."""
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetchval(statement, *args)
    finally:
        await conn.close()


async def next_events(sub: Subscription, count: int, seconds: float = 5) -> list[object]:
    out: list[object] = []
    with anyio.fail_after(seconds):
        while len(out) < count:
            out.append(await sub.receive())
    return out


async def next_change(sub: Subscription, seconds: float = 5) -> ChangeEvent:
    """The next ChangeEvent, skipping any Resync."""
    with anyio.fail_after(seconds):
        while True:
            event = await sub.receive()
            if isinstance(event, ChangeEvent):
                return event


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 10) -> None:
    """Poll `check` until it holds (bounded): for state without an event to wait on."""
    with anyio.move_on_after(within):
        while True:
            if await check():
                return
            await anyio.sleep(0.05)
    raise AssertionError(f"{what}: not within {within} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def dsn_port(dsn: str, port: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    netloc = parts.netloc.rsplit("@", 1)
    creds = netloc[0] + "@" if len(netloc) == 2 else ""
    return urlunsplit(
        (parts.scheme, f"{creds}127.0.0.1:{port}", parts.path, parts.query, parts.fragment)
    )


@pytest.fixture
async def migrated_db(postgres_db: str) -> str:
    await migrate_up(postgres_db)
    return postgres_db


class TcpProxy:
    """A loopback TCP relay in front of PostgreSQL that a test can cut, restore or freeze,
    to play a server that goes away, comes back, or stops answering on open connections."""

    def __init__(self, tg: anyio.abc.TaskGroup, target_host: str, target_port: int) -> None:
        self._tg = tg
        self._target = (target_host, target_port)
        self.port = 0
        self._listener_scope: anyio.CancelScope | None = None
        self._connections: set[anyio.CancelScope] = set()
        self._frozen: set[anyio.CancelScope] = set()

    async def start(self) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        scope = anyio.CancelScope()
        self._listener_scope = scope

        async def serve() -> None:
            with scope:
                async with listener:
                    await listener.serve(self._relay)

        self._tg.start_soon(serve)

    def cut(self) -> None:
        """Stop accepting and drop every relayed connection (the server is gone)."""
        if self._listener_scope is not None:
            self._listener_scope.cancel()
            self._listener_scope = None
        for scope in list(self._connections):
            scope.cancel()

    def freeze(self) -> None:
        """Open connections stop relaying bytes (but stay open); new ones work normally."""
        self._frozen |= self._connections

    async def _relay(self, client: anyio.abc.SocketStream) -> None:
        with anyio.CancelScope() as scope:
            self._connections.add(scope)
            try:
                async with client, await anyio.connect_tcp(*self._target) as upstream:

                    async def pump(src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream) -> None:
                        async for chunk in src:
                            if scope in self._frozen:
                                await anyio.sleep_forever()
                            await dst.send(chunk)
                        scope.cancel()

                    async with anyio.create_task_group() as tg:
                        tg.start_soon(pump, client, upstream)
                        tg.start_soon(pump, upstream, client)
            except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass
            finally:
                self._connections.discard(scope)
                self._frozen.discard(scope)


@asynccontextmanager
async def tcp_proxy(dsn: str) -> AsyncIterator[TcpProxy]:
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    async with anyio.create_task_group() as tg:
        proxy = TcpProxy(tg, parts.hostname or "127.0.0.1", parts.port or 5432)
        await proxy.start()
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()


# -- migrations ---------------------------------------------------------------------------------


async def test_migrations_apply_once_then_report_already_migrated(postgres_db: str) -> None:
    before = await schema_status(postgres_db)
    assert (before.version, before.migrated, before.pending) == (0, False, len(migrations()))

    first = await migrate_up(postgres_db)
    assert first.applied == tuple(m.name for m in migrations())
    assert first.applied[0] == "0001_create_resources"
    assert (first.previous_version, first.version) == (0, latest_version())
    assert not first.already_migrated

    second = await migrate_up(postgres_db)
    assert second.already_migrated
    assert second.applied == ()
    assert (second.previous_version, second.version) == (latest_version(), latest_version())

    after = await schema_status(postgres_db)
    assert (after.version, after.migrated, after.pending) == (latest_version(), True, 0)
    recorded = await sql(
        postgres_db, "SELECT string_agg(name, ',' ORDER BY version) FROM kuma_schema_migrations"
    )
    assert recorded == ",".join(m.name for m in migrations())


async def test_control_planes_migrating_together_apply_each_migration_once(
    postgres_db: str,
) -> None:
    results = []

    async def migrate() -> None:
        results.append(await migrate_up(postgres_db))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(migrate)

    assert sorted(len(x.applied) for x in results) == [0, 0, 0, len(migrations())]
    assert {x.version for x in results} == {latest_version()}
    count = await sql(postgres_db, "SELECT count(*) FROM kuma_schema_migrations")
    assert count == len(migrations())


async def test_connect_refuses_an_unmigrated_database_with_kumas_message(
    postgres_db: str,
) -> None:
    with anyio.fail_after(10), pytest.raises(DatabaseNotMigratedError) as info:
        await PostgresStore.connect(postgres_db)
    assert str(info.value) == NOT_MIGRATED
    assert isinstance(info.value, StoreError)


async def test_connect_refuses_an_older_schema_until_migrated(postgres_db: str) -> None:
    partial = await migrate_up(postgres_db, target_version=1)
    assert partial.applied == ("0001_create_resources",)
    assert (await schema_status(postgres_db)).pending == len(migrations()) - 1
    with pytest.raises(DatabaseNotMigratedError):
        await PostgresStore.connect(postgres_db)

    rest = await migrate_up(postgres_db)
    assert rest.applied == tuple(m.name for m in migrations()[1:])
    store = await PostgresStore.connect(postgres_db)
    await store.close()


async def test_a_schema_newer_than_this_kuma_is_refused(migrated_db: str) -> None:
    await sql(migrated_db, "INSERT INTO kuma_schema_migrations (version, name) VALUES (9999, 'x')")
    expected = (
        "DB is migrated to newer version than Kuma. DB migration version 9999. "
        f"Kuma migration version {latest_version()}. Run newer version of Kuma"
    )
    with pytest.raises(StoreError) as on_connect:
        await PostgresStore.connect(migrated_db)
    assert str(on_connect.value) == expected
    assert not isinstance(on_connect.value, DatabaseNotMigratedError)
    with pytest.raises(StoreError) as on_migrate:
        await migrate_up(migrated_db)
    assert str(on_migrate.value) == expected
    assert (await schema_status(migrated_db)).newer_than_code


async def test_a_failing_migration_applies_nothing(postgres_db: str) -> None:
    await sql(postgres_db, "CREATE TABLE resources (id integer)")
    with pytest.raises(StoreError) as info:
        await migrate_up(postgres_db)
    message = str(info.value)
    assert "migration 0001_create_resources failed, nothing was applied" in message
    assert 'relation "resources" already exists' in message
    assert (await schema_status(postgres_db)).version == 0


# -- persistence and several control planes -----------------------------------------------------


async def test_resources_survive_a_restart(migrated_db: str) -> None:
    store = await PostgresStore.connect(migrated_db)
    try:
        await store.create(mesh("default"))
        await store.create(dataplane("web", port=1234), owner=mesh_key("default"))
        res = await store.get(r.DATAPLANE, "web", "default")
        res.spec.networking.inbound[0].port = 4321
        await store.update(res)
    finally:
        await store.close()

    restarted = await PostgresStore.connect(migrated_db)
    try:
        got = await restarted.get(r.DATAPLANE, "web", "default")
        assert got.meta.version == res.meta.version == "2"
        assert got.meta.creation_time == res.meta.creation_time
        assert got.meta.modification_time == res.meta.modification_time
        assert got.spec.networking.inbound[0].port == 4321
        assert [m.meta.name for m in (await restarted.list(r.MESH)).items] == ["default"]
        # ownership survived too: deleting the mesh takes the dataplane with it
        await restarted.delete(r.MESH, "default")
        assert (await restarted.list(r.DATAPLANE)).total == 0
    finally:
        await restarted.close()


async def test_a_write_through_one_instance_is_an_event_in_another(migrated_db: str) -> None:
    one = await PostgresStore.connect(migrated_db)
    two = await PostgresStore.connect(migrated_db)
    try:
        async with one.subscribe() as sub_one, two.subscribe() as sub_two:
            await one.create(mesh("m"))
            await one.create(dataplane("dp", "m"), owner=mesh_key("m"))
            res = await two.get(r.DATAPLANE, "dp", "m")
            await two.update(res)
            expected = [
                ChangeEvent(ChangeOp.CREATE, "Mesh", "", "m"),
                ChangeEvent(ChangeOp.CREATE, "Dataplane", "m", "dp"),
                ChangeEvent(ChangeOp.UPDATE, "Dataplane", "m", "dp"),
            ]
            assert await next_events(sub_two, 3) == expected
            assert await next_events(sub_one, 3) == expected
    finally:
        await one.close()
        await two.close()


async def test_cascaded_deletes_are_events_in_every_instance(migrated_db: str) -> None:
    """The writer runs `run()` (it wakes other instances); the reader only connected (its
    subscriber reads the change log itself when woken)."""
    reader = await PostgresStore.connect(migrated_db)
    try:
        async with PostgresStore.open(migrated_db) as writer, reader.subscribe() as sub:
            await writer.create(mesh("m"))
            await writer.create(dataplane("dp", "m"), owner=mesh_key("m"))
            insight = Resource(r.DATAPLANE_INSIGHT, ResourceMeta(name="dp", mesh="m"))
            await writer.create(insight, owner=ResourceKey("Dataplane", "m", "dp"))
            await writer.create(mesh("other"))
            creates = await next_events(sub, 4)
            assert {e.op for e in creates} == {ChangeOp.CREATE}  # type: ignore[attr-defined]

            await writer.delete(r.MESH, "m")
            got = await next_events(sub, 3)
            assert set(got) == {
                ChangeEvent(ChangeOp.DELETE, "Mesh", "", "m"),
                ChangeEvent(ChangeOp.DELETE, "Dataplane", "m", "dp"),
                ChangeEvent(ChangeOp.DELETE, "DataplaneInsight", "m", "dp"),
            }
            # nothing else was deleted: the next event is the next write
            await writer.create(mesh("after"))
            assert await next_change(sub) == ChangeEvent(ChangeOp.CREATE, "Mesh", "", "after")
    finally:
        await reader.close()


async def test_concurrent_optimistic_updates_from_two_instances_lose_nothing(
    migrated_db: str,
) -> None:
    one = await PostgresStore.connect(migrated_db, max_connections=4)
    two = await PostgresStore.connect(migrated_db, max_connections=4)
    try:
        await one.create(mesh("default"))
        await one.create(dataplane("counter", port=1), owner=mesh_key("default"))
        writers_per_store, increments = 4, 10
        conflicts = 0

        async def writer(store: PostgresStore) -> None:
            nonlocal conflicts
            for _ in range(increments):
                while True:
                    res = await store.get(r.DATAPLANE, "counter", "default")
                    res.spec.networking.inbound[0].port += 1
                    await anyio.lowlevel.checkpoint()
                    try:
                        await store.update(res)
                        break
                    except ResourceConflictError:
                        conflicts += 1

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for store in (one, two):
                    for _ in range(writers_per_store):
                        tg.start_soon(writer, store)

        final = await two.get(r.DATAPLANE, "counter", "default")
        total = 2 * writers_per_store * increments
        assert final.spec.networking.inbound[0].port == 1 + total
        assert final.meta.version == str(1 + total)
        assert conflicts > 0
    finally:
        await one.close()
        await two.close()


async def test_reads_carry_the_stored_spec_text(migrated_db: str) -> None:
    async with PostgresStore.open(migrated_db) as store:
        await store.create(mesh("default"))
        await store.create(dataplane("dp", port=7000), owner=mesh_key("default"))
        stored = await sql(migrated_db, "SELECT spec FROM resources WHERE name = 'dp'")
        listed = (await store.list(r.DATAPLANE, "default")).items[0]
        assert listed.spec_json() == stored
        assert listed.spec_dict()["networking"]["inbound"][0]["port"] == 7000


# -- failures -----------------------------------------------------------------------------------


async def test_an_unreachable_server_is_a_clear_store_error(postgres_server: str) -> None:
    port = free_port()  # nothing listens there
    dsn = dsn_port(postgres_server, port)
    with anyio.fail_after(10):
        with pytest.raises(StoreError) as on_connect:
            await PostgresStore.connect(dsn, connect_timeout=2)
        with pytest.raises(StoreError) as on_migrate:
            await migrate_up(dsn, connect_timeout=2)
    for err in (on_connect.value, on_migrate.value):
        assert f"PostgreSQL postgres@127.0.0.1:{port}/" in str(err)
        assert "cannot connect" in str(err)
        assert not isinstance(err, DatabaseNotMigratedError)


async def test_a_server_that_never_answers_times_out(postgres_server: str) -> None:
    async def silent(client: anyio.abc.SocketStream) -> None:
        async with client:
            await anyio.sleep_forever()

    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as listener,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(listener.serve, silent)
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        with anyio.fail_after(10), pytest.raises(StoreError) as info:
            await PostgresStore.connect(dsn_port(postgres_server, port), connect_timeout=0.5)
        tg.cancel_scope.cancel()
    assert (
        str(info.value)
        == f"PostgreSQL postgres@127.0.0.1:{port}/postgres: cannot connect: timed out"
    )


async def test_a_missing_database_is_named_and_the_password_never_shown(
    postgres_server: str,
) -> None:
    with anyio.fail_after(10), pytest.raises(StoreError) as info:
        await PostgresStore.connect(
            postgres_server, database="kuma_no_such_database", password="s3cret-pw"
        )
    assert 'database "kuma_no_such_database" does not exist' in str(info.value)
    assert "s3cret-pw" not in str(info.value)


async def test_a_server_going_away_is_a_store_error_and_coming_back_heals(
    migrated_db: str,
) -> None:
    async with tcp_proxy(migrated_db) as proxy:
        dsn = dsn_port(migrated_db, proxy.port)
        async with (
            PostgresStore.open(dsn, connect_timeout=1, reconnect_min=0.05) as store,
            store.subscribe() as sub,
        ):
            await store.create(mesh("before"))
            assert await next_change(sub) == ChangeEvent(ChangeOp.CREATE, "Mesh", "", "before")
            proxy.cut()
            with anyio.fail_after(10):
                with pytest.raises(StoreError) as info:
                    await store.get(r.MESH, "before")
                assert f"127.0.0.1:{proxy.port}" in str(info.value)
                with pytest.raises(StoreError):
                    await store.create(mesh("during"))

            await proxy.start()  # same port: the server is back
            with anyio.fail_after(10):
                while True:  # the pool reconnects on demand
                    try:
                        assert (await store.get(r.MESH, "before")).meta.name == "before"
                        break
                    except StoreError:
                        await anyio.sleep(0.05)
            # the listener reconnected by itself and says events may have been missed
            with anyio.fail_after(10):
                assert isinstance(await sub.receive(), Resync)
            await store.create(mesh("after"))
            assert await next_change(sub) == ChangeEvent(ChangeOp.CREATE, "Mesh", "", "after")


async def test_listener_reconnects_after_its_backend_is_terminated(migrated_db: str) -> None:
    async with (
        PostgresStore.open(migrated_db, reconnect_min=0.05) as store,
        store.subscribe() as sub,
    ):
        old_pid = store.listener_backend_pid
        assert old_pid is not None
        assert await sql(migrated_db, "SELECT pg_terminate_backend($1)", old_pid) is True
        got = await next_events(sub, 1, seconds=10)
        assert isinstance(got[0], Resync)
        assert store.listener_backend_pid not in (None, old_pid)

        await store.create(mesh("after-reconnect"))
        assert await next_change(sub) == ChangeEvent(ChangeOp.CREATE, "Mesh", "", "after-reconnect")


async def test_listener_health_check_replaces_a_connection_that_stopped_answering(
    migrated_db: str,
) -> None:
    async with tcp_proxy(migrated_db) as proxy:
        dsn = dsn_port(migrated_db, proxy.port)
        async with (
            PostgresStore.open(
                dsn, connect_timeout=0.5, poll_interval=0.2, reconnect_min=0.05
            ) as store,
            store.subscribe() as sub,
        ):
            proxy.freeze()  # every open connection hangs; new ones work
            got = await next_events(sub, 1, seconds=10)
            assert isinstance(got[0], Resync)
            direct = await PostgresStore.connect(migrated_db)  # write around the proxy
            try:
                await direct.create(mesh("seen"))
            finally:
                await direct.close()
            assert await next_change(sub) == ChangeEvent(ChangeOp.CREATE, "Mesh", "", "seen")


async def test_backends_killed_under_the_pool_are_replaced(migrated_db: str) -> None:
    store = await PostgresStore.connect(migrated_db, min_connections=2)
    try:
        await store.create(mesh("m"))
        killed = await sql(
            migrated_db,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'kuma-cp' "
            "AND pid <> pg_backend_pid()",
        )
        assert killed >= 1  # type: ignore[operator]
        with anyio.fail_after(10):
            while True:
                try:
                    got = await store.get(r.MESH, "m")
                    break
                except StoreError:  # a query already on its way to a dead backend
                    await anyio.sleep(0.05)
        assert got.meta.name == "m"
    finally:
        await store.close()


async def test_close_ends_subscriptions_and_later_calls_fail_cleanly(migrated_db: str) -> None:
    store = await PostgresStore.connect(migrated_db)
    sub = store.subscribe()
    await store.close()
    await store.close()  # idempotent
    with anyio.fail_after(5):
        assert [e async for e in sub] == []
    with pytest.raises(StoreError):
        await store.get(r.MESH, "m")
    connections = await sql(
        migrated_db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()",
    )
    assert connections == 0


# -- the connection pool ------------------------------------------------------------------------


async def _kuma_backends(dsn: str) -> int:
    count = await sql(
        dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name = 'kuma-cp'",
    )
    assert isinstance(count, int)
    return count


async def test_pool_never_opens_more_than_max_size_connections(postgres_db: str) -> None:
    pool = ConnectionPool(PostgresSettings(postgres_db), max_size=2)
    try:
        seen: list[int] = []

        async def sleeper() -> None:
            await pool.fetchval("SELECT pg_sleep(0.3)")

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                for _ in range(5):
                    tg.start_soon(sleeper)
                await anyio.sleep(0.15)
                seen.append(await _kuma_backends(postgres_db))
                seen.append(pool.size)
        assert seen == [2, 2]
    finally:
        await pool.close()
    assert await _kuma_backends(postgres_db) == 0


async def test_pool_throws_away_a_connection_whose_query_was_cancelled(postgres_db: str) -> None:
    pool = ConnectionPool(PostgresSettings(postgres_db), max_size=1, min_size=1)
    try:
        await pool.open()
        with anyio.move_on_after(0.2) as scope:
            await pool.fetchval("SELECT pg_sleep(30)")
        assert scope.cancelled_caught
        assert pool.size == 0  # not reused in an unknown protocol state
        with anyio.fail_after(5):
            assert await pool.fetchval("SELECT 41 + 1") == 42
        # a server-side error keeps the connection: it is still healthy
        with pytest.raises(asyncpg.PostgresError):
            await pool.fetchval("SELECT 1 / 0")
        assert pool.size == 1
        assert await pool.fetchval("SELECT 2") == 2
    finally:
        await pool.close()


def role_dsn(dsn: str, role: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(dsn)
    return f"postgresql://{role}@{parts.hostname}:{parts.port or 5432}{parts.path}"


async def rows_in_change_log(dsn: str) -> int:
    count = await sql(dsn, "SELECT count(*) FROM resource_changes")
    assert isinstance(count, int)
    return count


async def test_run_needs_only_row_privileges(migrated_db: str, postgres_server: str) -> None:
    """What docs/postgres.md promises: after `migrate up`, kuma-cp runs as a user that may only
    read and write rows (events, cascades and pruning of the change log included)."""
    role = f"kuma_rw_{uuid.uuid4().hex[:8]}"
    await sql(postgres_server, f'CREATE ROLE "{role}" LOGIN')
    try:
        for grant in (
            "SELECT, INSERT, UPDATE, DELETE ON resources",
            "SELECT, INSERT, DELETE ON resource_changes",
            "USAGE, SELECT ON SEQUENCE resource_changes_id_seq",
            "SELECT ON kuma_schema_migrations",
        ):
            await sql(migrated_db, f'GRANT {grant} TO "{role}"')
        dsn = role_dsn(migrated_db, role)
        async with (
            PostgresStore.open(dsn, change_retention=0.5, poll_interval=0.1) as store,
            store.subscribe() as sub,
        ):
            await store.create(mesh("m"))
            await store.create(dataplane("dp", "m"), owner=mesh_key("m"))
            res = await store.get(r.DATAPLANE, "dp", "m")
            await store.update(res)
            await store.delete(r.MESH, "m")
            got = await next_events(sub, 5)
            assert got[:3] == [
                ChangeEvent(ChangeOp.CREATE, "Mesh", "", "m"),
                ChangeEvent(ChangeOp.CREATE, "Dataplane", "m", "dp"),
                ChangeEvent(ChangeOp.UPDATE, "Dataplane", "m", "dp"),
            ]
            assert (await store.list(r.DATAPLANE)).total == 0

            async def pruned() -> bool:
                return await rows_in_change_log(migrated_db) == 0

            await eventually(pruned, "change rows pruned under this role too")
    finally:
        await sql(migrated_db, f'DROP OWNED BY "{role}"')
        await sql(postgres_server, f'DROP ROLE IF EXISTS "{role}"')


async def test_migrating_a_version_2_database_keeps_its_data_and_its_users(
    postgres_db: str, postgres_server: str
) -> None:
    """A database a previous kuma-py migrated to version 2 and wrote to, used by a role granted
    what that version's docs asked for, moves to the change log without losing anything."""
    assert (await migrate_up(postgres_db, target_version=2)).version == 2
    role = f"kuma_rw_{uuid.uuid4().hex[:8]}"
    await sql(postgres_server, f'CREATE ROLE "{role}" LOGIN')
    try:
        await sql(postgres_db, f'GRANT SELECT, INSERT, UPDATE, DELETE ON resources TO "{role}"')
        await sql(postgres_db, f'GRANT SELECT ON kuma_schema_migrations TO "{role}"')
        insert = (
            "INSERT INTO resources (name, mesh, type, version, spec, owner_name, owner_mesh, "
            "owner_type) VALUES ($1, $2, $3, 3, $4, $5, $6, $7)"
        )
        await sql(postgres_db, insert, "m", "", "Mesh", "{}", None, None, None)
        spec = dataplane("dp", "m", port=4242).spec_json()
        await sql(postgres_db, insert, "dp", "m", "Dataplane", spec, "m", "", "Mesh")

        result = await migrate_up(postgres_db)
        assert result.applied == ("0003_resource_change_log",)
        assert (result.previous_version, result.version) == (2, 3)
        triggers = await sql(
            postgres_db,
            "SELECT string_agg(tgname, ',') FROM pg_trigger "
            "WHERE tgrelid = 'resources'::regclass AND NOT tgisinternal",
        )
        assert triggers == "resources_record_change"
        assert await sql(postgres_db, "SELECT to_regproc('kuma_notify_resource_change')") is None
        assert await rows_in_change_log(postgres_db) == 0

        async with (
            PostgresStore.open(role_dsn(postgres_db, role)) as store,
            store.subscribe() as sub,
        ):
            old = await store.get(r.DATAPLANE, "dp", "m")
            assert (old.meta.version, old.spec.networking.inbound[0].port) == ("3", 4242)
            await store.update(old)
            assert old.meta.version == "4"
            assert await next_events(sub, 1) == [
                ChangeEvent(ChangeOp.UPDATE, "Dataplane", "m", "dp")
            ]
            await store.delete(r.MESH, "m")  # the old rows' ownership cascades, with events
            assert set(await next_events(sub, 2)) == {
                ChangeEvent(ChangeOp.DELETE, "Mesh", "", "m"),
                ChangeEvent(ChangeOp.DELETE, "Dataplane", "m", "dp"),
            }
            assert (await store.list(r.DATAPLANE)).total == 0
    finally:
        await sql(postgres_db, f'DROP OWNED BY "{role}"')
        await sql(postgres_server, f'DROP ROLE IF EXISTS "{role}"')
