"""kuma.logging: levels and formats of every executable's logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from kuma.logging import configure_logging


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "kuma-structlog":
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)


@pytest.mark.parametrize(
    ("level", "seen"),
    [
        ("debug", ["dbg", "inf", "std-info", "err"]),
        ("info", ["inf", "std-info", "err"]),
        ("off", []),
    ],
)
def test_levels(level: str, seen: list[str]) -> None:
    out = io.StringIO()
    configure_logging(level, "json", stream=out)
    log = structlog.get_logger("test")
    log.debug("dbg")
    log.info("inf", mesh="default")
    logging.getLogger("kuma.tests.stdlib").info("std-info")
    log.error("err")
    events = [json.loads(line)["event"] for line in out.getvalue().splitlines()]
    assert events == seen


def test_json_lines_carry_key_values() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    structlog.get_logger().info("listening", server="api", address="[::]:5681")
    record = json.loads(out.getvalue())
    assert record["event"] == "listening"
    assert record["server"] == "api"
    assert record["level"] == "info"
    assert "timestamp" in record


def test_console_format() -> None:
    out = io.StringIO()
    configure_logging("info", "console", stream=out)
    structlog.get_logger().info("listening", server="api")
    line = out.getvalue()
    assert "listening" in line
    assert "server=api" in line


@pytest.mark.parametrize(("level", "fmt"), [("verbose", "console"), ("info", "xml")])
def test_rejects_unknown(level: str, fmt: str) -> None:
    with pytest.raises(ValueError):
        configure_logging(level, fmt)  # type: ignore[arg-type]
