"""kuma-dp's access log server: Envoy's gRPC access log streams in, formatted lines out to the
TCP logging backend (real grpclib over a unix socket, real TCP backend on loopback)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from envoy.data.accesslog.v3 import accesslog_pb2
from envoy.service.accesslog.v3 import als_pb2
from grpclib.client import Channel
from grpclib.const import Cardinality, Status
from grpclib.exceptions import GRPCError

from kuma.dp.accesslogs import STREAM_METHOD, access_log_server, parse_log_name
from kuma.dp.config import DataplaneConfig
from kuma.dp.cp_client import Catalog
from kuma.dp.run import DataplaneContext
from kuma.xds.envoy.accesslog import DEFAULT_HTTP_FORMAT

pytestmark = pytest.mark.anyio

Message: Any = als_pb2.StreamAccessLogsMessage
Response: Any = als_pb2.StreamAccessLogsResponse


class Collector:
    """A TCP logging backend: everything it receives, per connection."""

    def __init__(self) -> None:
        self.connections: list[bytearray] = []
        self.received = anyio.Event()  # replaced after each chunk

    async def wait_lines(self, count: int) -> str:
        with anyio.fail_after(5):
            while self.text().count("\n") < count:
                await self.received.wait()
        return self.text()

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        data = bytearray()
        self.connections.append(data)
        async with stream:
            try:
                async for chunk in stream:
                    data.extend(chunk)
                    self.received.set()
                    self.received = anyio.Event()
            except anyio.BrokenResourceError:
                pass

    def text(self) -> str:
        return b"".join(self.connections).decode()


@asynccontextmanager
async def environment(tmp_path: Path) -> AsyncIterator[tuple[str, int, Collector]]:
    """The access log server on a fresh socket, and a collector listening on loopback."""
    socket_path = str(tmp_path / f"als-{uuid.uuid4().hex[:8]}.sock")
    ctx = DataplaneContext(
        DataplaneConfig(name="web-1"), Catalog("http://127.0.0.1:1/bootstrap"), socket_path
    )
    collector = Collector()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, collector.handle)
        await tg.start(access_log_server, ctx)
        try:
            yield socket_path, port, collector
        finally:
            tg.cancel_scope.cancel()
    assert not await anyio.Path(socket_path).exists(), (
        "the socket file is removed when the server stops"
    )


def http_entry(path: str, code: int) -> Any:
    entry = accesslog_pb2.HTTPAccessLogEntry(
        protocol_version=accesslog_pb2.HTTPAccessLogEntry.HTTP11
    )
    common = entry.common_properties
    common.start_time.FromDatetime(dt.datetime(2024, 5, 1, 12, 30, 15, 123456))
    common.time_to_last_downstream_tx_byte.FromMilliseconds(42)
    common.upstream_remote_address.socket_address.address = "10.0.0.2"
    common.upstream_remote_address.socket_address.port_value = 8081
    common.response_flags.upstream_connection_failure = True
    request = entry.request
    request.request_method = 1  # GET
    request.path = path
    request.authority = "backend"
    request.user_agent = "curl/8"
    request.request_id = "rid-1"
    request.request_body_bytes = 0
    entry.response.response_code.value = code
    entry.response.response_body_bytes = 17
    entry.response.response_headers["x-envoy-upstream-service-time"] = "3"
    return entry


def tcp_entry(sent: int, received: int) -> Any:
    entry = accesslog_pb2.TCPAccessLogEntry()
    entry.common_properties.upstream_remote_address.socket_address.address = "10.0.0.3"
    entry.common_properties.upstream_remote_address.socket_address.port_value = 5432
    entry.connection_properties.sent_bytes = sent
    entry.connection_properties.received_bytes = received
    return entry


async def stream(socket_path: str, messages: list[Any]) -> Any:
    async with Channel(path=socket_path) as channel:
        method: Any = channel.request(STREAM_METHOD, Cardinality.STREAM_UNARY, Message, Response)
        async with method as call:
            for m in messages:
                await call.send_message(m)
            await call.end()
            return await call.recv_message()


async def test_http_entries_reach_the_tcp_backend_in_kumas_default_format(tmp_path: Path) -> None:
    async with environment(tmp_path) as (socket_path, port, collector):
        fmt = DEFAULT_HTTP_FORMAT.replace("%KUMA_MESH%", "default")
        first = Message()
        first.identifier.log_name = f"127.0.0.1:{port};{fmt}"
        first.http_logs.log_entry.append(http_entry("/hello", 200))
        second = Message()
        second.http_logs.log_entry.extend([http_entry("/a", 503), http_entry("/b", 200)])
        await stream(socket_path, [first, second])
        text = await collector.wait_lines(3)
    lines = text.splitlines()
    assert lines[0] == (
        '[2024-05-01T12:30:15.123Z] default "GET /hello HTTP/1.1" 200 UF 0 17 42 3 "-" '
        '"curl/8" "rid-1" "backend" "%KUMA_SOURCE_SERVICE%" "%KUMA_DESTINATION_SERVICE%" '
        '"%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%" "10.0.0.2:8081"'
    )
    assert '"GET /a HTTP/1.1" 503' in lines[1]
    assert '"GET /b HTTP/1.1" 200' in lines[2]
    assert len(collector.connections) == 1  # one backend connection per stream


async def test_tcp_entries_with_a_custom_format(tmp_path: Path) -> None:
    async with environment(tmp_path) as (socket_path, port, collector):
        message = Message()
        message.identifier.log_name = (
            f"127.0.0.1:{port};%UPSTREAM_HOST% sent=%BYTES_SENT% recv=%BYTES_RECEIVED% "
            "proto=%PROTOCOL% code=%RESPONSE_CODE% hdr=%REQ(X-A)%\n"
        )
        message.tcp_logs.log_entry.extend([tcp_entry(10, 20), tcp_entry(1, 2)])
        await stream(socket_path, [message])
        text = await collector.wait_lines(2)
    assert text.splitlines() == [
        "10.0.0.3:5432 sent=10 recv=20 proto=- code=0 hdr=-",
        "10.0.0.3:5432 sent=1 recv=2 proto=- code=0 hdr=-",
    ]


async def test_a_bad_log_name_fails_the_stream(tmp_path: Path) -> None:
    async with environment(tmp_path) as (socket_path, _, collector):
        message = Message()
        message.identifier.log_name = "no-separator-here"
        message.tcp_logs.log_entry.append(tcp_entry(1, 1))
        with pytest.raises(GRPCError) as error:
            await stream(socket_path, [message])
        assert error.value.status is Status.INVALID_ARGUMENT
        assert "expected 2 components separated by ';'" in str(error.value.message)

        message.identifier.log_name = "127.0.0.1:1;%BAD"
        with pytest.raises(GRPCError) as error:
            await stream(socket_path, [message])
        assert error.value.status is Status.INVALID_ARGUMENT
        assert "format string is not valid" in str(error.value.message)
    assert collector.connections == []


async def test_an_unreachable_backend_fails_the_stream(tmp_path: Path) -> None:
    with anyio.fail_after(10):
        async with environment(tmp_path) as (socket_path, _, _collector):
            closed = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
            port = closed.extra(anyio.abc.SocketAttribute.local_port)
            await closed.aclose()  # nothing listens there now
            message = Message()
            message.identifier.log_name = f"127.0.0.1:{port};%BYTES_SENT%\n"
            message.tcp_logs.log_entry.append(tcp_entry(1, 1))
            with pytest.raises(GRPCError) as error:
                await stream(socket_path, [message])
            assert error.value.status is Status.UNAVAILABLE
            assert f"127.0.0.1:{port}" in str(error.value.message)


async def test_a_socket_served_by_another_process_is_left_alone(tmp_path: Path) -> None:
    async with environment(tmp_path) as (socket_path, port, collector):
        other = DataplaneContext(
            DataplaneConfig(name="web-1"), Catalog("http://127.0.0.1:1/bootstrap"), socket_path
        )
        async with anyio.create_task_group() as tg:
            await tg.start(access_log_server, other)  # starts, but does not take the socket
            tg.cancel_scope.cancel()
        assert await anyio.Path(socket_path).exists()
        message = Message()
        message.identifier.log_name = f"127.0.0.1:{port};%BYTES_SENT%\n"
        message.tcp_logs.log_entry.append(tcp_entry(7, 1))
        await stream(socket_path, [message])
        assert await collector.wait_lines(1) == "7\n"


def test_parse_log_name() -> None:
    host, port, fmt = parse_log_name("logstash.internal:5000;%START_TIME% x\n")
    assert (host, port, str(fmt)) == ("logstash.internal", 5000, "%START_TIME% x\n")
    host, port, _ = parse_log_name("[::1]:9;-")
    assert (host, port) == ("::1", 9)
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_log_name("nohost;%BYTES_SENT%")
