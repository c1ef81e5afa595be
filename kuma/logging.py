"""Logging for every kuma-py executable: structlog key-value events, console or JSON, on stderr.

    configure_logging("info")                 # kuma-cp --log-level info (the default)
    configure_logging("debug", "json")
    log = structlog.get_logger("kuma-cp")
    log.info("listening", server="api", address="0.0.0.0:5681")

Levels follow Kuma's `--log-level`: `off`, `info`, `debug` (`warning` and `error` are accepted
too). Records from the standard `logging` module (hypercorn, asyncpg) are rendered the same
way, at the same level.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog

__all__ = ["LEVELS", "LogFormat", "configure_logging"]

LogFormat = Literal["console", "json"]

LEVELS: dict[str, int] = {
    "off": logging.CRITICAL + 10,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}
"""Accepted level names and the `logging` level each one means (`off` silences everything)."""

_HANDLER_NAME = "kuma-structlog"


def _drop(_logger: Any, _method: str, _event: Any) -> Any:
    raise structlog.DropEvent


def configure_logging(
    level: str, fmt: LogFormat = "console", *, stream: TextIO | None = None
) -> None:
    """Route structlog and standard-library logging to `stream` (default: stderr).

    Raises ValueError for an unknown level or format. Safe to call more than once (the last
    call wins), which tests rely on.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    if fmt not in ("console", "json"):
        raise ValueError(f"unknown log format {fmt!r}: use console or json")
    out = stream if stream is not None else sys.stderr
    threshold = LEVELS[level]
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    processors: list[Any] = [*shared, structlog.processors.StackInfoRenderer(), renderer]
    if level == "off":
        processors = [_drop]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(min(threshold, logging.CRITICAL)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
