"""Change events on PostgreSQL: the `resource_changes` log, wake-ups between instances, polling
for writers that send none, commits out of order, pruning, and who drives the reader (`run()`,
or a subscriber waiting in `receive()`). Real server, throwaway database per test."""

from __future__ import annotations

import anyio
import asyncpg
import pytest

from kuma.model import registry as r
from kuma.store.events import ChangeEvent, ChangeOp, Resync, Subscription
from kuma.store.postgres import PostgresStore, migrate_up
from tests.store.test_postgres import (
    dataplane,
    eventually,
    mesh,
    mesh_key,
    next_change,
    next_events,
    rows_in_change_log,
    sql,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def migrated_db(postgres_db: str) -> str:
    await migrate_up(postgres_db)
    return postgres_db


UPDATE_A = ChangeEvent(ChangeOp.UPDATE, "Dataplane", "m", "a")
UPDATE_B = ChangeEvent(ChangeOp.UPDATE, "Dataplane", "m", "b")


async def nothing_more(sub: Subscription, seconds: float = 0.3) -> bool:
    """True when no event arrives within `seconds` (used only after a bounded wait elsewhere
    proved events do flow)."""
    with anyio.move_on_after(seconds):
        await sub.receive()
        return False
    return True


async def two_dataplanes(store: PostgresStore, sub: Subscription) -> None:
    await store.create(mesh("m"))
    await store.create(dataplane("a", "m"), owner=mesh_key("m"))
    await store.create(dataplane("b", "m", port=9000), owner=mesh_key("m"))
    assert len(await next_events(sub, 3)) == 3


async def begin_update_of_a(dsn: str) -> tuple[asyncpg.Connection, asyncpg.transaction.Transaction]:
    """An operator's session: BEGIN; UPDATE dataplane a (draws a change id); not committed."""
    conn = await asyncpg.connect(dsn, timeout=5)
    tx = conn.transaction()
    await tx.start()
    status = await conn.execute(
        "UPDATE resources SET version = version + 1 "
        "WHERE name = 'a' AND mesh = 'm' AND type = 'Dataplane'"
    )
    assert status == "UPDATE 1"
    return conn, tx


async def update_b(store: PostgresStore) -> None:
    res = await store.get(r.DATAPLANE, "b", "m")
    await store.update(res)


# -- commits out of order -----------------------------------------------------------------------


async def test_a_change_committed_after_a_later_one_is_delivered_once(migrated_db: str) -> None:
    async with (
        PostgresStore.open(migrated_db) as writer,
        PostgresStore.open(migrated_db) as reader,
        reader.subscribe() as sub,
    ):
        await two_dataplanes(writer, sub)
        conn, tx = await begin_update_of_a(migrated_db)  # draws id N
        try:
            await update_b(writer)  # draws N+1 and commits first
            assert await next_events(sub, 1) == [UPDATE_B]
            feed = reader.change_feed
            assert feed.pending_ids == [feed.position - 1]  # N is awaited
            # Longer than any timer of the feed: an open transaction is waited for, not given up.
            await anyio.sleep(1.5)
            assert sub.pending() == 0
            assert feed.pending_ids == [feed.position - 1]
            await tx.commit()
        finally:
            await conn.close()
        assert await next_events(sub, 1) == [UPDATE_A]
        assert reader.change_feed.pending_ids == []
        await writer.create(mesh("after"))  # nothing was published twice in between
        assert await next_events(sub, 1) == [ChangeEvent(ChangeOp.CREATE, "Mesh", "", "after")]


async def test_a_rolled_back_change_is_never_published_and_stops_being_awaited(
    migrated_db: str,
) -> None:
    async with PostgresStore.open(migrated_db) as store, store.subscribe() as sub:
        await two_dataplanes(store, sub)
        conn, tx = await begin_update_of_a(migrated_db)
        try:
            await update_b(store)
            assert await next_events(sub, 1) == [UPDATE_B]
            assert len(store.change_feed.pending_ids) == 1
            await tx.rollback()
        finally:
            await conn.close()

        async def settled() -> bool:
            return store.change_feed.pending_ids == []

        await eventually(settled, "the rolled-back id stops being awaited")
        await store.create(mesh("after"))
        assert await next_events(sub, 1) == [ChangeEvent(ChangeOp.CREATE, "Mesh", "", "after")]
        assert (await store.get(r.DATAPLANE, "a", "m")).meta.version == "1"


async def test_concurrent_writers_on_two_instances_deliver_every_change_once(
    migrated_db: str,
) -> None:
    async with (
        PostgresStore.open(migrated_db, max_connections=8) as one,
        PostgresStore.open(migrated_db, max_connections=8) as two,
        PostgresStore.open(migrated_db) as reader,
        reader.subscribe() as sub,
        one.subscribe() as sub_one,
    ):
        await one.create(mesh("m"))
        per_writer, writers = 40, 8

        async def writer(store: PostgresStore, prefix: str) -> None:
            for i in range(per_writer):
                await store.create(dataplane(f"{prefix}-{i}", "m"), owner=mesh_key("m"))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for w in range(writers):
                    tg.start_soon(writer, one if w % 2 else two, f"w{w}")
        total = 1 + writers * per_writer
        for subscription in (sub, sub_one):
            got = await next_events(subscription, total, seconds=30)
            assert len(set(got)) == total  # every change, none twice
            assert got[0] == ChangeEvent(ChangeOp.CREATE, "Mesh", "", "m")
            assert {e.op for e in got} == {ChangeOp.CREATE}  # type: ignore[attr-defined]
            assert await nothing_more(subscription)


# -- how other instances hear about changes -----------------------------------------------------


async def test_a_wake_up_carries_changes_to_another_instance_without_waiting_for_a_poll(
    migrated_db: str,
) -> None:
    async with (
        PostgresStore.open(migrated_db) as writer,
        PostgresStore.open(migrated_db, poll_interval=60) as reader,
        reader.subscribe() as sub,
    ):
        await anyio.sleep(0.1)  # the reader's first poll is behind it: only a wake-up is left
        await writer.create(mesh("woken"))
        got = await next_events(sub, 1, seconds=5)
        assert got == [ChangeEvent(ChangeOp.CREATE, "Mesh", "", "woken")]
        assert writer.change_feed.wakes_sent >= 1


async def test_a_burst_of_writes_sends_a_few_wake_ups_not_one_per_write(migrated_db: str) -> None:
    async with (
        PostgresStore.open(migrated_db, max_connections=8) as writer,
        PostgresStore.open(migrated_db) as reader,
        reader.subscribe() as sub,
    ):
        await writer.create(mesh("m"))
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for w in range(8):
                    for i in range(25):
                        tg.start_soon(writer.create, mesh(f"burst-{w}-{i}"))
        assert len(set(await next_events(sub, 201, seconds=20))) == 201
        assert 1 <= writer.change_feed.wakes_sent < 100


async def test_changes_made_by_hand_are_seen_by_the_poll(migrated_db: str) -> None:
    """Writers that send no wake-up (hand-written SQL, another tool) are picked up anyway."""
    async with (
        PostgresStore.open(migrated_db, poll_interval=0.2) as store,
        store.subscribe() as sub,
    ):
        await sql(
            migrated_db,
            "INSERT INTO resources (name, mesh, type, version, spec) "
            "VALUES ('by-hand', '', 'Mesh', 1, '{}')",
        )
        assert await next_events(sub, 1) == [ChangeEvent(ChangeOp.CREATE, "Mesh", "", "by-hand")]
        # a hand-written rename is the old key's delete and the new key's create
        await sql(migrated_db, "UPDATE resources SET name = 'renamed' WHERE name = 'by-hand'")
        assert await next_events(sub, 2) == [
            ChangeEvent(ChangeOp.DELETE, "Mesh", "", "by-hand"),
            ChangeEvent(ChangeOp.CREATE, "Mesh", "", "renamed"),
        ]


# -- connect() alone: subscribers drive the reader ----------------------------------------------


async def test_connect_alone_delivers_this_and_other_instances_changes(migrated_db: str) -> None:
    one = await PostgresStore.connect(migrated_db)
    two = await PostgresStore.connect(migrated_db, poll_interval=0.1)
    try:
        async with one.subscribe() as sub_one, two.subscribe() as sub_two:
            await one.create(mesh("m"))
            assert await next_events(sub_one, 1) == [ChangeEvent(ChangeOp.CREATE, "Mesh", "", "m")]
            # `one` sends no wake-up without run(): `two` sees the write on its next poll
            assert await next_events(sub_two, 1) == [ChangeEvent(ChangeOp.CREATE, "Mesh", "", "m")]
            await two.delete(r.MESH, "m")
            assert await next_events(sub_two, 1) == [ChangeEvent(ChangeOp.DELETE, "Mesh", "", "m")]
    finally:
        await one.close()
        await two.close()


async def test_several_subscribers_waiting_without_run_all_get_every_change(
    migrated_db: str,
) -> None:
    store = await PostgresStore.connect(migrated_db)
    try:
        subs = [store.subscribe() for _ in range(3)]
        got: list[list[object]] = [[] for _ in subs]

        async def consume(i: int) -> None:
            got[i] = await next_events(subs[i], 3, seconds=10)

        async with anyio.create_task_group() as tg:
            for i in range(len(subs)):
                tg.start_soon(consume, i)
            await anyio.sleep(0.05)  # all three are waiting now; one of them reads for all
            for name in ("x", "y", "z"):
                await store.create(mesh(name))
        expected = [ChangeEvent(ChangeOp.CREATE, "Mesh", "", n) for n in ("x", "y", "z")]
        assert got == [expected] * 3
        for sub in subs:
            sub.close()
    finally:
        await store.close()


async def test_a_cancelled_receive_leaves_the_reader_consistent(migrated_db: str) -> None:
    store = await PostgresStore.connect(migrated_db, poll_interval=0.05)
    try:
        async with store.subscribe() as sub:
            for _ in range(20):  # cancelled while waiting, or in the middle of a read
                with anyio.move_on_after(0.013):
                    await sub.receive()
            await store.create(mesh("after"))
            assert await next_events(sub, 1) == [ChangeEvent(ChangeOp.CREATE, "Mesh", "", "after")]
            assert store.change_feed.reconnects == 0
    finally:
        await store.close()


async def test_run_takes_over_from_a_waiting_subscriber(migrated_db: str) -> None:
    store = await PostgresStore.connect(migrated_db, poll_interval=60)
    try:
        async with (
            PostgresStore.open(migrated_db) as other,
            store.subscribe() as sub,
            anyio.create_task_group() as tg,
        ):
            received: list[object] = []
            done = anyio.Event()

            async def consume() -> None:
                received.extend(await next_events(sub, 2, seconds=10))
                done.set()

            tg.start_soon(consume)
            await anyio.sleep(0.05)  # the consumer is reading for itself now
            await tg.start(store.run)
            await other.create(mesh("one"))  # only a wake-up can bring these (poll: 60 s)
            await other.create(mesh("two"))
            with anyio.fail_after(10):
                await done.wait()
            assert received == [
                ChangeEvent(ChangeOp.CREATE, "Mesh", "", "one"),
                ChangeEvent(ChangeOp.CREATE, "Mesh", "", "two"),
            ]
            await store.close()  # run() returns, the group can end
    finally:
        await store.close()


async def test_close_ends_a_subscriber_that_is_reading_for_itself(migrated_db: str) -> None:
    store = await PostgresStore.connect(migrated_db)
    sub = store.subscribe()
    ended = anyio.Event()

    async def consume() -> None:
        async for _ in sub:
            pass
        ended.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume)
        await anyio.sleep(0.05)
        await store.close()
        with anyio.fail_after(5):
            await ended.wait()
    connections = await sql(
        migrated_db,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid()",
    )
    assert connections == 0


