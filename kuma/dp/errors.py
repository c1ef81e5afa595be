"""Errors `kuma-dp run` reports to its user (`Error: <message>`, exit status 1)."""

from __future__ import annotations

__all__ = [
    "AdminPortError",
    "BootstrapError",
    "ControlPlaneUnreachableError",
    "DataplaneError",
    "DataplaneNotFoundError",
    "EnvoyNotFoundError",
    "TokenError",
]


class DataplaneError(Exception):
    """Base: kuma-dp cannot start or keep Envoy running; the message says why and what to do."""


class ControlPlaneUnreachableError(DataplaneError):
    """The control plane did not answer (in time, or sensibly) after every retry."""


class DataplaneNotFoundError(DataplaneError):
    """The bootstrap server does not know the dataplane (HTTP 404)."""


class BootstrapError(DataplaneError):
    """The bootstrap server refused the request (HTTP 400 or 422)."""


class AdminPortError(DataplaneError):
    """No free port for Envoy's admin API in the requested range."""


class TokenError(DataplaneError):
    """The control plane requires a dataplane token, and none (or an unreadable one) was given,
    or it refused the token given (HTTP 401 / 403 from the bootstrap server)."""


class EnvoyNotFoundError(DataplaneError):
    """No Envoy binary where kuma-dp looked."""
