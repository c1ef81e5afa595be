"""Test harness: a SnapshotSource whose snapshots the test sets, and a small ADS client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import h2.exceptions
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from grpclib.metadata import decode_grpc_message

from kuma.xds.core import DataplaneMetadata, ProxyId, Snapshot
from kuma.xds.server.ads import ADS_DELTA_METHOD, ADS_METHOD

DiscoveryRequest: Any = discovery_pb2.DiscoveryRequest
DiscoveryResponse: Any = discovery_pb2.DiscoveryResponse


class Watch:
    """ProxyWatch: the latest snapshot of one proxy and a generation counter."""

    def __init__(self, snapshot: Snapshot | None) -> None:
        self.snapshot = snapshot
        self.generation = 0 if snapshot is None else 1
        self._changed = anyio.Event()

    def set(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.generation += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_changed(self, since: int) -> int:
        while self.generation <= since:
            await self._changed.wait()
        return self.generation


class StaticSource:
    """SnapshotSource with one snapshot per proxy, replaced by the test with `set`."""

    def __init__(self) -> None:
        self.watches: dict[ProxyId, Watch] = {}
        self.connects: list[tuple[ProxyId, DataplaneMetadata]] = []
        self.open: dict[ProxyId, int] = {}

    def set(self, proxy_id: ProxyId, snapshot: Snapshot) -> None:
        watch = self.watches.get(proxy_id)
        if watch is None:
            self.watches[proxy_id] = Watch(snapshot)
        else:
            watch.set(snapshot)

    @asynccontextmanager
    async def connect(self, proxy_id: ProxyId, metadata: DataplaneMetadata) -> AsyncIterator[Watch]:
        self.connects.append((proxy_id, metadata))
        watch = self.watches.setdefault(proxy_id, Watch(None))
        self.open[proxy_id] = self.open.get(proxy_id, 0) + 1
        try:
            yield watch
        finally:
            self.open[proxy_id] -= 1


def node_request(
    type_url: str,
    *,
    node_id: str = "default.web",
    metadata: dict[str, Any] | None = None,
    names: tuple[str, ...] = (),
) -> Any:
    req = DiscoveryRequest(type_url=type_url, resource_names=list(names))
    req.node.id = node_id
    if metadata:
        struct = struct_pb2.Struct()
        struct.update(metadata)
        req.node.metadata.CopyFrom(struct)
    return req


def answer(
    response: Any,
    *,
    names: tuple[str, ...] = (),
    error: str | None = None,
    version: str | None = None,
) -> Any:
    """The request Envoy sends after `response`: an ACK, or a NACK when `error` is given."""
    req = DiscoveryRequest(
        type_url=response.type_url,
        response_nonce=response.nonce,
        version_info=response.version_info if version is None else version,
        resource_names=list(names),
    )
    if error is not None:
        req.error_detail.code = 13
        req.error_detail.message = error
    return req


def _uncancel() -> None:
    """grpclib's client stops a task blocked on a stream that gets reset with `task.cancel()`
    and turns the CancelledError into StreamTerminatedError, leaving the cancel request counted
    on the task; anyio would then take the task for natively cancelled. Withdraw it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        task.uncancel()


async def recv_message(stream: Any) -> Any:
    """`stream.recv_message()`, raising the server's status as GRPCError when it ended the
    stream with one."""
    try:
        return await stream.recv_message()
    except StreamTerminatedError:
        _uncancel()
        # A gRPC server ends a stream its client has not half-closed with trailers and then
        # RST_STREAM(NO_ERROR); grpclib's client may see the reset before it reads the status
        # it already received. Recover the status like other clients do.
        headers = dict(stream._stream.trailers or stream._stream.headers or ())
        if "grpc-status" not in headers:
            raise
        message = decode_grpc_message(headers.get("grpc-message", ""))
        raise GRPCError(Status(int(headers["grpc-status"])), message) from None


class AdsClient:
    """One ADS stream to the server under test."""

    def __init__(self, port: int, metadata: dict[str, str] | None = None) -> None:
        self._port = port
        self._metadata = metadata
        self.channel: Channel | None = None
        self.stream: Any = None

    async def __aenter__(self) -> AdsClient:
        self.channel = Channel("127.0.0.1", self._port)
        self.stream = self.channel.request(
            ADS_METHOD,
            Cardinality.STREAM_STREAM,
            DiscoveryRequest,
            DiscoveryResponse,
            metadata=self._metadata,
        )
        await self.stream.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            # end our side like Envoy does on shutdown; the server then ends the stream with OK
            with (
                anyio.move_on_after(2),
                contextlib.suppress(
                    GRPCError, ProtocolError, StreamTerminatedError, h2.exceptions.ProtocolError
                ),
            ):
                await self.stream.end()
                await self.stream.__aexit__(None, None, None)
        finally:
            assert self.channel is not None
            self.channel.close()

    async def send(self, request: Any) -> None:
        await self.stream.send_message(request)

    async def recv(self, within: float = 5.0) -> Any:
        with anyio.fail_after(within):
            return await recv_message(self.stream)

    async def nothing_within(self, seconds: float) -> bool:
        """True when no message arrives within `seconds`."""
        with anyio.move_on_after(seconds):
            try:
                await self.stream.recv_message()
            except StreamTerminatedError:
                _uncancel()
                raise
            return False
        return True


async def delta_call(port: int) -> None:
    channel = Channel("127.0.0.1", port)
    try:
        async with channel.request(
            ADS_DELTA_METHOD,
            Cardinality.STREAM_STREAM,
            discovery_pb2.DeltaDiscoveryRequest,
            discovery_pb2.DeltaDiscoveryResponse,
        ) as stream:
            await stream.send_message(discovery_pb2.DeltaDiscoveryRequest())
            with anyio.fail_after(5):
                await recv_message(stream)
    finally:
        channel.close()
