"""What kuma-dp and the bootstrap server say to each other (no I/O, no heavy imports).

    POST /bootstrap  {"mesh": "default", "name": "backend-01", "adminPort": 30001,
                      "dataplaneTokenPath": "/tmp/token", "dataplaneToken": "eyJhbGciOi..."}

`adminPort`, `dataplaneTokenPath` and `dataplaneToken` are left out when zero / empty (Kuma's
`omitempty`). `dataplaneToken` (the token itself, as Kuma 1.3+ sends it) is checked by the
bootstrap server when tokens are required and handed to Envoy for its ADS stream;
`dataplaneTokenPath` still goes into the node metadata, where the SDS channel finds the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "ACCESS_LOG_SINK_CLUSTER",
    "ADS_CLUSTER",
    "BootstrapRequest",
    "BootstrapRequestError",
    "access_log_socket_path",
]

ADS_CLUSTER = "ads_cluster"
"""The static cluster Envoy reaches the ADS server through."""
ACCESS_LOG_SINK_CLUSTER = "access_log_sink"
"""The static cluster Envoy streams TCP access logs to (kuma-dp's unix socket)."""

_MAX_PORT = 65535


def access_log_socket_path(name: str, mesh: str) -> str:
    """The unix socket kuma-dp's access-log server listens on, and the bootstrap points at.

    Kuma 0.7.3 generated this path in the bootstrap but had kuma-dp listen on a random
    `/tmp/<uuid>.sock` (fixed in 1.0.x); kuma-py uses this one path on both sides.
    """
    return f"/tmp/kuma-access-logs-{name}-{mesh}.sock"


class BootstrapRequestError(ValueError):
    """The body of a bootstrap request is malformed (the server answers 400)."""


@dataclass(frozen=True, slots=True)
class BootstrapRequest:
    """One dataplane asking for its Envoy bootstrap."""

    mesh: str
    name: str
    admin_port: int = 0
    """The port kuma-dp picked for Envoy's admin API; 0 means "use the server's default"."""
    dataplane_token_path: str = ""
    """Where Envoy finds the dataplane token (goes into the node metadata)."""
    dataplane_token: str = ""
    """The dataplane token itself (Envoy sends it as `authorization` on its ADS stream)."""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"mesh": self.mesh, "name": self.name}
        if self.admin_port:
            body["adminPort"] = self.admin_port
        if self.dataplane_token_path:
            body["dataplaneTokenPath"] = self.dataplane_token_path
        if self.dataplane_token:
            body["dataplaneToken"] = self.dataplane_token
        return body

    @classmethod
    def from_json(cls, data: Any) -> BootstrapRequest:
        """Parse a decoded JSON body; unknown keys are ignored (as Kuma's json.Unmarshal does).

        Raises BootstrapRequestError naming the offending field.
        """
        if not isinstance(data, dict):
            raise BootstrapRequestError("the request body must be a JSON object")
        mesh = _string(data, "mesh")
        name = _string(data, "name")
        if not mesh:
            raise BootstrapRequestError("mesh must not be empty")
        if not name:
            raise BootstrapRequestError("name must not be empty")
        admin_port = data.get("adminPort", 0)
        if admin_port is None:
            admin_port = 0
        if isinstance(admin_port, bool) or not isinstance(admin_port, int):
            raise BootstrapRequestError("adminPort must be an integer")
        if not 0 <= admin_port <= _MAX_PORT:
            raise BootstrapRequestError(f"adminPort must be in the range [0, {_MAX_PORT}]")
        token_path = _string(data, "dataplaneTokenPath")
        token = _string(data, "dataplaneToken").strip()
        if not all("!" <= ch <= "~" for ch in token):
            # it becomes an HTTP/2 header value: visible ASCII only (a JWT is base64url and dots)
            raise BootstrapRequestError("dataplaneToken must be visible ASCII text")
        return cls(mesh, name, admin_port, token_path, token)


def _string(data: dict[str, Any], key: str) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BootstrapRequestError(f"{key} must be a string")
    return value
