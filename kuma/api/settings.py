"""What the REST API and admin server need from the control plane, as plain values.

`kuma.cp` builds these from the loaded config; tests build them directly. Keeping the API free of
the config module means the API can be served (and tested) with any settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AdminSettings", "ApiSettings"]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    version: str
    """kuma-py's version, served by `GET /` (kumactl compares it with its own)."""
    hostname: str
    """Served by `GET /` as `hostname`."""
    public_url: str = "http://localhost:5681"
    """Base of the `next` links of paged lists: `<public_url><path>?offset=..&size=..`."""
    read_only: bool = False
    """PUT and DELETE answer 405 with Kuma's read-only message (Kubernetes mode)."""
    mode: str = "standalone"
    """standalone, remote or global: picks the read-only message."""
    environment: str = "universal"
    cors_allowed_domains: tuple[str, ...] = (".*",)
    """Regexes matched against the request's Origin."""
    max_body_bytes: int = 1024 * 1024
    """Larger request bodies are refused with 413."""
    catalog: dict[str, Any] = field(default_factory=dict)
    """Body of `GET /catalog`."""
    config_json: Callable[[], dict[str, Any]] = dict
    """Effective control-plane config with secrets masked, for `GET /config`."""


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The admin server (127.0.0.1:5679): secrets and dataplane tokens."""

    max_body_bytes: int = 1024 * 1024
    """Larger request bodies are refused with 413."""
    read_only: bool = False
    """`apiServer.readOnly`: PUT and DELETE of secrets answer 405 (Kuma does not register them)."""
    dataplane_token_enabled: bool = True
    """`adminServer.apis.dataplaneToken.enabled`: serve `POST /tokens` (signed with the key in
    Secret `dataplane-token-signing-key` of mesh `default`); False: no such route (404)."""
