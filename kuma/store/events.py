"""Change events and the in-process bus every store publishes them on.

Consumers (the xDS mesh views, the REST API's caches later) subscribe and react to
`ChangeEvent`s. A subscriber that falls more than `max_buffer` events behind does not block
writers: its queue is dropped and it receives one `Resync` instead, meaning "reload everything
you keep".
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import TypeVar

import anyio

__all__ = ["ChangeEvent", "ChangeOp", "EventBus", "Resync", "Subscription"]


class ChangeOp(Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    op: ChangeOp
    type: str
    mesh: str
    name: str


@dataclass(frozen=True, slots=True)
class Resync:
    """The subscriber missed events (buffer overflow or a reconnect): reload state."""

    reason: str


Event = ChangeEvent | Resync
S = TypeVar("S", bound="Subscription")


class Subscription:
    """An async iterator of events; use as an async context manager to unsubscribe."""

    def __init__(self, bus: EventBus, max_buffer: int) -> None:
        self._bus = bus
        self._max = max_buffer
        self._queue: deque[Event] = deque()
        self._wakeup = anyio.Event()
        self._closed = False

    def _push(self, event: Event) -> None:
        if len(self._queue) >= self._max:
            self._queue.clear()
            self._queue.append(Resync("subscriber fell behind"))
        else:
            self._queue.append(event)
        self._wakeup.set()

    def pending(self) -> int:
        return len(self._queue)

    def drain(self) -> list[Event]:
        """Everything queued right now, without waiting."""
        items = list(self._queue)
        self._queue.clear()
        return items

    async def receive(self) -> Event:
        while not self._queue:
            if self._closed:
                raise anyio.EndOfStream
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
        return self._queue.popleft()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    def close(self) -> None:
        self._closed = True
        self._bus._remove(self)
        self._wakeup.set()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventBus:
    """Fan-out of events to subscribers; `publish` never blocks."""

    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def subscribe(self, *, max_buffer: int = 10_000) -> Subscription:
        return self.attach(Subscription(self, max_buffer))

    def attach(self, sub: S) -> S:
        """Register a Subscription (or subclass) built by the caller for this bus."""
        self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def publish(self, event: Event) -> None:
        for sub in list(self._subs):
            sub._push(event)

    def close(self) -> None:
        for sub in list(self._subs):
            sub.close()
