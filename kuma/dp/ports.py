"""Picking the port Envoy's admin API listens on."""

from __future__ import annotations

import socket

from kuma.dp.config import PortRange
from kuma.dp.errors import AdminPortError

__all__ = ["pick_tcp_port"]


def pick_tcp_port(ip: str, ports: PortRange) -> int:
    """The lowest port of `ports` that can be bound on `ip` right now.

    Sequential rather than random, so a dataplane keeps its admin port across restarts (Kuma
    does the same). The port is released again at once: Envoy binds it moments later.
    Raises AdminPortError when every port of the range is taken.
    """
    last_error: OSError | None = None
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    for port in range(ports.lowest, ports.highest + 1):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # as Go's net.Listen and Envoy do, so a port in TIME_WAIT counts as free
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((ip, port))
                sock.listen(1)
            except OSError as e:
                last_error = e
                continue
            return port
    reason = f": {last_error.strerror or last_error}" if last_error is not None else ""
    raise AdminPortError(
        f'unable to find a free port in the range "{ports}" for Envoy Admin API to listen on'
        f"{reason}. Choose another --admin-port (KUMA_DATAPLANE_ADMIN_PORT), or an empty one "
        "to run Envoy without an admin API"
    )
