"""The MADS server (kuma-cp port 5676): monitoring assignments for Prometheus, over grpclib.

    server = MadsServer(manager)
    port = await task_group.start(partial(server.run, host="0.0.0.0", port=5676))

Service `kuma.observability.v1alpha1.MonitoringAssignmentDiscoveryService`, speaking the xDS v3
DiscoveryRequest/DiscoveryResponse messages (Kuma 0.7.3 declares the v2 ones; the fields MADS
uses have the same numbers in both, so the bytes on the wire are the same):

* `StreamMonitoringAssignments`: state of the world. Every client gets the same assignment set
  (the client's `node.id` only names it in logs). The set is pushed whenever a Mesh or Dataplane
  change alters it; versions are content hashes; one response is in flight per stream, NACKed
  versions are offered again after a backoff (`kuma.mads.stream`). The response bytes are built
  once per change and shared: each stream only appends its nonce.
* `FetchMonitoringAssignments`: the current set, once. A request already at the current version
  fails with UNKNOWN "skip fetch: version up to date" (go-control-plane's answer).
* `DeltaMonitoringAssignments`: UNIMPLEMENTED.
"""

from __future__ import annotations

import itertools
import socket
import ssl as _ssl
from collections import deque
from typing import Any

import anyio
import anyio.abc
import structlog
from envoy.service.discovery.v3 import discovery_pb2
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from h2.exceptions import ProtocolError as H2ProtocolError

from kuma.mads.generator import MONITORING_ASSIGNMENT_TYPE
from kuma.mads.index import AssignmentIndex, AssignmentSet, NameExtensions, no_extensions
from kuma.mads.stream import (
    Acked,
    Action,
    AssignmentsChanged,
    ErrorDetail,
    Event,
    Ignored,
    MadsStreamState,
    Rejected,
    RequestReceived,
    ScheduleRetry,
    SendResponse,
    TimerFired,
)
from kuma.manager import ResourceManager
from kuma.xds.server.grpc import serve_grpc

__all__ = [
    "MADS_DELTA_METHOD",
    "MADS_FETCH_METHOD",
    "MADS_SERVICE",
    "MADS_STREAM_METHOD",
    "EncodedResponse",
    "MadsServer",
    "MadsStream",
]

MADS_SERVICE = "kuma.observability.v1alpha1.MonitoringAssignmentDiscoveryService"
MADS_STREAM_METHOD = f"/{MADS_SERVICE}/StreamMonitoringAssignments"
MADS_FETCH_METHOD = f"/{MADS_SERVICE}/FetchMonitoringAssignments"
MADS_DELTA_METHOD = f"/{MADS_SERVICE}/DeltaMonitoringAssignments"

DiscoveryRequest: Any = discovery_pb2.DiscoveryRequest
DiscoveryResponse: Any = discovery_pb2.DiscoveryResponse

log = structlog.get_logger("kuma.mads")

_MAX_QUEUED_REQUESTS = 16


