"""Picking the port Envoy's admin API listens on."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import tempfile

from kuma.dp.config import PortRange
from kuma.dp.errors import AdminPortError

__all__ = ["pick_tcp_port"]


def pick_tcp_port(ip: str, ports: PortRange) -> int:
    """The lowest port of `ports` that can be bound on `ip` right now.

    Sequential rather than random, so a dataplane keeps its admin port across restarts (Kuma
    does the same). The port is released again at once: Envoy binds it moments later. So that
    two kuma-dps starting together on one machine cannot both pick the port in that moment, the
    chosen port is also claimed with a lock file held for the rest of this process's life.
    Raises AdminPortError when every port of the range is taken.
    """
    last_error: OSError | None = None
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    for port in range(ports.lowest, ports.highest + 1):
        if not _claim(ip, port):
            continue  # another kuma-dp on this machine picked it and has not exited
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # as Go's net.Listen and Envoy do, so a port in TIME_WAIT counts as free
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((ip, port))
                sock.listen(1)
            except OSError as e:
                last_error = e
                _release(ip, port)
                continue
            return port
    reason = f": {last_error.strerror or last_error}" if last_error is not None else ""
    raise AdminPortError(
        f'unable to find a free port in the range "{ports}" for Envoy Admin API to listen on'
        f"{reason}. Choose another --admin-port (KUMA_DATAPLANE_ADMIN_PORT), or an empty one "
        "to run Envoy without an admin API"
    )


_CLAIMS: dict[tuple[str, int], int] = {}  # (ip, port) -> fd of its held lock file


def _lock_path(ip: str, port: int) -> str:
    return os.path.join(tempfile.gettempdir(), f"kuma-dp-admin-{ip.replace(':', '_')}-{port}.lock")


def _claim(ip: str, port: int) -> bool:
    if (ip, port) in _CLAIMS:
        return True
    try:
        fd = os.open(_lock_path(ip, port), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return True  # no lock possible here (read-only tmp): fall back to the bind check
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _CLAIMS[(ip, port)] = fd
    return True


def _release(ip: str, port: int) -> None:
    fd = _CLAIMS.pop((ip, port), None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
