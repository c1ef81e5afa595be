"""The state of one ADS stream (state-of-the-world xDS), as a sans-IO state machine.

Events go in (`RequestReceived`, `SnapshotChanged`, `TimerFired`), actions come out
(`SendResponse`, `Acked`, `Rejected`, `ScheduleRetry`, `Ignored`). Nothing here reads a clock,
touches a socket or logs: the caller passes the time in every event and carries the actions out.

Protocol rules this machine implements (one independent sub-state per type URL):

* A type is watched once Envoy sends a request for it. Its response is sent when the version
  the snapshot holds for it differs from the version Envoy reported in its latest request, and
  no earlier response of that type is still waiting for its ACK/NACK (one response in flight
  per type; when the ACK arrives the newest version follows at once).
* Nonces are unique per stream. A request whose `response_nonce` is not the latest nonce sent
  for its type is stale: its ACK/NACK is reported (`stale=True`, for counters) but it changes
  nothing, not even the requested names.
* ACK = latest nonce without `error_detail`; NACK = latest nonce with it. A rejected version is
  not sent again right away (Envoy would reject it again, in a hot loop): it is retried after a
  backoff (`initial_backoff` doubling up to `max_backoff`; an ACK resets it), unless a different
  version becomes current first, which is sent immediately.
* LDS and CDS are wildcard: a response carries every resource of the type. EDS, RDS and SDS are
  not: a response carries only the requested names that exist, and its version is a hash of
  exactly those resources (so it changes when the requested set or their content changes, and
  equals the snapshot's own version of the type when every resource is requested).
* On a snapshot change, types are answered in `core.ALL_TYPES` order (CDS, EDS, LDS, RDS, SDS).
* An EDS/RDS/SDS request repeating the ACK already processed (same nonce, same version) is Envoy
  asking again for what it has: a new watch on the same resources, typically an EDS cluster
  replaced by CDS, which stays warming (and holds back the CDS ACK) until its endpoints come
  again. It is answered with the current resources under a new nonce.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from kuma.xds.core import ALL_TYPES, ENDPOINT, ROUTE, SECRET, Snapshot, XdsResource

__all__ = [
    "DEFAULT_INITIAL_BACKOFF",
    "DEFAULT_MAX_BACKOFF",
    "NON_WILDCARD_TYPES",
    "Acked",
    "Action",
    "AdsStreamState",
    "ErrorDetail",
    "Event",
    "Ignored",
    "Rejected",
    "RequestReceived",
    "ScheduleRetry",
    "SendResponse",
    "SnapshotChanged",
    "TimerFired",
    "subset_version",
]

DEFAULT_INITIAL_BACKOFF = 1.0
DEFAULT_MAX_BACKOFF = 30.0
NON_WILDCARD_TYPES = frozenset({ENDPOINT, ROUTE, SECRET})
"""Types whose responses carry only the names Envoy asked for."""
_KNOWN_TYPES = frozenset(ALL_TYPES)
_RECENT_NONCES = 8  # per type: older nonces are still recognised for ACK/NACK counting


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """Why Envoy rejected a response (google.rpc.Status of the DiscoveryRequest)."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A DiscoveryRequest from Envoy (the node is the server's business, not the machine's)."""

    type_url: str
    version_info: str
    response_nonce: str
    resource_names: tuple[str, ...]
    error_detail: ErrorDetail | None
    now: float


@dataclass(frozen=True, slots=True)
class SnapshotChanged:
    """The proxy's desired configuration was replaced (`Snapshot.empty()` once it is deleted)."""

    snapshot: Snapshot
    now: float


@dataclass(frozen=True, slots=True)
class TimerFired:
    """The time asked for by a `ScheduleRetry` (or later) has come."""

    now: float


Event = RequestReceived | SnapshotChanged | TimerFired


# -- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendResponse:
    type_url: str
    version_info: str
    nonce: str
    resources: tuple[XdsResource, ...]


@dataclass(frozen=True, slots=True)
class Acked:
    """Envoy accepted the response with `nonce` (`version`).

    `stale` when a newer response of the type had been sent already (the ACK is counted but
    changes nothing). `delivery` is the time from this version becoming current for the stream
    to its first ACK/NACK, None for a repeated answer.
    """

    type_url: str
    version: str
    nonce: str
    stale: bool = False
    delivery: float | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """Envoy rejected the response with `nonce` (`version`); `message` is Envoy's reason."""

    type_url: str
    version: str
    nonce: str
    code: int
    message: str
    stale: bool = False
    delivery: float | None = None


