"""The control plane's TCP listeners: bound up front, then handed to hypercorn.

Every listener is bound (and listening) before anything else starts, so a port that is already
taken stops `kuma-cp run` at once with a message naming the port's config key, and nothing is
left running. An empty host means every interface, IPv6 and IPv4 (Go's `:port`).
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field

from kuma.errors import KumaError

__all__ = ["ListenError", "Listener", "bind_listener"]

_BACKLOG = 1024


class ListenError(KumaError):
    """A listener could not be bound (port in use, permission denied, bad address)."""


@dataclass(slots=True)
class Listener:
    name: str
    """Which server: api, admin, diagnostics, ..."""
    config_key: str
    """The setting that chose the port: `apiServer.port`."""
    host: str
    """"" for every interface, else an address (`127.0.0.1`)."""
    port: int
    sock: socket.socket | None = field(default=None, repr=False)

    @property
    def address(self) -> str:
        """`host:port` actually bound (`[::]:5681`, `127.0.0.1:5679`)."""
        if self.sock is None:
            return f"{self.host or '*'}:{self.port}"
        host, port = self.sock.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def bound_port(self) -> int:
        assert self.sock is not None, "listener is not bound"
        return int(self.sock.getsockname()[1])

    def bind(self) -> None:
        self.sock = bind_listener(
            self.host, self.port, what=f"{self.name} server ({self.config_key})"
        )

    def take_fd(self) -> int:
        """Give up ownership of the socket (to hypercorn) and return its file descriptor."""
        assert self.sock is not None, "listener is not bound"
        sock, self.sock = self.sock, None
        return sock.detach()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _open(host: str) -> tuple[socket.socket, tuple[str, ...]]:
    if host == "":
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        except OSError:  # no IPv6 on this machine
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM), ("0.0.0.0",)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        except OSError:  # pragma: no cover - dual stack is the Linux default
            sock.close()
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM), ("0.0.0.0",)
        return sock, ("::",)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.socket(family, socket.SOCK_STREAM), (host,)


def bind_listener(host: str, port: int, *, what: str = "server") -> socket.socket:
    """A non-blocking TCP socket bound to host:port and listening; ListenError if it cannot."""
    sock, (addr,) = _open(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((addr, port))
        sock.listen(_BACKLOG)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        shown = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
        reason = "address already in use" if e.errno == errno.EADDRINUSE else e.strerror or str(e)
        raise ListenError(f"cannot listen on {shown} for the {what}: {reason}") from e
    return sock
