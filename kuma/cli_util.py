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
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import anyio

__all__ = ["async_command", "run_async"]

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
