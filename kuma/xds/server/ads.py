"""The ADS server: Envoy's Aggregated Discovery Service (state of the world) over grpclib.

    server = AdsServer(reconciler, instance_id="cp-1", insights=recorder, metrics=metrics)
    port = await task_group.start(partial(server.run, host="0.0.0.0", port=5678))

Per stream:

1. The first DiscoveryRequest names the proxy: `node.id` is `<mesh>.<name>` (a bad id ends the
   stream with INVALID_ARGUMENT), `node.metadata` becomes `DataplaneMetadata`. The optional
   authenticator hook sees the proxy id and the gRPC request metadata (where Kuma 1.0 carries
   the dataplane token as `authorization`); raising `AuthenticationError` ends the stream with
   UNAUTHENTICATED.
2. `source.connect(proxy_id, metadata)` gives a `ProxyWatch`; the stream runs three tasks in one
   task group: one reads requests, one waits for new snapshots, one feeds both (and retry
   timers) to the stream's `AdsStreamState` and carries out its actions (send responses, count
   ACK/NACKs into metrics and the DataplaneInsight, log rejections).
3. The stream ends when Envoy closes it, the connection drops, the node id changes mid-stream
   (INVALID_ARGUMENT), or the server stops.

`DeltaAggregatedResources` answers UNIMPLEMENTED: Envoy is bootstrapped for state of the world.
"""

from __future__ import annotations

import inspect
import itertools
import socket
import ssl as _ssl
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio
import anyio.abc
import structlog
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import json_format
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from h2.exceptions import ProtocolError as H2ProtocolError

from kuma.errors import TransientError
from kuma.xds.core import DataplaneMetadata, ProxyId, ProxyWatch, SnapshotSource, short_type
from kuma.xds.insights import InsightSink, StreamStatus
from kuma.xds.metrics import XdsMetrics
from kuma.xds.server.grpc import serve_grpc
from kuma.xds.server.state import (
    DEFAULT_INITIAL_BACKOFF,
    DEFAULT_MAX_BACKOFF,
    Acked,
    Action,
    AdsStreamState,
    ErrorDetail,
    Event,
    Ignored,
    Rejected,
    RequestReceived,
    ScheduleRetry,
    SendResponse,
    SnapshotChanged,
    TimerFired,
)

__all__ = [
    "ADS_DELTA_METHOD",
    "ADS_METHOD",
    "AdsServer",
    "AdsStream",
    "AuthenticationError",
    "Authenticator",
]

ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
ADS_DELTA_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"

# upb message classes (untyped for mypy: xds-protos ships no stubs)
DiscoveryRequest: Any = discovery_pb2.DiscoveryRequest
DiscoveryResponse: Any = discovery_pb2.DiscoveryResponse

Authenticator = Callable[[ProxyId, Mapping[str, str]], Awaitable[None] | None]
"""`(proxy_id, grpc_metadata) -> None`, sync or async; raise `AuthenticationError` to refuse."""

log = structlog.get_logger("kuma.xds.server")


class AuthenticationError(Exception):
    """Raised by an authenticator: the stream ends with UNAUTHENTICATED and this message."""


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_SNAPSHOT = _Marker("snapshot")  # the watch has a new snapshot
_END = _Marker("end")  # the request side ended

_Item = Any  # a DiscoveryRequest or a _Marker


def _struct_to_dict(message: Any) -> dict[str, Any]:
    converted: dict[str, Any] = json_format.MessageToDict(message)
    return converted


def _request_metadata(stream: Any) -> dict[str, str]:
    """gRPC request metadata as text headers (binary `-bin` ones left out); last value wins."""
    metadata = stream.metadata or {}
    return {k: v for k, v in metadata.items() if isinstance(v, str)}


class AdsStream:
    """One open ADS stream: its proxy and protocol state (read-only for diagnostics and tests)."""

    def __init__(
        self,
        stream_id: int,
        proxy_id: ProxyId,
        state: AdsStreamState,
        status: StreamStatus | None,
    ) -> None:
        self.id = stream_id
        self.proxy_id = proxy_id
        self.state = state
        self.status = status
        self.responses_sent = 0
        self.acks = 0
        self.nacks = 0
        self.last_rejection: str | None = None
        self.connected_at = anyio.current_time()

    def __repr__(self) -> str:
        return f"<AdsStream {self.id} {self.proxy_id}>"


