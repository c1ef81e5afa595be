"""The `kuma-dp` executable: Kuma 0.7.3's cobra command tree, on click.

    kuma-dp [--log-level off|info|debug] run --name NAME [--mesh MESH] [--cp-address URL] ...
    kuma-dp version [-a]

Every `run` flag has a `KUMA_*` environment variable (see kuma/dp/config.py and
docs/kuma-dp.md); a flag beats its variable. `--log-level` is accepted before or after the
subcommand. `run` exits with Envoy's exit status; when Envoy cannot be started it prints
`Error: <message>` on stderr and exits with status 1, as do usage errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
import structlog

from kuma.cli_util import (
    LOG_LEVELS,
    PRODUCT,
    apply_log_level,
    echo_version,
    log_level_option,
    run_async,
    run_cli,
)
from kuma.dp.config import SETTINGS, ConfigError, default_text, load_config
from kuma.dp.errors import DataplaneError

__all__ = ["LOG_LEVELS", "PRODUCT", "cli", "main"]


log = structlog.get_logger("kuma-dp")


F = TypeVar("F", bound=Callable[..., Any])


def _setting_options(fn: F) -> F:
    for setting in reversed([s for s in SETTINGS if s.flag]):
        assert setting.flag is not None
        default = default_text(setting)
        fn = click.option(
            setting.flag,
            setting.field,
            default=None,
            metavar="string",
            help=setting.help
            + (f' (default "{default}")' if default else "")
            + f" [env: {setting.env}]",
        )(fn)
    return fn


def _dataplane_error(exc: BaseException) -> DataplaneError | None:
    """The DataplaneError behind `exc`, looking inside task-group exception groups."""
    if isinstance(exc, DataplaneError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _dataplane_error(inner)
            if found is not None:
                return found
    return None


@click.group(
    name="kuma-dp",
    help="Dataplane manager for Envoy-based Service Mesh.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@log_level_option("info")
def cli(log_level: str) -> None:
    pass


@cli.command(
    help="Launch Dataplane (Envoy).\n\nFetches the Envoy bootstrap for the Dataplane --name in "
    "--mesh from the Control Plane at --cp-address, then runs Envoy until it exits (SIGINT and "
    "SIGTERM are passed on to Envoy). Exits with Envoy's exit status."
)
@_setting_options
@log_level_option(None)
@click.pass_context
def run(ctx: click.Context, /, log_level: str | None, **flags: str | None) -> int:
    level = apply_log_level(ctx, log_level)
    try:
        cfg = load_config(flags)
    except ConfigError as e:
        log.error("unable to load configuration", error=str(e))
        raise click.ClickException(str(e)) from None
    from kuma.dp.accesslogs import access_log_server
    from kuma.dp.run import run_dataplane

    try:
        return run_async(run_dataplane, cfg, log_level=level, services=(access_log_server,))
    except (DataplaneError, BaseExceptionGroup) as e:
        error = _dataplane_error(e)
        if error is None:
            raise
        log.error("error while running Kuma DP", error=str(error))
        raise click.ClickException(str(error)) from None


@cli.command(help="Print version.")
@click.option("-a", "--detailed", is_flag=True, help="Print detailed version")
@log_level_option(None)
@click.pass_context
def version(ctx: click.Context, detailed: bool, log_level: str | None) -> None:
    apply_log_level(ctx, log_level)
    echo_version(detailed)


def main() -> None:
    """Console-script entry point (`kuma-dp`)."""
    run_cli(cli, "kuma-dp")
