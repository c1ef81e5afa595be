"""Serving a grpclib servable until cancelled: the one listening loop of ADS, SDS and MADS."""

from __future__ import annotations

import asyncio
import socket
import ssl as _ssl
from typing import Any

import anyio
import anyio.abc
import structlog
from grpclib.server import Server

__all__ = ["serve_grpc"]

log = structlog.get_logger("kuma.xds.server")


async def serve_grpc(
    servable: Any,
    *,
    name: str,
    host: str,
    port: int,
    ssl: _ssl.SSLContext | None,
    sock: socket.socket | None,
    task_status: anyio.abc.TaskStatus[int],
) -> None:
    """Serve `servable` (a grpclib `__mapping__` owner) until cancelled.

    `task_status.started(bound_port)` once it accepts streams (port 0 picks a free one). `sock`:
    an already bound, listening socket to serve on instead of host/port (kuma-cp binds every
    listener up front). `ssl` must offer ALPN `h2` (grpclib's requirement). On cancellation
    every stream handler is cancelled and the server closes (waiting 10 s at most). `name`
    labels the "listening" log line (`xDS`, `SDS`, `MADS`).
    """
    server = Server([servable])
    if sock is not None:
        await server.start(sock=sock, ssl=ssl)
        host = sock.getsockname()[0]
    else:
        await server.start(host, port, ssl=ssl, reuse_address=True)
    try:
        # grpclib does not expose the bound port; its asyncio server does
        listening = server._server
        assert isinstance(listening, asyncio.Server)
        bound = listening.sockets[0].getsockname()[1] if listening.sockets else port
        log.info(f"{name} server listening", address=host, port=bound, tls=ssl is not None)
        task_status.started(bound)
        await anyio.sleep_forever()
    finally:
        server.close()  # cancels every stream handler
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await server.wait_closed()
