"""kuma-tcp-echo: bytes come back; HTTP requests are answered with their own bytes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from kuma.echo import EchoServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def echo_port() -> AsyncIterator[int]:
    async with anyio.create_task_group() as tg:
        port = await tg.start(EchoServer(0, "127.0.0.1").run)
        yield port
        tg.cancel_scope.cancel()


async def _receive_exactly(stream: anyio.abc.SocketStream, n: int) -> bytes:
    out = b""
    with anyio.fail_after(5):
        while len(out) < n:
            out += await stream.receive()
    return out


async def test_tcp_bytes_are_echoed_on_a_kept_open_connection(echo_port: int) -> None:
    async with await anyio.connect_tcp("127.0.0.1", echo_port) as stream:
        for message in (b"hello\n", b"\x00\x01\x02 binary", b"second line\n"):
            await stream.send(message)
            assert await _receive_exactly(stream, len(message)) == message


async def test_large_payload_is_echoed_completely(echo_port: int) -> None:
    payload = bytes(range(256)) * 400  # 100 KiB, far more than one 1 KiB read
    async with (
        await anyio.connect_tcp("127.0.0.1", echo_port) as stream,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(stream.send, payload)
        assert await _receive_exactly(stream, len(payload)) == payload


async def test_http_request_gets_a_200_with_the_request_as_body(echo_port: int) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.post(
            f"http://127.0.0.1:{echo_port}/some/path?x=1", content=b"payload"
        )
    assert response.status_code == 200
    assert response.text.startswith("POST /some/path?x=1 HTTP/1.1\r\n")
    assert response.text.endswith("\r\n\r\npayload")


async def test_concurrent_clients_are_independent(echo_port: int) -> None:
    results: dict[int, bytes] = {}

    async def client(i: int) -> None:
        async with await anyio.connect_tcp("127.0.0.1", echo_port) as stream:
            msg = f"client-{i}\n".encode()
            await stream.send(msg)
            results[i] = await _receive_exactly(stream, len(msg))

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(client, i)
    assert results == {i: f"client-{i}\n".encode() for i in range(20)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_console_script_logs_and_stops_on_sigterm() -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kuma.echo", "-port", str(port), "--address", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                    reply = conn.recv(4096)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        assert reply.startswith(b"HTTP/1.1 200 OK")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        text = out.decode()
        assert f"Kuma TCP Echo - Listening to connections on port {port}" in text
        assert "HTTP/1.1 connection: GET /hello" in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)


def test_port_in_use_exits_1_with_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "kuma.echo", "--port", str(port), "--address", "127.0.0.1"],
            capture_output=True,
            timeout=20,
        )
    assert proc.returncode == 1
    assert f"could not listen on port {port}" in proc.stderr.decode()
