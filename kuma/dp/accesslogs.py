"""kuma-dp's access log server: TCP traffic logs from Envoy to their backends.

A TrafficLog with a `tcp` logging backend makes Envoy send its log entries over gRPC
(`envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs`) to the `access_log_sink`
cluster, which the bootstrap points at this server's unix socket
(`/tmp/kuma-access-logs-<name>-<mesh>.sock`). Each stream names its destination in the log
name of its first message, `<host:port>;<format>` (the format with Kuma's placeholders already
bound by the control plane). The server connects to that address once per stream, renders each
HTTP or TCP entry with the format as Envoy would have, and writes the lines to the connection.

If the backend cannot be reached, or a write fails, the stream ends with an error; Envoy opens
a new one with its next entries (entries of the failed stream are lost, as with Kuma).

    async with anyio.create_task_group() as tg:
        await tg.start(access_log_server, ctx)       # a kuma.dp.run.SidecarService
"""

from __future__ import annotations

import contextlib
import itertools
import os
from typing import Any

import anyio
import anyio.abc
import structlog
from envoy.service.accesslog.v3 import als_pb2
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server, Stream

from kuma.dp.run import DataplaneContext
from kuma.xds.envoy.accesslog import AccessLogFormat, AccessLogFormatError, parse_format

__all__ = [
    "CONNECT_TIMEOUT",
    "STREAM_METHOD",
    "AccessLogService",
    "access_log_server",
    "parse_log_name",
]

log = structlog.get_logger("kuma-dp.access-logs")

STREAM_METHOD = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
CONNECT_TIMEOUT = 5.0
"""Seconds to connect to a TCP logging backend."""

StreamAccessLogsMessage: Any = als_pb2.StreamAccessLogsMessage
StreamAccessLogsResponse: Any = als_pb2.StreamAccessLogsResponse


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"address {address!r} is not HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def parse_log_name(log_name: str) -> tuple[str, int, AccessLogFormat]:
    """`<host>:<port>;<format>` -> (host, port, format); ValueError when it is not that."""
    address, sep, fmt = log_name.partition(";")
    if not sep:
        raise ValueError(
            f"log name {log_name!r} has invalid format: expected 2 components separated by ';'"
        )
    host, port = _split_address(address)
    try:
        return host, port, parse_format(fmt)
    except AccessLogFormatError as e:
        raise ValueError(str(e)) from None


class AccessLogService:
    """The grpclib handler of Envoy's (v3) AccessLogService."""

    def __init__(self, *, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.connect_timeout = connect_timeout
        self._ids = itertools.count(1)

    def __mapping__(self) -> dict[str, Handler]:
        return {
            STREAM_METHOD: Handler(
                self.stream_access_logs,
                Cardinality.STREAM_UNARY,
                StreamAccessLogsMessage,
                StreamAccessLogsResponse,
            )
        }

    async def stream_access_logs(self, stream: Stream[Any, Any]) -> None:
        stream_id = next(self._ids)
        bound = log.bind(stream=stream_id)
        bound.info("access log stream started")
        sent = 0
        backend: anyio.abc.SocketStream | None = None
        fmt: AccessLogFormat | None = None
        try:
            while (message := await stream.recv_message()) is not None:
                if backend is None:
                    host, port, fmt = self._parse(message)
                    backend = await self._connect(host, port)
                    bound.info("connected to TCP logging backend", address=f"{host}:{port}")
                assert fmt is not None
                lines = self._render(message, fmt)
                if lines:
                    try:
                        await backend.send("".join(lines).encode())
                    except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError) as e:
                        raise GRPCError(
                            Status.UNAVAILABLE, f"failed to send log entries to the backend: {e}"
                        ) from None
                    sent += len(lines)
            await stream.send_message(StreamAccessLogsResponse())
        finally:
            if backend is not None:
                with anyio.CancelScope(shield=True):
                    await backend.aclose()
            bound.info("access log stream ended", entries=sent)

    @staticmethod
    def _parse(message: Any) -> tuple[str, int, AccessLogFormat]:
        try:
            return parse_log_name(message.identifier.log_name)
        except ValueError as e:
            raise GRPCError(Status.INVALID_ARGUMENT, str(e)) from None

    async def _connect(self, host: str, port: int) -> anyio.abc.SocketStream:
        try:
            with anyio.fail_after(self.connect_timeout):
                return await anyio.connect_tcp(host, port)
        except (OSError, TimeoutError) as e:
            raise GRPCError(
                Status.UNAVAILABLE,
                f"failed to connect to a TCP logging backend: {host}:{port}: {e}",
            ) from None

    @staticmethod
    def _render(message: Any, fmt: AccessLogFormat) -> list[str]:
        which = message.WhichOneof("log_entries")
        if which == "http_logs":
            return [fmt.format_http_entry(e) for e in message.http_logs.log_entry]
        if which == "tcp_logs":
            return [fmt.format_tcp_entry(e) for e in message.tcp_logs.log_entry]
        return []


def _remove_stale(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def _in_use(path: str) -> bool:
    """Whether a live server listens on the unix socket `path`."""
    try:
        with anyio.fail_after(1):
            stream = await anyio.connect_unix(path)
    except (OSError, TimeoutError):
        return False
    await stream.aclose()
    return True


async def access_log_server(
    ctx: DataplaneContext,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve AccessLogService on `ctx.access_log_socket` until cancelled (a SidecarService).

    A socket file left by an earlier kuma-dp of the same dataplane is replaced (one another
    process still serves is left alone); the file is removed when the server stops.
    """
    path = ctx.access_log_socket
    if await _in_use(path):
        # Another kuma-dp of the same dataplane name and mesh runs on this host and serves it;
        # taking its socket would break it. Envoy's TCP logs then go through that one.
        log.warning("access log socket already served by another process; not serving", path=path)
        task_status.started()
        await anyio.sleep_forever()
    _remove_stale(path)
    server = Server([AccessLogService()])
    await server.start(path=path)
    log.info("access log server listening", address=f"unix://{path}")
    try:
        task_status.started()
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            server.close()
            with anyio.move_on_after(2):
                await server.wait_closed()
            _remove_stale(path)
            log.info("access log server stopped")
