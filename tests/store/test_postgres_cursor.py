"""ChangeCursor: the bookkeeping that turns reads of `resource_changes` into each change exactly
once, whatever order transactions commit in (sans-IO: the reads are played by hand)."""

from __future__ import annotations

from kuma.store.postgres import ChangeCursor


def read(cursor: ChangeCursor, visible: set[int], now: float) -> list[int]:
    """What the feed's query returns for `visible` committed ids, and what it would publish."""
    high, holes = cursor.query()
    ids = sorted(i for i in visible if i > high or i in holes)
    publish, skipped = cursor.accept(ids, now)
    assert skipped == 0
    return sorted(publish)


def test_in_order_commits_are_published_once_each() -> None:
    cursor = ChangeCursor(10)
    assert read(cursor, {9, 10, 11, 12}, now=0) == [11, 12]  # at or below the start: not ours
    assert read(cursor, {9, 10, 11, 12}, now=0) == []
    assert read(cursor, {11, 12, 13}, now=0) == [13]
    assert (cursor.high, cursor.holes, cursor.low) == (13, [], 13)


def test_an_id_committed_late_is_a_hole_until_it_appears() -> None:
    cursor = ChangeCursor(0)
    assert read(cursor, {1, 3, 4}, now=0) == [1, 3, 4]
    assert cursor.holes == [2]
    assert cursor.low == 1
    assert read(cursor, {1, 3, 4}, now=0.01) == []
    assert read(cursor, {1, 2, 3, 4, 5}, now=0.02) == [2, 5]
    assert (cursor.holes, cursor.low) == ([], 5)
    assert read(cursor, {1, 2, 3, 4, 5}, now=0.03) == []


def test_a_hole_is_kept_while_a_writer_that_may_fill_it_runs() -> None:
    cursor = ChangeCursor(0, settle_after=0.1)
    read(cursor, {2}, now=0)
    assert not cursor.wants_writers(now=0.05)  # young holes are simply re-read
    assert cursor.wants_writers(now=0.1)
    assert not cursor.observe_writers(frozenset({"3/7", "4/9"}), now=0.1)
    # however long it takes, as long as one of those writers still runs, the hole stays
    for t in range(1, 50):
        assert read(cursor, {2}, now=t) == []
        assert not cursor.observe_writers(frozenset({"4/9", "5/1"}), now=t)
    assert cursor.holes == [1]
    assert read(cursor, {1, 2}, now=60) == [1]  # the slow commit is published
    assert cursor.holes == []


def test_a_hole_whose_writers_all_ended_gets_one_final_read() -> None:
    cursor = ChangeCursor(0, settle_after=0.1)
    read(cursor, {2}, now=0)
    assert not cursor.observe_writers(frozenset({"3/7"}), now=0.2)
    assert cursor.observe_writers(frozenset({"5/1"}), now=0.3)  # 3/7 ended: settled
    assert not cursor.wants_writers(now=0.4)
    assert cursor.holes == [1]
    assert read(cursor, {2}, now=0.4) == []  # the final read: still missing, rolled back
    assert cursor.holes == []
    assert read(cursor, {2, 3}, now=0.5) == [3]


def test_a_settled_hole_that_committed_meanwhile_is_published() -> None:
    cursor = ChangeCursor(0, settle_after=0.1)
    read(cursor, {2}, now=0)
    assert cursor.observe_writers(frozenset(), now=0.2)  # nobody writing: settled at once
    assert read(cursor, {1, 2}, now=0.3) == [1]


def test_holes_noticed_later_wait_for_their_own_writers() -> None:
    cursor = ChangeCursor(0, settle_after=0.1)
    read(cursor, {2}, now=0)  # hole 1
    cursor.observe_writers(frozenset({"a"}), now=0.2)
    read(cursor, {2, 4}, now=0.25)  # hole 3, young
    assert cursor.observe_writers(frozenset({"b"}), now=0.3)  # 1 settles; 3 is too young
    assert read(cursor, {2, 4}, now=0.35) == []
    assert cursor.holes == [3]
    assert not cursor.observe_writers(frozenset({"b"}), now=0.4)  # 3 now waits for b
    assert cursor.observe_writers(frozenset(), now=0.5)
    assert read(cursor, {2, 4}, now=0.6) == []
    assert cursor.holes == []


def test_a_start_with_writers_running_awaits_the_ids_they_may_commit() -> None:
    cursor = ChangeCursor(10, holes=[8, 9, 11], writers=frozenset({"w"}))
    assert cursor.holes == [8, 9]  # ids above the start are simply new
    assert read(cursor, {9, 10, 11}, now=0) == [9, 11]
    assert cursor.wants_writers(now=0)  # their writers are known already
    assert cursor.observe_writers(frozenset({"x"}), now=0)
    assert read(cursor, {9, 10, 11}, now=0) == []
    assert cursor.holes == []


def test_a_jump_larger_than_max_gap_is_reported_not_tracked() -> None:
    cursor = ChangeCursor(5, max_gap=100)
    publish, skipped = cursor.accept([7, 1_000_000], now=0)
    assert publish == {7, 1_000_000}
    assert skipped == 1_000_000 - 7 - 1
    assert cursor.holes == [6]
    assert cursor.high == 1_000_000


def test_oldest_hole_is_the_first_noticed() -> None:
    cursor = ChangeCursor(0)
    assert cursor.oldest_hole() is None
    read(cursor, {2}, now=1.0)
    read(cursor, {2, 4}, now=2.0)
    assert cursor.oldest_hole() == 1.0
