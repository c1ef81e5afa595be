"""The `kuma-prometheus-sd` executable: Kuma 0.7.3's cobra command tree, on click.

    kuma-prometheus-sd [--log-level off|info|debug] run [--cp-address URL] [--name NAME]
                       [--output-file PATH]
    kuma-prometheus-sd version [-a]

Every `run` flag has a `KUMA_*` environment variable (kuma/sd/config.py, docs/observability.md);
a flag beats its variable. `--log-level` is accepted before or after the subcommand. `run`
works until SIGINT or SIGTERM (then exits with status 0). It exits with status 1 and
`Error: <message>` on stderr when the configuration is invalid, the output file cannot be
written, or the control plane's catalog cannot be read at start.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import click
import structlog

from kuma.cli_util import (
    LOG_LEVELS,
    apply_log_level,
    echo_version,
    log_level_option,
    run_async,
    run_cli,
)
from kuma.sd.config import SETTINGS, ConfigError, SdConfig, load_config
from kuma.sd.filesd import OutputFileError
from kuma.sd.run import CatalogError, run_sd

__all__ = ["LOG_LEVELS", "cli", "main", "serve"]


log = structlog.get_logger("kuma-prometheus-sd")


F = TypeVar("F", bound=Callable[..., Any])


def _setting_options(fn: F) -> F:
    defaults = SdConfig()
    for setting in reversed(SETTINGS):
        default = getattr(defaults, setting.field)
        fn = click.option(
            setting.flag,
            setting.field,
            default=None,
            metavar="string",
            help=f'{setting.help} (default "{default}") [env: {setting.env}]',
        )(fn)
    return fn


async def serve(cfg: SdConfig) -> None:
    """`run_sd` until SIGINT/SIGTERM. Raises CatalogError / OutputFileError from start-up."""
    failure: Exception | None = None

    async with anyio.create_task_group() as tg:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.info(
                        "stop signal received, shutting down", signal=signal.Signals(signum).name
                    )
                    tg.cancel_scope.cancel()
                    return

        async def sd() -> None:
            nonlocal failure
            try:
                await run_sd(cfg)
            except (CatalogError, OutputFileError) as e:
                failure = e
            tg.cancel_scope.cancel()

        tg.start_soon(watch_signals)
        tg.start_soon(sd)
    if failure is not None:
        raise failure


@click.group(
    name="kuma-prometheus-sd",
    help="Prometheus service discovery adapter for native integration with Kuma.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@log_level_option("info")
def cli(log_level: str) -> None:
    pass


@cli.command(
    help="Launch Kuma Prometheus SD adapter.\n\nReads the Catalog of Kuma APIs at --cp-address, "
    "subscribes to the Monitoring Assignment Discovery Service it names, and keeps "
    "--output-file (a Prometheus file_sd file) up to date with every dataplane to scrape. "
    "Runs until SIGINT or SIGTERM."
)
@_setting_options
@log_level_option(None)
@click.pass_context
def run(ctx: click.Context, /, log_level: str | None, **flags: str | None) -> None:
    apply_log_level(ctx, log_level)
    try:
        cfg = load_config(flags)
    except ConfigError as e:
        log.error("unable to load configuration", error=str(e))
        raise click.ClickException(str(e)) from None
    try:
        run_async(serve, cfg)
    except (CatalogError, OutputFileError) as e:
        log.error("unable to start", error=str(e))
        raise click.ClickException(str(e)) from None


@cli.command(help="Print version.")
@click.option("-a", "--detailed", is_flag=True, help="Print detailed version")
@log_level_option(None)
@click.pass_context
def version(ctx: click.Context, detailed: bool, log_level: str | None) -> None:
    apply_log_level(ctx, log_level)
    echo_version(detailed)


def main() -> None:
    """Console-script entry point (`kuma-prometheus-sd`)."""
    run_cli(cli, "kuma-prometheus-sd")
