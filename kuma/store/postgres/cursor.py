"""Where a reader of `resource_changes` stands: sans-IO bookkeeping of ids read and ids missing.

Change ids are drawn from a sequence when a row changes, but transactions commit in their own
order, so id 11 can be visible while id 10 is not yet (its transaction is still committing) or
never will be (it rolled back, was cancelled, or the sequence skipped it after a crash). A
reader that simply remembered "the highest id I read" would lose id 10 for good.

`ChangeCursor` keeps the highest id read (`high`) and the *holes*: ids below it not read yet.
Each read asks for `id > high OR id IN holes`, so a late commit is picked up by the next read,
and an id is handed out at most once. A hole is never given up on a timer (a commit that takes
longer than any timer - a slow disk, a synchronous standby, a transaction an operator left open
- would be lost). Instead:

1. a hole older than `settle_after` asks the reader for the *writers*: the transactions then
   holding a RowExclusiveLock on `resource_changes`. Every transaction that draws a change id
   holds that lock from before it draws the id until after its commit is visible, so the hole's
   transaction is among those writers unless it has already ended;
2. once none of those writers is still holding the lock, the hole is *settled*: its transaction
   has ended one way or the other, and the next read is final - the row is there (committed) or
   it never will be (the hole is dropped).

Unrelated long transactions elsewhere on the server do not delay this; only transactions that
wrote `resource_changes` do, and those are exactly the ones that may still deliver the row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["ChangeCursor"]


@dataclass(slots=True)
class _Hole:
    since: float
    """When the hole was noticed (the reader's monotonic clock)."""
    writers: frozenset[str] | None = None
    """Writers (virtual transaction ids) at a moment after the hole was noticed."""
    settled: bool = False
    """Every one of `writers` has ended: the next read decides."""


class ChangeCursor:
    """Read position in `resource_changes`. Pure bookkeeping: the caller does the queries.

    Protocol, per read: `query()` gives `(high, holes)` for
    `WHERE id > high OR id = ANY(holes) ORDER BY id`; feed the ids returned to `accept()`, which
    says which ones to publish. When `wants_writers()` is true, look up the writers and pass
    them to `observe_writers()`; when that returns true, read again soon (settled holes get
    their final read).
    """

    def __init__(
        self,
        high: int,
        *,
        now: float = 0.0,
        holes: Iterable[int] = (),
        writers: frozenset[str] | None = None,
        settle_after: float = 0.1,
        max_gap: int = 10_000,
    ) -> None:
        """Start after id `high`. `holes` are ids at or below it that may still appear (with
        the `writers` that may still deliver them, if known)."""
        self.high = high
        self.settle_after = settle_after
        self.max_gap = max_gap
        self._holes: dict[int, _Hole] = {}
        for hole in holes:
            if hole <= high:
                self._holes[hole] = _Hole(now, writers)
        if writers is not None:
            self._settle(writers)

    @property
    def holes(self) -> list[int]:
        """Ids below `high` still awaited, ascending."""
        return sorted(self._holes)

    def oldest_hole(self) -> float | None:
        """When the oldest hole still awaited was noticed; None without holes."""
        return min((state.since for state in self._holes.values()), default=None)

    @property
    def low(self) -> int:
        """Every id at or below this one was handed out or will never appear."""
        return min(self._holes) - 1 if self._holes else self.high

    def query(self) -> tuple[int, list[int]]:
        return self.high, self.holes

    def accept(self, ids: Sequence[int], now: float) -> tuple[set[int], int]:
        """Take the ids one read returned (ascending). Returns the ids to publish and how
        many ids were skipped because a gap above `high` exceeded `max_gap` (then the caller
        cannot know what it missed and must tell subscribers to resync)."""
        final = [hole for hole, state in self._holes.items() if state.settled]
        publish: set[int] = set()
        skipped = 0
        for change_id in ids:
            if change_id in self._holes:
                del self._holes[change_id]
                publish.add(change_id)
                continue
            if change_id <= self.high:
                continue  # already handed out (never asked for; defensive)
            gap = change_id - self.high - 1
            if gap > self.max_gap:
                skipped += gap
            else:
                for hole in range(self.high + 1, change_id):
                    self._holes[hole] = _Hole(now)
            self.high = change_id
            publish.add(change_id)
        for hole in final:  # settled before this read and still missing: rolled back
            self._holes.pop(hole, None)
        return publish, skipped

    def wants_writers(self, now: float) -> bool:
        """Some hole is old enough to ask which transactions may still deliver it."""
        return any(
            not state.settled
            and (state.writers is not None or now - state.since >= self.settle_after)
            for state in self._holes.values()
        )

    def observe_writers(self, writers: frozenset[str], now: float) -> bool:
        """The transactions holding a RowExclusiveLock on `resource_changes` right now (looked
        up after the read that last fed `accept`). Returns True when some hole became settled:
        read again soon, that read is final for it."""
        for state in self._holes.values():
            if state.writers is None and now - state.since >= self.settle_after:
                state.writers = writers
        return self._settle(writers)

    def _settle(self, current: frozenset[str]) -> bool:
        settled = False
        for state in self._holes.values():
            if state.settled or state.writers is None:
                continue
            if not (state.writers & current):
                state.settled = True
                settled = True
        return settled
