"""Go duration syntax in and out (time.ParseDuration / Duration.String())."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kuma.config import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("1s", timedelta(seconds=1)),
        ("500ms", timedelta(milliseconds=500)),
        ("72h", timedelta(hours=72)),
        ("72h0m0s", timedelta(hours=72)),
        ("1m30s", timedelta(seconds=90)),
        ("1.5h", timedelta(minutes=90)),
        ("1.s", timedelta(seconds=1)),
        (".5s", timedelta(milliseconds=500)),
        ("+2s", timedelta(seconds=2)),
        ("-1.5s", timedelta(seconds=-1.5)),
        ("1500us", timedelta(microseconds=1500)),
        ("1500µs", timedelta(microseconds=1500)),
        ("2000ns", timedelta(microseconds=2)),
        ("1h2m3s4ms", timedelta(hours=1, minutes=2, seconds=3, milliseconds=4)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("1", 'time: missing unit in duration "1"'),
        ("1.5", 'time: missing unit in duration "1.5"'),
        ("s", 'time: invalid duration "s"'),
        (".s", 'time: invalid duration ".s"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("1 s", 'time: unknown unit " s" in duration "1 s"'),
        ("--1s", 'time: invalid duration "--1s"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
    ],
)
def test_parse_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=1), "1s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(microseconds=1500), "1.5ms"),
        (timedelta(microseconds=5), "5µs"),
        (timedelta(seconds=1.5), "1.5s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(minutes=60), "1h0m0s"),
        (timedelta(hours=72), "72h0m0s"),
        (timedelta(hours=1, milliseconds=1), "1h0m0.001s"),
        (timedelta(seconds=-2), "-2s"),
        (timedelta(milliseconds=-500), "-500ms"),
    ],
)
def test_format_like_go(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value