class AdsServer:
    """gRPC server of ADS (`__mapping__` is grpclib's servable protocol)."""

    def __init__(
        self,
        source: SnapshotSource,
        *,
        instance_id: str,
        insights: InsightSink | None = None,
        metrics: XdsMetrics | None = None,
        authenticator: Authenticator | None = None,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
    ) -> None:
        """
        source: the reconciler (`SnapshotSource`) that keeps each connected proxy's snapshot.
        instance_id: this control plane instance (`controlPlaneInstanceId` in insights, and
            `control_plane.identifier` in every response).
        insights: where each stream's counters go (an `InsightRecorder`); None records nothing.
        metrics: `XdsMetrics` to count into; None counts nothing.
        authenticator: called once per stream before any config is served; default allows all.
        initial_backoff, max_backoff: delay before a rejected config is offered again.
        """
        self._source = source
        self._instance_id = instance_id
        self._insights = insights
        self._metrics = metrics
        self._authenticator = authenticator
        AdsStreamState(initial_backoff=initial_backoff, max_backoff=max_backoff)  # validate
        self._backoff = (initial_backoff, max_backoff)
        self._ids = itertools.count(1)
        self._streams: dict[int, AdsStream] = {}

    # -- grpclib servable -----------------------------------------------------------------------

    def __mapping__(self) -> dict[str, Handler]:
        return {
            ADS_METHOD: Handler(
                self.stream_aggregated_resources,
                Cardinality.STREAM_STREAM,
                DiscoveryRequest,
                DiscoveryResponse,
            ),
            ADS_DELTA_METHOD: Handler(
                self.delta_aggregated_resources,
                Cardinality.STREAM_STREAM,
                discovery_pb2.DeltaDiscoveryRequest,
                discovery_pb2.DeltaDiscoveryResponse,
            ),
        }

    # -- running --------------------------------------------------------------------------------

    async def run(
        self,
        *,
        host: str = "0.0.0.0",
        port: int = 5678,
        ssl: _ssl.SSLContext | None = None,
        sock: socket.socket | None = None,
        task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled; `task_status.started(bound_port)` (port 0 picks a free one).

        `sock`: an already bound and listening socket to serve on instead of host/port (kuma-cp
        binds every listener up front). `ssl` must offer ALPN `h2` (grpclib's requirement) when
        given (`xdsServer.tlsCertFile`).
        """
        await serve_grpc(
            self, name="xDS", host=host, port=port, ssl=ssl, sock=sock, task_status=task_status
        )

    @property
    def streams(self) -> list[AdsStream]:
        """Open streams, oldest first."""
        return list(self._streams.values())

    def streams_of(self, proxy_id: ProxyId) -> list[AdsStream]:
        return [s for s in self._streams.values() if s.proxy_id == proxy_id]

    # -- handlers -------------------------------------------------------------------------------

    async def delta_aggregated_resources(self, stream: Any) -> None:
        raise GRPCError(
            Status.UNIMPLEMENTED,
            "incremental (delta) xDS is not supported: use state-of-the-world ADS",
        )

    async def stream_aggregated_resources(self, stream: Any) -> None:
        try:
            first = await stream.recv_message()
        except (StreamTerminatedError, ProtocolError, ConnectionError):
            return
        if first is None:
            return
        node_id = first.node.id
        try:
            proxy_id = ProxyId.parse(node_id)
        except ValueError as e:
            raise GRPCError(Status.INVALID_ARGUMENT, f"invalid node id {node_id!r}: {e}") from None
        metadata = DataplaneMetadata.from_node_metadata(_struct_to_dict(first.node.metadata))
        stream_id = next(self._ids)
        slog = log.bind(mesh=proxy_id.mesh, dataplane=proxy_id.name, stream=stream_id)
        if self._authenticator is not None:
            await self._authenticate(proxy_id, stream, slog)

        status = self._insights.open(proxy_id, self._instance_id) if self._insights else None
        initial, maximum = self._backoff
        ads = AdsStream(
            stream_id,
            proxy_id,
            AdsStreamState(initial_backoff=initial, max_backoff=maximum),
            status,
        )
        self._streams[stream_id] = ads
        if self._metrics is not None:
            self._metrics.streams_active.inc()
        slog.info("ADS stream opened", peer=str(stream.peer.addr()) if stream.peer else None)
        try:
            async with self._source.connect(proxy_id, metadata) as watch:
                runner = _StreamRunner(self, ads, stream, watch, slog)
                await runner.serve(first)
        finally:
            del self._streams[stream_id]
            if status is not None:
                status.close()
            if self._metrics is not None:
                self._metrics.streams_active.dec()
            slog.info(
                "ADS stream closed",
                responses_sent=ads.responses_sent,
                acks=ads.acks,
                nacks=ads.nacks,
            )

    async def _authenticate(self, proxy_id: ProxyId, stream: Any, slog: Any) -> None:
        assert self._authenticator is not None
        try:
            result = self._authenticator(proxy_id, _request_metadata(stream))
            if inspect.isawaitable(result):
                await result
        except AuthenticationError as e:
            slog.warning("ADS stream refused", reason=str(e))
            raise GRPCError(Status.UNAUTHENTICATED, f"authentication failed: {e}") from None
        except GRPCError:
            raise
        except TransientError as e:  # e.g. the Pod's Dataplane is not written yet: Envoy retries
            slog.info("stream deferred", reason=str(e))
            raise GRPCError(Status.UNAVAILABLE, f"not ready yet, retry: {e}") from None
        except Exception:
            slog.exception("authentication could not be completed")
            raise GRPCError(Status.INTERNAL, "authentication could not be completed") from None


class _Inbox:
    """What the stream's loop has to handle, in arrival order: requests, snapshot ticks, the end.

    A deque and an event rather than a memory object stream: this is on the path of every
    request and push of every stream, and needs no more. Requests are bounded (`limit`) so a
    client that floods the stream is slowed down instead of buffered without end.
    """

    __slots__ = ("_items", "_limit", "_readable", "_writable")

    def __init__(self, limit: int = 16) -> None:
        self._items: deque[_Item] = deque()
        self._limit = limit
        self._readable = anyio.Event()
        self._writable = anyio.Event()

    def put_nowait(self, item: _Item) -> None:
        self._items.append(item)
        self._readable.set()

    async def put(self, item: _Item) -> None:
        while len(self._items) >= self._limit:
            self._writable = anyio.Event()
            await self._writable.wait()
        self.put_nowait(item)

    async def get(self, deadline: float | None) -> _Item | None:
        """The next item, or None once `deadline` (loop time) has passed."""
        while not self._items:
            self._readable = anyio.Event()
            if deadline is None:
                await self._readable.wait()
            else:
                with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                    await self._readable.wait()
                if not self._items:
                    return None
        item = self._items.popleft()
        self._writable.set()
        return item


class _StreamRunner:
    """Carries one stream's events into its state machine and its actions out."""

    def __init__(
        self, server: AdsServer, ads: AdsStream, stream: Any, watch: ProxyWatch, slog: Any
    ) -> None:
        self._server = server
        self._ads = ads
        self._stream = stream
        self._watch = watch
        self._log = slog
        self._metrics = server._metrics
        self._inbox = _Inbox()
        self._snapshot_queued = False
        self._error: GRPCError | None = None

    async def serve(self, first: Any) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read_requests, first)
            tg.start_soon(self._watch_snapshots)
            await self._process()
            tg.cancel_scope.cancel()
        if self._error is not None:
            raise self._error

    # -- producers ------------------------------------------------------------------------------

    async def _read_requests(self, first: Any) -> None:
        node_id = first.node.id
        await self._inbox.put(first)
        while True:
            try:
                request = await self._stream.recv_message()
            except (StreamTerminatedError, ProtocolError, ConnectionError) as e:
                self._log.debug("ADS stream broken", error=str(e))
                request = None
            if request is None:
                self._inbox.put_nowait(_END)
                return
            if request.HasField("node") and request.node.id and request.node.id != node_id:
                self._error = GRPCError(
                    Status.INVALID_ARGUMENT,
                    f"stream was opened for node {node_id!r}; node id cannot change to "
                    f"{request.node.id!r} within a stream",
                )
                self._inbox.put_nowait(_END)
                return
            await self._inbox.put(request)

    async def _watch_snapshots(self) -> None:
        generation = 0
        while True:
            generation = await self._watch.wait_changed(generation)
            if not self._snapshot_queued:  # coalesce: the latest snapshot is read when handled
                self._snapshot_queued = True
                self._inbox.put_nowait(_SNAPSHOT)

    # -- the loop -------------------------------------------------------------------------------

    async def _process(self) -> None:
        state = self._ads.state
        while True:
            item = await self._inbox.get(state.next_timer)
            now = anyio.current_time()
            event: Event
            if item is None:
                event = TimerFired(now)
            elif item is _END:
                return
            elif item is _SNAPSHOT:
                self._snapshot_queued = False
                snapshot = self._watch.snapshot
                if snapshot is None:
                    continue
                event = SnapshotChanged(snapshot, now)
            else:
                event = _request_event(item, now)
            try:
                for action in state.handle(event):
                    await self._apply(action)
            except (StreamTerminatedError, ProtocolError, ConnectionError, H2ProtocolError) as e:
                self._log.debug("ADS stream broken while sending", error=str(e))
                return

    async def _apply(self, action: Action) -> None:
        ads, metrics = self._ads, self._metrics
        if isinstance(action, SendResponse):
            response = DiscoveryResponse(
                version_info=action.version_info, type_url=action.type_url, nonce=action.nonce
            )
            response.control_plane.identifier = self._server._instance_id
            add = response.resources.add
            for resource in action.resources:
                add(type_url=resource.type_url, value=resource.payload)
            await self._stream.send_message(response)
            ads.responses_sent += 1
            if metrics is not None:
                metrics.responses_sent.inc(action.type_url)
            if ads.status is not None:
                ads.status.response_sent(action.type_url)
            self._log.debug(
                "response sent",
                type=short_type(action.type_url),
                version=action.version_info,
                nonce=action.nonce,
                resources=len(action.resources),
            )
        elif isinstance(action, Acked | Rejected):
            acked = isinstance(action, Acked)
            if metrics is not None:
                metrics.requests_received.inc(action.type_url, "ACK" if acked else "NACK")
                if action.delivery is not None:
                    metrics.delivery.observe(action.delivery * 1000.0)
            if ads.status is not None:
                if acked:
                    ads.status.acked(action.type_url)
                else:
                    ads.status.rejected(action.type_url)
            if acked:
                ads.acks += 1
            else:
                assert isinstance(action, Rejected)
                ads.nacks += 1
                ads.last_rejection = action.message
                log_at = self._log.debug if action.stale else self._log.warning
                log_at(
                    "config rejected by Envoy",
                    type=short_type(action.type_url),
                    version=action.version,
                    nonce=action.nonce,
                    code=action.code,
                    error=action.message.strip(),
                    stale=action.stale,
                )
        elif isinstance(action, ScheduleRetry):
            self._log.info(
                "rejected config will be offered again",
                type=short_type(action.type_url),
                after=round(action.at - anyio.current_time(), 3),
            )
        elif isinstance(action, Ignored):
            self._log.debug(
                "request ignored",
                type=action.type_url,
                nonce=action.nonce,
                reason=action.reason,
            )


def _request_event(request: Any, now: float) -> RequestReceived:
    error = None
    if request.HasField("error_detail"):
        error = ErrorDetail(request.error_detail.code, request.error_detail.message)
    return RequestReceived(
        type_url=request.type_url,
        version_info=request.version_info,
        response_nonce=request.response_nonce,
        resource_names=tuple(request.resource_names),
        error_detail=error,
        now=now,
    )
