"""What every kumactl command shares: the global flags, the configuration, the API clients.

`Runtime` holds what tests inject (the clock, the time zone of printed dates, the version);
`Kumactl` is built once per run from it and handed to commands as click's `obj`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import sys
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from kuma.cli.client import ApiClient, RemoteStore
from kuma.cli.config import (
    Configuration,
    Context,
    ControlPlane,
    default_config_file,
    load_config,
    save_config,
)
from kuma.cli.errors import KumactlError
from kuma.cli.framework import persistent
from kuma.version import __version__

__all__ = ["Kumactl", "Runtime", "kumactl_of"]

log = logging.getLogger("kumactl")

LOG_LEVELS = {"off": None, "info": logging.INFO, "debug": logging.DEBUG}


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Runtime:
    """Injected dependencies: tests pin the clock and the zone of printed dates."""

    now: Callable[[], dt.datetime] = _utcnow
    tz: dt.tzinfo | None = None
    """Zone of `CERT EXPIRATION` dates; None is the machine's local zone (like Go's time.Local)."""
    version: str = __version__
    """kumactl's version, compared with the control plane's `GET /` version."""


@dataclass
class Kumactl:
    runtime: Runtime = field(default_factory=Runtime)
    config_file: Path | None = None
    mesh: str = "default"
    config: Configuration = field(default_factory=Configuration)
    _api: ApiClient | None = None
    _admin: ApiClient | None = None
    _version_checked: bool = False

    # -- the root command's pre-run (cobra's PersistentPreRunE) -------------------------------

    def pre_run(self, ctx: click.Context) -> None:
        ctx.find_root().call_on_close(self.close)
        level = persistent(ctx, "log_level")
        if level not in LOG_LEVELS:
            raise KumactlError(f'unknown log level "{level}"')
        _configure_logging(LOG_LEVELS[level])
        explicit = persistent(ctx, "config_file")
        self.config_file = Path(explicit) if explicit else None
        self.mesh = persistent(ctx, "mesh") or "default"
        path = self.config_path
        if not path.exists():
            self.config = Configuration.default()
            save_config(path, self.config)
        self.config = load_config(path)

    @property
    def config_path(self) -> Path:
        return self.config_file if self.config_file is not None else default_config_file()

    def save_config(self) -> None:
        save_config(self.config_path, self.config)

    def now(self) -> dt.datetime:
        return self.runtime.now()

    # -- the current control plane -------------------------------------------------------------

    def current_context(self) -> Context:
        if not self.config.current_context:
            raise KumactlError(
                "active Control Plane is not set. Use `kumactl config control-planes add` to add "
                "a Control Plane and make it active"
            )
        ctx = self.config.get_context(self.config.current_context)
        if ctx is None:
            raise _broken_config()
        return ctx

    def current_control_plane(self) -> ControlPlane:
        cp = self.config.get_control_plane(self.current_context().control_plane)
        if cp is None:
            raise _broken_config()
        return cp

    def api_client(self) -> ApiClient:
        """The API server client; the first call also checks the server's version."""
        if self._api is None:
            self._api = ApiClient(self.current_control_plane().url)
        if not self._version_checked:
            self._version_checked = True
            self._warn_on_version_mismatch(self._api)
        return self._api

    def _warn_on_version_mismatch(self, client: ApiClient) -> None:
        try:
            body = client.get_json("/")
        except KumactlError as e:
            log.info("Unable to get index client: %s", e.message)
            return
        cp_version = body.get("version") if isinstance(body, dict) else None
        if isinstance(cp_version, str) and cp_version != self.runtime.version:
            click.echo(
                f"Warning: Your kumactl version is {self.runtime.version} which is not the same "
                f"as {cp_version} for CP. Update your kumactl.",
                err=True,
            )

    def resource_store(self) -> RemoteStore:
        return RemoteStore(self.api_client())

    def admin_store(self) -> RemoteStore:
        """The admin server (Secrets), found through the API server's `/catalog`."""
        if self._admin is None:
            self._admin = self._admin_client()
        return RemoteStore(self._admin)

    def _admin_client(self) -> ApiClient:
        catalog = self.api_client().get_json("/catalog")
        apis = catalog.get("apis", {}) if isinstance(catalog, dict) else {}
        admin = apis.get("admin") or {}
        context = self.current_context()
        credentials = context.admin_api
        if self._cp_on_this_machine():
            url = admin.get("localUrl") or ""
        else:
            client_ok = credentials is not None and credentials.has_client_cert
            server_ok = bool(admin.get("publicUrl"))
            reason = ""
            if not client_ok and server_ok:
                reason = "admin server in kuma-cp is configured with TLS and kumactl is not."
            elif client_ok and not server_ok:
                reason = "kumactl is configured with TLS and admin server in kuma-cp is not."
            elif not client_ok and not server_ok:
                reason = "both kumactl and admin server in kuma-cp are not configured with TLS."
            if reason:
                raise KumactlError(
                    "kumactl is trying to access admin server in remote machine but: "
                    f"{reason}. This can be solved in several ways:\n"
                    "1) Configure kuma-cp admin server with certificate and then use this "
                    "certificate to configure kumactl.\n"
                    "2) Use kumactl on the same machine as kuma-cp.\n"
                    "3) Use SSH port forwarding so that kuma-cp could be accessed on a remote "
                    "machine with kumactl on a loopback address."
                )
            url = (apis.get("dataplaneToken") or {}).get("publicUrl") or admin.get("publicUrl")
        if not isinstance(url, str) or not url:
            raise KumactlError("the Control Plane's catalog has no admin server address")
        cert: tuple[str, str] | None = None
        if url.startswith("https://"):
            if credentials is None or not credentials.has_client_cert:
                raise KumactlError("certificates has to be configured to use https destination")
            cert = (credentials.client_cert, credentials.client_key)
        return ApiClient(url, cert=cert)

    def _cp_on_this_machine(self) -> bool:
        url = urllib.parse.urlsplit(self.current_control_plane().url)
        host = url.hostname or ""
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError as e:
            raise KumactlError(
                f"could not determine if cp is on the same machine: lookup {host}: {e}"
            ) from None
        address = infos[0][4][0]
        return ipaddress.ip_address(str(address).split("%")[0]).is_loopback

    def close(self) -> None:
        """Close the HTTP clients (called when the run's click context closes)."""
        for client in (self._api, self._admin):
            if client is not None:
                client.close()
        self._api = self._admin = None
        self._version_checked = False


def _broken_config() -> KumactlError:
    return KumactlError(
        "apparently, configuration is broken. Use `kumactl config control-planes add` to add a "
        "Control Plane and make it active"
    )


def _configure_logging(level: int | None) -> None:
    logger = logging.getLogger("kumactl")
    logger.handlers.clear()
    logger.propagate = False
    if level is None:
        logger.setLevel(logging.CRITICAL + 1)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s\t%(levelname)s\t%(name)s\t%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


def kumactl_of(ctx: click.Context) -> Kumactl:
    """The run's Kumactl (click's `obj`); a default one when the caller passed none."""
    root = ctx.find_root()
    if not isinstance(root.obj, Kumactl):
        root.obj = Kumactl()
    obj: Kumactl = root.obj
    return obj
