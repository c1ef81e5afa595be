"""kuma-prometheus-sd's configuration: flags and Kuma 0.7.3's environment variables, no file.

    cfg = load_config({"cp_address": "http://kuma-cp:5681"}, os.environ)

| flag            | environment variable                    | default                 |
|-----------------|-----------------------------------------|-------------------------|
| `--cp-address`  | `KUMA_CONTROL_PLANE_API_SERVER_URL`     | `http://localhost:5681` |
| `--name`        | `KUMA_MONITORING_ASSIGNMENT_CLIENT_NAME`| `kuma_sd`               |
| `--output-file` | `KUMA_PROMETHEUS_OUTPUT_FILE`           | `kuma.file_sd.json`     |

A flag given on the command line wins over its environment variable, which wins over the
default (as for kuma-dp; Kuma 0.7.3 lets the variable win). Validation messages use Kuma's
config paths (`.ControlPlane.ApiServer.URL must be non-empty`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

__all__ = ["SETTINGS", "ConfigError", "SdConfig", "Setting", "load_config"]


class ConfigError(ValueError):
    """kuma-prometheus-sd cannot start with these settings; the message names every problem."""


@dataclass(frozen=True, slots=True)
class SdConfig:
    """Everything `kuma-prometheus-sd run` needs, after flags, environment and defaults."""

    cp_address: str = "http://localhost:5681"
    """URL of kuma-cp's API server; its `/catalog` names the MADS server."""
    name: str = "kuma_sd"
    """The xDS node id this adapter sends to the MADS server."""
    output_file: str = "kuma.file_sd.json"
    """The file_sd JSON file Prometheus reads (its directory is created if missing)."""

    def to_json_dict(self) -> dict[str, Any]:
        """Kuma's effective-configuration shape (logged at start)."""
        return {
            "controlPlane": {"apiServer": {"url": self.cp_address}},
            "monitoringAssignment": {"client": {"name": self.name}},
            "prometheus": {"outputFile": self.output_file},
        }


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: the config field, its flag, environment variable, help and Kuma path."""

    field: str
    flag: str
    env: str
    help: str
    kuma_path: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "cp_address",
        "--cp-address",
        "KUMA_CONTROL_PLANE_API_SERVER_URL",
        "URL of the Control Plane API Server",
        ".ControlPlane.ApiServer.URL",
    ),
    Setting(
        "name",
        "--name",
        "KUMA_MONITORING_ASSIGNMENT_CLIENT_NAME",
        "Name to use to identify itself to the Monitoring Assignment server.",
        ".MonitoringAssignment.Client.Name",
    ),
    Setting(
        "output_file",
        "--output-file",
        "KUMA_PROMETHEUS_OUTPUT_FILE",
        "Path to an output file with a list of scrape targets. The same file path must be used "
        "on Prometheus side in a configuration of `file_sd` discovery mechanism.",
        ".Prometheus.OutputFile",
    ),
)
"""Every setting, in the order `kuma-prometheus-sd run --help` and the docs list them."""


def load_config(flags: Mapping[str, str | None], env: Mapping[str, str] | None = None) -> SdConfig:
    """Merge `flags` (field name -> text, None when not given), `env` (default: os.environ)
    and the defaults, then validate. Raises ConfigError naming every problem."""
    environ = os.environ if env is None else env
    values: dict[str, str] = {}
    for s in SETTINGS:
        raw = flags.get(s.field)
        if raw is None:
            raw = environ.get(s.env)
        if raw is not None:
            values[s.field] = raw
    cfg = SdConfig(**values)
    _validate(cfg)
    return cfg


def _problem(field_name: str, message: str) -> str:
    s = next(s for s in SETTINGS if s.field == field_name)
    return f"{s.kuma_path} {message} (set {s.flag} or {s.env})"


def _is_http_url(text: str) -> bool:
    try:
        url = urlsplit(text)
        _ = url.port  # raises for a port that is not a number in 0-65535
    except ValueError:
        return False
    return url.scheme in ("http", "https") and bool(url.hostname)


def _validate(cfg: SdConfig) -> None:
    problems: list[str] = []
    if not cfg.cp_address:
        problems.append(_problem("cp_address", "must be non-empty"))
    else:
        if not _is_http_url(cfg.cp_address):
            problems.append(
                _problem(
                    "cp_address",
                    f'must be a valid absolute URI (http:// or https://), got "{cfg.cp_address}"',
                )
            )
    if not cfg.name:
        problems.append(_problem("name", "must be non-empty"))
    if not cfg.output_file:
        problems.append(_problem("output_file", "must be non-empty"))
    if problems:
        raise ConfigError("Invalid configuration: " + "; ".join(problems))
