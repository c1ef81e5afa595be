"""The `kuma-cp` executable: Kuma 0.7.3's cobra command tree, on click.

    kuma-cp [--log-level off|info|debug] run [-c FILE]
    kuma-cp migrate up [-c FILE]
    kuma-cp version [-a]

`--log-level` is accepted before or after the subcommand (cobra's persistent flag). Errors
print `Error: <message>` on stderr and exit with status 1. As in Kuma (cobra's `Println`),
`version` and `migrate up` write their lines to stderr.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
import structlog

from kuma.cli_util import LOG_LEVELS, PRODUCT, echo_version, log_level_option, run_async, run_cli
from kuma.config import ConfigError, KumaCpConfig, load_config
from kuma.errors import KumaError
from kuma.logging import configure_logging
from kuma.version import __version__

__all__ = ["PRODUCT", "cli", "main"]


log = structlog.get_logger("kuma-cp")

F = TypeVar("F", bound=Callable[..., Any])


def _config_file_option() -> Callable[[F], F]:
    return click.option(
        "-c",
        "--config-file",
        "config_file",
        default="",
        metavar="string",
        help="configuration file",
    )


def _setup_logging(ctx: click.Context, level: str | None) -> None:
    """The subcommand's --log-level wins over the root's (cobra's persistent flag)."""
    root = ctx.find_root().params.get("log_level") or "info"
    chosen = level or root
    if chosen not in LOG_LEVELS:
        raise click.ClickException(f'unknown log level "{chosen}"')
    configure_logging(chosen, "console")


def _kuma_error(exc: BaseException) -> KumaError | None:
    """The KumaError behind `exc`, looking inside task-group exception groups."""
    if isinstance(exc, KumaError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _kuma_error(inner)
            if found is not None:
                return found
    return None


def _load(config_file: str) -> KumaCpConfig:
    try:
        return load_config(config_file or None)
    except ConfigError as e:
        log.error("could not load the configuration", error=str(e))
        raise click.ClickException(str(e)) from None


@click.group(
    name="kuma-cp",
    help="Universal Control Plane for Envoy-based Service Mesh.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
@log_level_option("info")
def cli(log_level: str) -> None:
    pass


@cli.command(help="Launch Control Plane.")
@_config_file_option()
@log_level_option(None)
@click.pass_context
def run(ctx: click.Context, config_file: str, log_level: str | None) -> None:
    _setup_logging(ctx, log_level)
    cfg = _load(config_file)
    from kuma.cp.run import run_control_plane

    try:
        run_async(run_control_plane, cfg)
    except (KumaError, BaseExceptionGroup) as e:
        error = _kuma_error(e)
        if error is None:
            raise
        log.error("problem running Control Plane", error=str(error))
        raise click.ClickException(str(error)) from None


@cli.group(
    help="Migrate database to which Control Plane is connected. The database holds every "
    'resource; its schema must match this kuma-cp, so run "kuma-cp migrate up" after upgrading.'
)
@log_level_option(None)
def migrate(log_level: str | None) -> None:
    pass


@migrate.command(help="Apply the newest schema changes to the database.")
@_config_file_option()
@log_level_option(None)
@click.pass_context
def up(ctx: click.Context, config_file: str, log_level: str | None) -> None:
    parent_level = ctx.parent.params.get("log_level") if ctx.parent else None
    _setup_logging(ctx, log_level or parent_level)
    cfg = _load(config_file)
    if cfg.store.type != "postgres":
        raise click.ClickException(
            f"migrations are not supported for {cfg.store.type.capitalize()} resource store "
            "(store.type must be postgres: there is no database to migrate)"
        )
    from kuma.cp.run import postgres_options
    from kuma.store.postgres import migrate_up

    try:
        result = run_async(migrate_up, **postgres_options(cfg))
    except KumaError as e:
        raise click.ClickException(str(e)) from None
    if result.already_migrated:
        click.echo(f"DB has already been migrated for {PRODUCT} {__version__}", err=True)
    else:
        click.echo(f"DB has been migrated for {PRODUCT} {__version__}", err=True)


@cli.command(help="Print version.")
@click.option("-a", "--detailed", is_flag=True, help="Print detailed version")
@log_level_option(None)
@click.pass_context
def version(ctx: click.Context, detailed: bool, log_level: str | None) -> None:
    _setup_logging(ctx, log_level)
    echo_version(detailed)


def main() -> None:
    """Console-script entry point (`kuma-cp`): every error exits with status 1, as cobra's."""
    run_cli(cli, "kuma-cp")
