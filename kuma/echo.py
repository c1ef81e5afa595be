"""kuma-tcp-echo: a demo TCP echo server (Kuma 0.4.0's `kuma-tcp-echo`).

Every byte a client sends comes back. When what arrives is an HTTP request, the server logs its
request line and answers it; Kuma 0.4 wrote the raw request bytes back and closed, which an HTTP
proxy (Envoy with `kuma.io/protocol: http`) rejects as a malformed response, so kuma-py wraps the
same bytes in an `HTTP/1.1 200 OK` response (body = the request exactly as received) and closes.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sys

import anyio
import click
import structlog
from anyio.abc import SocketStream

from kuma.version import __version__

__all__ = ["EchoServer", "main", "serve"]

log = structlog.get_logger("kuma-tcp-echo")

CHUNK = 1024  # like Kuma's echo: read at most 1 KiB at a time
MAX_HTTP_HEAD = 64 * 1024
_REQUEST_LINE = re.compile(rb"^([A-Z][A-Z0-9!#$%&'*+.^_`|~-]*) (\S+) (HTTP/\d\.\d)\r?\n", re.ASCII)


def http_response(request: bytes) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(request)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    return head + request


def _content_length(head: bytes) -> int:
    m = re.search(rb"\r?\ncontent-length:[ \t]*(\d+)[ \t]*\r?\n", head, re.IGNORECASE)
    return int(m.group(1)) if m else 0


async def _handle(stream: SocketStream) -> None:
    buffer = b""
    async with stream:
        while True:
            try:
                chunk = await stream.receive(CHUNK)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return
            buffer += chunk
            # Like Kuma's echo, decide on what has arrived: a complete request line makes it
            # HTTP (then wait for the headers and body); anything else is echoed at once.
            match = _REQUEST_LINE.match(buffer)
            if match is not None:
                end = buffer.find(b"\r\n\r\n")
                sep = 4
                if end < 0:
                    end, sep = buffer.find(b"\n\n"), 2
                if end < 0:
                    if len(buffer) < MAX_HTTP_HEAD:
                        continue  # headers are still arriving
                else:
                    need = end + sep + _content_length(buffer[: end + sep])
                    if len(buffer) < need:
                        continue  # the body is still arriving
                method, target, proto = (g.decode("latin-1") for g in match.groups())
                log.info(f"{proto} connection: {method} {target}")
                with contextlib.suppress(anyio.BrokenResourceError, OSError):
                    await stream.send(http_response(buffer))
                return
            log.info(f"TCP connection: {list(buffer)}")
            try:
                await stream.send(buffer)
            except (anyio.BrokenResourceError, OSError):
                return
            buffer = b""


class EchoServer:
    """Listens on `address:port` (port 0 picks a free one, see `.port` once bound)."""

    def __init__(self, port: int = 8000, address: str | None = None) -> None:
        self.requested_port = port
        self.address = address
        self.port = port
        self._listener: anyio.abc.Listener[SocketStream] | None = None

    async def bind(self) -> int:
        """Open the listening socket (raises OSError, e.g. when the port is taken)."""
        if self._listener is None:
            listener = await anyio.create_tcp_listener(
                local_host=self.address, local_port=self.requested_port
            )
            self._listener = listener
            self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        return self.port

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        await self.bind()
        assert self._listener is not None
        async with self._listener:
            log.info(f"Kuma TCP Echo - Listening to connections on port {self.port}")
            task_status.started(self.port)
            await self._listener.serve(_handle)


async def serve(port: int, address: str | None) -> None:
    server = EchoServer(port, address)
    await server.bind()  # fail here, not inside the task group, when the port is taken
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.run)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("stopping", signal=signal.Signals(signum).name)
                tg.cancel_scope.cancel()
                break


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--port",
    "-port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to accept connections on.",
)
@click.option(
    "--address",
    default=None,
    metavar="IP",
    help="Address to listen on (default: every interface).",
)
@click.version_option(__version__, "--version", message="Kuma: %(version)s")
def cli(port: int, address: str | None) -> None:
    """Kuma TCP Echo: echoes every byte back (and answers HTTP requests with their own bytes)."""
    from kuma.logging import configure_logging

    configure_logging("info")
    try:
        anyio.run(serve, port, address)
    except OSError as e:
        click.echo(f"Error: could not listen on port {port}: {e.strerror or e}", err=True)
        sys.exit(1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