# -- retention ----------------------------------------------------------------------------------


async def test_change_rows_are_pruned_once_older_than_the_retention(migrated_db: str) -> None:
    async with (
        PostgresStore.open(migrated_db, change_retention=2.0, poll_interval=0.2) as store,
        store.subscribe() as sub,
    ):
        await store.create(mesh("a"))
        await store.create(mesh("b"))
        assert len(await next_events(sub, 2)) == 2
        assert await rows_in_change_log(migrated_db) == 2  # not before the retention

        async def pruned() -> bool:
            return await rows_in_change_log(migrated_db) == 0

        await eventually(pruned, "change rows pruned", within=15)
        assert store.change_feed.pruned == 2
        await store.create(mesh("c"))  # the log goes on after pruning
        assert await next_change(sub) == ChangeEvent(ChangeOp.CREATE, "Mesh", "", "c")


async def test_an_open_transaction_keeps_its_change_from_being_pruned(migrated_db: str) -> None:
    async with (
        PostgresStore.open(migrated_db, change_retention=0.5, poll_interval=0.1) as writer,
        PostgresStore.open(migrated_db, poll_interval=0.1) as reader,
        reader.subscribe() as sub,
    ):
        await two_dataplanes(writer, sub)
        conn, tx = await begin_update_of_a(migrated_db)
        try:
            await update_b(writer)
            assert await next_events(sub, 1) == [UPDATE_B]

            async def only_the_open_one_left() -> bool:
                return await rows_in_change_log(migrated_db) == 0

            await eventually(only_the_open_one_left, "committed change rows pruned")
            await tx.commit()  # committed long after its id was drawn: not pruned unread
        finally:
            await conn.close()
        assert await next_events(sub, 1) == [UPDATE_A]


async def test_a_reader_that_fell_behind_the_retention_resyncs(migrated_db: str) -> None:
    async with PostgresStore.open(migrated_db) as writer:
        lagging = await PostgresStore.connect(migrated_db, change_retention=0.4, poll_interval=0.1)
        try:
            async with lagging.subscribe() as sub:
                await writer.create(mesh("missed"))
                await anyio.sleep(0.5)  # nobody read for longer than retention / 2
                got = await next_events(sub, 1)
                assert isinstance(got[0], Resync)
                await writer.create(mesh("seen"))
                assert await next_change(sub) == ChangeEvent(ChangeOp.CREATE, "Mesh", "", "seen")
        finally:
            await lagging.close()