@dataclass(frozen=True, slots=True)
class ScheduleRetry:
    """Deliver a `TimerFired` at `at` (or later): the rejected version of `type_url` is retried."""

    type_url: str
    at: float


@dataclass(frozen=True, slots=True)
class Ignored:
    """A request that changed nothing, and why (for debug logs)."""

    type_url: str
    nonce: str
    reason: str


Action = SendResponse | Acked | Rejected | ScheduleRetry | Ignored


# -- helpers ------------------------------------------------------------------------------------


def subset_version(resources: Mapping[str, XdsResource] | list[XdsResource]) -> str:
    """Version of a set of resources: the same recipe as `Snapshot.build` uses for a type, so a
    response carrying every resource of a type gets the snapshot's version of that type."""
    items = resources.values() if isinstance(resources, Mapping) else resources
    h = hashlib.blake2b(digest_size=8)
    for r in sorted(items, key=lambda r: r.name):
        h.update(r.name.encode())
        h.update(b"\0")
        h.update(r.digest)
    return h.hexdigest()


@dataclass(slots=True)
class _Target:
    version: str
    resources: tuple[XdsResource, ...]


@dataclass(slots=True)
class _TypeState:
    names: frozenset[str] = frozenset()
    client_version: str = ""
    """What Envoy reported having in its latest (non-stale) request."""
    nonce: str | None = None
    """Latest nonce sent for this type."""
    pending: bool = False
    """A response was sent and its ACK/NACK has not arrived."""
    recent: dict[str, str] = field(default_factory=dict)
    """nonce -> version of the latest responses (for ACK/NACK of stale nonces)."""
    rejected: str | None = None
    retry_at: float | None = None
    backoff: float = DEFAULT_INITIAL_BACKOFF
    target_key: tuple[str, frozenset[str]] | None = None
    target: _Target | None = None
    ready_version: str | None = None
    ready_since: float | None = None
    """When `ready_version` became current; None once its delivery was reported."""