class EncodedResponse:
    """A DiscoveryResponse already serialised; grpclib's codec sends `SerializeToString()`."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:
        return self.data

    @classmethod
    def FromString(cls, data: bytes) -> EncodedResponse:
        return cls(data)


def _with_nonce(assignments: AssignmentSet, nonce: str, instance_id: str) -> EncodedResponse:
    tail = DiscoveryResponse(nonce=nonce)
    if instance_id:
        tail.control_plane.identifier = instance_id
    return EncodedResponse(assignments.body + tail.SerializeToString())


class MadsStream:
    """One open MADS stream (read-only, for diagnostics and tests)."""

    def __init__(self, stream_id: int, node_id: str, state: MadsStreamState) -> None:
        self.id = stream_id
        self.node_id = node_id
        self.state = state
        self.responses_sent = 0
        self.acks = 0
        self.nacks = 0
        self.last_rejection: str | None = None

    def __repr__(self) -> str:
        return f"<MadsStream {self.id} {self.node_id!r}>"


class MadsServer:
    """gRPC server of MADS (`__mapping__` is grpclib's servable protocol).

    `run` loads the assignments (`index`) and then serves; the index follows store changes for
    as long as the server runs.
    """

    def __init__(
        self,
        manager: ResourceManager,
        *,
        instance_id: str = "",
        resync_interval: float | None = None,
        name_extensions: NameExtensions = no_extensions,
        initial_backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        """
        instance_id: `control_plane.identifier` of every streamed response ("" leaves it out).
        resync_interval: seconds between safety reloads of every Mesh and Dataplane (None:
            change events only).
        name_extensions: the store's extra identity of a Dataplane, turned into labels.
        initial_backoff, max_backoff: delay before a rejected version is offered again.
        """
        self.index = AssignmentIndex(
            manager, resync_interval=resync_interval, name_extensions=name_extensions
        )
        self._instance_id = instance_id
        MadsStreamState(  # validate the backoff
            MONITORING_ASSIGNMENT_TYPE, initial_backoff=initial_backoff, max_backoff=max_backoff
        )
        self._backoff = (initial_backoff, max_backoff)
        self._ids = itertools.count(1)
        self._streams: dict[int, MadsStream] = {}

    # -- grpclib servable -----------------------------------------------------------------------

    def __mapping__(self) -> dict[str, Handler]:
        return {
            MADS_STREAM_METHOD: Handler(
                self.stream_monitoring_assignments,
                Cardinality.STREAM_STREAM,
                DiscoveryRequest,
                EncodedResponse,
            ),
            MADS_FETCH_METHOD: Handler(
                self.fetch_monitoring_assignments,
                Cardinality.UNARY_UNARY,
                DiscoveryRequest,
                EncodedResponse,
            ),
            MADS_DELTA_METHOD: Handler(
                self.delta_monitoring_assignments,
                Cardinality.STREAM_STREAM,
                discovery_pb2.DeltaDiscoveryRequest,
                discovery_pb2.DeltaDiscoveryResponse,
            ),
        }

    @property
    def streams(self) -> list[MadsStream]:
        """Open streams, oldest first."""
        return list(self._streams.values())

    # -- running --------------------------------------------------------------------------------

    async def run(
        self,
        *,
        host: str = "0.0.0.0",
        port: int = 5676,
        ssl: _ssl.SSLContext | None = None,
        sock: socket.socket | None = None,
        task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled; `task_status.started(bound_port)` once the assignments are
        loaded and the port accepts streams (port 0 picks a free one).

        `sock`: an already bound and listening socket to serve on instead of host/port.
        """
        async with anyio.create_task_group() as tg:
            await tg.start(self.index.run)
            try:
                await serve_grpc(
                    self,
                    name="MADS",
                    host=host,
                    port=port,
                    ssl=ssl,
                    sock=sock,
                    task_status=task_status,
                )
            finally:
                tg.cancel_scope.cancel()

    # -- handlers -------------------------------------------------------------------------------

    async def delta_monitoring_assignments(self, stream: Any) -> None:
        raise GRPCError(
            Status.UNIMPLEMENTED,
            "incremental (delta) MADS is not supported: use StreamMonitoringAssignments",
        )

    async def fetch_monitoring_assignments(self, stream: Any) -> None:
        request = await stream.recv_message()
        assert request is not None
        await self.index.ready.wait()
        current = self.index.current
        if request.version_info and request.version_info == current.version:
            raise GRPCError(Status.UNKNOWN, "skip fetch: version up to date")
        await stream.send_message(EncodedResponse(current.body))

    async def stream_monitoring_assignments(self, stream: Any) -> None:
        try:
            first = await stream.recv_message()
        except (StreamTerminatedError, ProtocolError, ConnectionError):
            return
        if first is None:
            return
        stream_id = next(self._ids)
        node_id = first.node.id
        slog = log.bind(stream=stream_id, node=node_id)
        initial, maximum = self._backoff
        mads = MadsStream(
            stream_id,
            node_id,
            MadsStreamState(
                MONITORING_ASSIGNMENT_TYPE, initial_backoff=initial, max_backoff=maximum
            ),
        )
        self._streams[stream_id] = mads
        slog.info("MADS stream opened", peer=str(stream.peer.addr()) if stream.peer else None)
        try:
            await _StreamRunner(self, mads, stream, slog).serve(first)
        finally:
            del self._streams[stream_id]
            slog.info(
                "MADS stream closed",
                responses_sent=mads.responses_sent,
                acks=mads.acks,
                nacks=mads.nacks,
            )


class _StreamRunner:
    """One stream: a task reading requests, a task waiting for new assignment sets, and the loop
    that feeds both (and the retry timer) to the stream's state machine and sends what it says."""

    def __init__(self, server: MadsServer, mads: MadsStream, stream: Any, slog: Any) -> None:
        self._server = server
        self._mads = mads
        self._stream = stream
        self._log = slog
        self._requests: deque[Any] = deque()
        self._changed = False
        self._latest: AssignmentSet | None = None
        self._ended = False
        self._wakeup = anyio.Event()
        self._room = anyio.Event()

    async def serve(self, first: Any) -> None:
        async with anyio.create_task_group() as tg:
            self._requests.append(first)
            tg.start_soon(self._read_requests)
            tg.start_soon(self._watch_assignments)
            await self._process()
            tg.cancel_scope.cancel()

    async def _read_requests(self) -> None:
        while True:
            try:
                request = await self._stream.recv_message()
            except (StreamTerminatedError, ProtocolError, ConnectionError) as e:
                self._log.debug("MADS stream broken", error=str(e))
                request = None
            if request is None:
                self._ended = True
                self._wakeup.set()
                return
            while len(self._requests) >= _MAX_QUEUED_REQUESTS:  # a flooding client waits
                self._room = anyio.Event()
                await self._room.wait()
            self._requests.append(request)
            self._wakeup.set()

    async def _watch_assignments(self) -> None:
        index = self._server.index
        generation = 0
        while True:
            generation = await index.wait_changed(generation)
            self._changed = True  # coalesced: the latest set is read when handled
            self._wakeup.set()

    async def _process(self) -> None:
        state = self._mads.state
        while True:
            now = anyio.current_time()
            events: list[Event] = []
            while self._requests:
                events.append(_request_event(self._requests.popleft(), now))
                self._room.set()
            if self._changed:
                self._changed = False
                self._latest = self._server.index.current
                events.append(AssignmentsChanged(self._latest.version, now))
            timer = state.next_timer
            if timer is not None and timer <= now:
                events.append(TimerFired(now))
            try:
                for event in events:
                    for action in state.handle(event):
                        await self._apply(action)
            except (StreamTerminatedError, ProtocolError, ConnectionError, H2ProtocolError) as e:
                self._log.debug("MADS stream broken while sending", error=str(e))
                return
            if self._ended:
                return
            if self._requests or self._changed:
                continue
            self._wakeup = anyio.Event()
            timer = state.next_timer
            if timer is None:
                await self._wakeup.wait()
            else:
                with anyio.move_on_after(max(0.0, timer - anyio.current_time())):
                    await self._wakeup.wait()

    async def _apply(self, action: Action) -> None:
        mads = self._mads
        if isinstance(action, SendResponse):
            current = self._latest  # the set the state machine was told about
            assert current is not None
            assert current.version == action.version
            await self._stream.send_message(
                _with_nonce(current, action.nonce, self._server._instance_id)
            )
            mads.responses_sent += 1
            self._log.debug(
                "assignments sent",
                version=action.version,
                nonce=action.nonce,
                assignments=current.count,
            )
        elif isinstance(action, Acked):
            mads.acks += 1
        elif isinstance(action, Rejected):
            mads.nacks += 1
            mads.last_rejection = action.message
            log_at = self._log.debug if action.stale else self._log.warning
            log_at(
                "monitoring assignments rejected by the client",
                version=action.version,
                nonce=action.nonce,
                code=action.code,
                error=action.message.strip(),
                stale=action.stale,
            )
        elif isinstance(action, ScheduleRetry):
            self._log.info(
                "rejected assignments will be offered again",
                after=round(action.at - anyio.current_time(), 3),
            )
        elif isinstance(action, Ignored):
            self._log.debug(
                "request ignored", type=action.type_url, nonce=action.nonce, reason=action.reason
            )


def _request_event(request: Any, now: float) -> RequestReceived:
    error = None
    if request.HasField("error_detail"):
        error = ErrorDetail(request.error_detail.code, request.error_detail.message)
    return RequestReceived(
        type_url=request.type_url,
        version_info=request.version_info,
        response_nonce=request.response_nonce,
        error_detail=error,
        now=now,
    )
