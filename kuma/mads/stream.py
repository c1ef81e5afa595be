"""The state of one MADS stream (state-of-the-world xDS, one resource type), sans-IO.

Events go in (`RequestReceived`, `AssignmentsChanged`, `TimerFired`), actions come out
(`SendResponse`, `Acked`, `Rejected`, `ScheduleRetry`, `Ignored`); the caller passes the time in
every event and carries the actions out. Rules:

* A request with an empty `type_url` asks for monitoring assignments (the type is implicit on a
  non-aggregated xDS stream); any other type URL is ignored.
* The current assignment set is sent when its version differs from the version the client
  reported in its latest request, and no earlier response is waiting for its ACK/NACK (one
  response in flight; when the ACK arrives the newest version follows at once).
* Nonces are unique per stream. A request whose `response_nonce` is not the latest nonce sent is
  stale: its ACK/NACK is reported (`stale=True`) but changes nothing.
* ACK = latest nonce without `error_detail`; NACK = latest nonce with it. A rejected version is
  offered again only after a backoff (`initial_backoff` doubling up to `max_backoff`; an ACK
  resets it), unless a different version becomes current first, which is sent at once.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Acked",
    "Action",
    "AssignmentsChanged",
    "ErrorDetail",
    "Event",
    "Ignored",
    "MadsStreamState",
    "Rejected",
    "RequestReceived",
    "ScheduleRetry",
    "SendResponse",
    "TimerFired",
]

_RECENT_NONCES = 8


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    code: int
    message: str


@dataclass(frozen=True, slots=True)
class RequestReceived:
    type_url: str
    version_info: str
    response_nonce: str
    error_detail: ErrorDetail | None
    now: float


@dataclass(frozen=True, slots=True)
class AssignmentsChanged:
    """The current assignment set now has `version`."""

    version: str
    now: float


@dataclass(frozen=True, slots=True)
class TimerFired:
    now: float


Event = RequestReceived | AssignmentsChanged | TimerFired


@dataclass(frozen=True, slots=True)
class SendResponse:
    """Send the assignment set of `version` (the current one) with `nonce`."""

    version: str
    nonce: str


@dataclass(frozen=True, slots=True)
class Acked:
    version: str
    nonce: str
    stale: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    version: str
    nonce: str
    code: int
    message: str
    stale: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleRetry:
    """Deliver a `TimerFired` at `at` (or later): the rejected version is offered again."""

    at: float


@dataclass(frozen=True, slots=True)
class Ignored:
    type_url: str
    nonce: str
    reason: str


Action = SendResponse | Acked | Rejected | ScheduleRetry | Ignored


class MadsStreamState:
    """State of one MADS stream. Feed events to `handle`; carry out the returned actions in order.

    `type_url` is the resource type served; `next_timer` is when a `TimerFired` is wanted.
    """

    def __init__(
        self, type_url: str, *, initial_backoff: float = 1.0, max_backoff: float = 30.0
    ) -> None:
        if initial_backoff <= 0 or max_backoff < initial_backoff:
            raise ValueError("backoff must be positive and initial_backoff <= max_backoff")
        self.type_url = type_url
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._backoff = initial_backoff
        self._current: str | None = None
        self._subscribed = False
        self._client_version = ""
        self._nonce_counter = 0
        self._nonce: str | None = None
        self._pending = False
        self._recent: dict[str, str] = {}
        self._rejected: str | None = None
        self._retry_at: float | None = None

    @property
    def next_timer(self) -> float | None:
        return self._retry_at

    @property
    def client_version(self) -> str:
        """The version the client last reported having ("" before its first ACK)."""
        return self._client_version

    @property
    def subscribed(self) -> bool:
        return self._subscribed

    def handle(self, event: Event) -> list[Action]:
        actions: list[Action] = []
        if isinstance(event, RequestReceived):
            self._on_request(event, actions)
        elif isinstance(event, AssignmentsChanged):
            self._current = event.version
            self._maybe_send(event.now, actions)
        elif isinstance(event, TimerFired):
            if self._retry_at is not None and self._retry_at <= event.now:
                self._maybe_send(event.now, actions)
        else:  # pragma: no cover - exhaustiveness guard
            raise TypeError(f"unknown event {event!r}")
        return actions

    def _on_request(self, req: RequestReceived, actions: list[Action]) -> None:
        type_url = req.type_url or self.type_url
        if type_url != self.type_url:
            actions.append(Ignored(type_url, req.response_nonce, "unsupported type"))
            return
        self._subscribed = True
        if self._nonce is not None and req.response_nonce != self._nonce:
            version = self._recent.get(req.response_nonce)
            if version is None:
                reason = "unknown nonce" if req.response_nonce else "no nonce after a response"
                actions.append(Ignored(type_url, req.response_nonce, reason))
            elif req.error_detail is None:
                actions.append(Acked(version, req.response_nonce, stale=True))
            else:
                detail = req.error_detail
                actions.append(
                    Rejected(version, req.response_nonce, detail.code, detail.message, stale=True)
                )
            return
        self._client_version = req.version_info
        nacked = False
        if self._nonce is not None:
            self._pending = False
            version = self._recent.get(self._nonce, "")
            if req.error_detail is None:
                if version == self._rejected:
                    self._rejected = None
                self._backoff = self._initial_backoff
                self._retry_at = None
                actions.append(Acked(version, self._nonce))
            else:
                self._rejected = version
                self._retry_at = req.now + self._backoff
                self._backoff = min(self._backoff * 2, self._max_backoff)
                detail = req.error_detail
                actions.append(Rejected(version, self._nonce, detail.code, detail.message))
                nacked = True
        self._maybe_send(req.now, actions)
        if nacked and self._retry_at is not None:
            actions.append(ScheduleRetry(self._retry_at))

    def _maybe_send(self, now: float, actions: list[Action]) -> None:
        current = self._current
        if current != self._rejected:
            self._retry_at = None  # nothing rejected is current: no retry to wait for
        if current is None or not self._subscribed or self._pending:
            return
        if current == self._client_version:
            return
        if current == self._rejected and self._retry_at is not None and now < self._retry_at:
            return
        self._nonce_counter += 1
        nonce = str(self._nonce_counter)
        self._nonce = nonce
        self._pending = True
        self._retry_at = None
        self._recent[nonce] = current
        if len(self._recent) > _RECENT_NONCES:
            del self._recent[next(iter(self._recent))]
        actions.append(SendResponse(current, nonce))