class AdsStreamState:
    """State of one ADS stream. Feed events to `handle`; carry out the returned actions in
    order. `next_timer` is the earliest time a `TimerFired` is wanted (None: no timer)."""

    def __init__(
        self,
        *,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
    ) -> None:
        if initial_backoff <= 0 or max_backoff < initial_backoff:
            raise ValueError("backoff must be positive and initial_backoff <= max_backoff")
        self._initial_backoff = initial_backoff
        self._max_backoff = max_backoff
        self._snapshot: Snapshot | None = None
        self._types: dict[str, _TypeState] = {}
        self._nonce = 0

    # -- introspection (tests, diagnostics) ------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    @property
    def next_timer(self) -> float | None:
        times = [ts.retry_at for ts in self._types.values() if ts.retry_at is not None]
        return min(times) if times else None

    def watched_types(self) -> list[str]:
        return [t for t in ALL_TYPES if t in self._types]

    def acked_version(self, type_url: str) -> str:
        """The version Envoy last reported having for `type_url` ("" if none)."""
        ts = self._types.get(type_url)
        return ts.client_version if ts is not None else ""

    def requested_names(self, type_url: str) -> frozenset[str]:
        ts = self._types.get(type_url)
        return ts.names if ts is not None else frozenset()

    # -- events ---------------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        actions: list[Action] = []
        if isinstance(event, RequestReceived):
            self._on_request(event, actions)
        elif isinstance(event, SnapshotChanged):
            self._snapshot = event.snapshot
            for type_url in ALL_TYPES:
                if type_url in self._types:
                    self._maybe_send(type_url, event.now, actions)
        elif isinstance(event, TimerFired):
            for type_url in ALL_TYPES:
                ts = self._types.get(type_url)
                if ts is not None and ts.retry_at is not None and ts.retry_at <= event.now:
                    self._maybe_send(type_url, event.now, actions)
        else:  # pragma: no cover - exhaustiveness guard
            raise TypeError(f"unknown event {event!r}")
        return actions

    def _on_request(self, req: RequestReceived, actions: list[Action]) -> None:
        type_url = req.type_url
        if type_url not in _KNOWN_TYPES:
            actions.append(Ignored(type_url, req.response_nonce, "unsupported type"))
            return
        ts = self._types.get(type_url)
        if ts is None:
            ts = self._types[type_url] = _TypeState(backoff=self._initial_backoff)
        if ts.nonce is not None and req.response_nonce != ts.nonce:
            # Stale: Envoy has not seen our latest response yet. Count its answer, change nothing.
            version = ts.recent.get(req.response_nonce)
            if version is None:
                reason = "unknown nonce" if req.response_nonce else "no nonce after a response"
                actions.append(Ignored(type_url, req.response_nonce, reason))
            elif req.error_detail is None:
                actions.append(Acked(type_url, version, req.response_nonce, stale=True))
            else:
                actions.append(
                    Rejected(
                        type_url,
                        version,
                        req.response_nonce,
                        req.error_detail.code,
                        req.error_detail.message,
                        stale=True,
                    )
                )
            return
        repeat = (
            type_url in NON_WILDCARD_TYPES
            and ts.nonce is not None
            and not ts.pending
            and req.error_detail is None
            and req.version_info == ts.client_version
        )
        if type_url in NON_WILDCARD_TYPES:
            ts.names = frozenset(req.resource_names)
        ts.client_version = req.version_info
        if repeat:
            # answered already: Envoy re-subscribed (e.g. a warming cluster wants its endpoints)
            self._maybe_send(type_url, req.now, actions, force=True)
            return
        nacked = False
        if ts.nonce is not None:  # answers our latest response: ACK or NACK
            ts.pending = False
            version = ts.recent.get(ts.nonce, "")
            delivery = self._delivered(ts, version, req.now)
            if req.error_detail is None:
                if version == ts.rejected:
                    ts.rejected = None
                ts.backoff = self._initial_backoff
                ts.retry_at = None
                actions.append(Acked(type_url, version, ts.nonce, delivery=delivery))
            else:
                ts.rejected = version
                ts.retry_at = req.now + ts.backoff
                ts.backoff = min(ts.backoff * 2, self._max_backoff)
                actions.append(
                    Rejected(
                        type_url,
                        version,
                        ts.nonce,
                        req.error_detail.code,
                        req.error_detail.message,
                        delivery=delivery,
                    )
                )
                nacked = True
        self._maybe_send(type_url, req.now, actions)
        if nacked and ts.retry_at is not None:
            actions.append(ScheduleRetry(type_url, ts.retry_at))

    # -- responses ------------------------------------------------------------------------------

    @staticmethod
    def _delivered(ts: _TypeState, version: str, now: float) -> float | None:
        if ts.ready_version == version and ts.ready_since is not None:
            delivery = now - ts.ready_since
            ts.ready_since = None
            return max(delivery, 0.0)
        return None

    def _target(self, type_url: str, ts: _TypeState) -> _Target | None:
        snapshot = self._snapshot
        if snapshot is None:
            return None
        wildcard = type_url not in NON_WILDCARD_TYPES
        if not wildcard and not ts.names:
            return None  # nothing asked for (Envoy unsubscribed from every resource)
        key = (snapshot.version(type_url), frozenset() if wildcard else ts.names)
        if ts.target_key == key and ts.target is not None:
            return ts.target
        items = snapshot.of_type(type_url)
        if wildcard:
            target = _Target(key[0], tuple(items.values()))
        elif ts.names.issuperset(items):
            target = _Target(key[0], tuple(items[n] for n in sorted(items)))
        else:
            chosen = [items[n] for n in sorted(ts.names) if n in items]
            target = _Target(subset_version(chosen), tuple(chosen))
        ts.target_key, ts.target = key, target
        return target

    def _maybe_send(
        self, type_url: str, now: float, actions: list[Action], *, force: bool = False
    ) -> None:
        ts = self._types[type_url]
        target = self._target(type_url, ts)
        if target is None or target.version != ts.rejected:
            ts.retry_at = None  # nothing rejected is current: no retry to wait for
        if target is None:
            return
        if target.version != ts.ready_version:
            ts.ready_version, ts.ready_since = target.version, now
        if ts.pending or (target.version == ts.client_version and not force):
            return
        if target.version == ts.rejected and ts.retry_at is not None and now < ts.retry_at:
            return  # rejected: wait for the backoff to pass before trying it again
        self._nonce += 1
        nonce = str(self._nonce)
        ts.nonce = nonce
        ts.pending = True
        ts.retry_at = None
        ts.recent[nonce] = target.version
        if len(ts.recent) > _RECENT_NONCES:
            del ts.recent[next(iter(ts.recent))]
        actions.append(SendResponse(type_url, target.version, nonce, target.resources))
