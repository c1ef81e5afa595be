"""Running async click commands: the one adapter between click and anyio.

    @click.command()
    @click.option("--name")
    @async_command
    async def hello(name: str) -> None:
        await anyio.sleep(0)

The wrapped coroutine function runs under `anyio.run` on the asyncio backend (kuma-py's
runtime); click sees a plain function with the same parameters.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import anyio
import click

from kuma.logging import configure_logging
from kuma.version import BUILD_DATE, GIT_COMMIT, GIT_TAG, __version__

__all__ = [
    "LOG_LEVELS",
    "PRODUCT",
    "apply_log_level",
    "async_command",
    "echo_version",
    "log_level_option",
    "run_async",
    "run_cli",
]

PRODUCT = "Kuma"

P = ParamSpec("P")
T = TypeVar("T")


def run_async(fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` to completion in a fresh asyncio event loop."""

    async def main() -> T:
        return await fn(*args, **kwargs)

    return anyio.run(main, backend="asyncio")


def async_command(fn: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Turn an async function into a sync one that click can call (see module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        return run_async(fn, *args, **kwargs)

    return wrapper


def echo_version(detailed: bool) -> None:
    """`<binary> version [-a]`, as Kuma prints it (on stderr: cobra's cmd.Println)."""
    if not detailed:
        click.echo(f"{PRODUCT}: {__version__}", err=True)
        return
    for label, value in (
        ("Product:   ", PRODUCT),
        ("Version:   ", __version__),
        ("Git Tag:   ", GIT_TAG),
        ("Git Commit:", GIT_COMMIT),
        ("Build Date:", BUILD_DATE),
    ):
        click.echo(f"{label} {value}", err=True)


def run_cli(cli: click.Command, prog_name: str) -> NoReturn:
    """Console-script entry point: run `cli`; every error exits with status 1, as cobra's do;
    an int a command returns is the exit status."""
    try:
        result = cli.main(prog_name=prog_name, standalone_mode=False)
    except click.ClickException as e:
        e.show()
        sys.exit(1)
    except (click.Abort, KeyboardInterrupt):  # Ctrl-C before a command handles signals itself
        click.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)


LOG_LEVELS = ("off", "info", "debug")
"""The `--log-level` values of kuma-dp and kuma-prometheus-sd (Kuma's)."""

F = TypeVar("F", bound=Callable[..., Any])


def log_level_option(default: str | None) -> Callable[[F], F]:
    """`--log-level`, on the root command (`default` set) and again on subcommands (None)."""
    return click.option(
        "--log-level",
        "log_level",
        default=default,
        metavar="string",
        help=f"log level: one of {'|'.join(LOG_LEVELS)}"
        + (f' (default "{default}")' if default else ""),
    )


def apply_log_level(ctx: click.Context, level: str | None) -> str:
    """Configure logging at the chosen level and return it. The subcommand's --log-level wins
    over the root's (cobra's persistent flag). Below debug, httpx's one line per request to the
    control plane is silenced."""
    chosen = level or ctx.find_root().params.get("log_level") or "info"
    if chosen not in LOG_LEVELS:
        raise click.ClickException(
            f'unknown log level "{chosen}": use one of {", ".join(LOG_LEVELS)}'
        )
    configure_logging(chosen, "console")
    if chosen != "debug":
        logging.getLogger("httpx").setLevel(logging.WARNING)
    return str(chosen)
