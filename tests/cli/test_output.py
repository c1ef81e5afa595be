"""Cells and formats: Go's durations, dates, tag lists, yaml.v2-style YAML, Go-style JSON."""

from __future__ import annotations

import datetime as dt

import pytest

from kuma.cli.output import (
    OutputFormat,
    ago,
    date_cell,
    duration,
    go_time_string,
    tags_cell,
    time_since,
    to_json,
    to_yaml,
)

NOW = dt.datetime(2020, 10, 22, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.9, "0s"),
        (59.9, "59s"),
        (60, "1m"),
        (3599, "59m"),
        (3600, "1h"),
        (86399, "23h"),
        (86400, "1d"),
        (364 * 86400 + 86399, "364d"),
        (365 * 86400, "1y"),
        (3 * 365 * 86400 + 5, "3y"),
        (-0.5, "0s"),
        (-1.5, "0s"),
        (-2, "never"),
    ],
)
def test_duration_like_kumas_table_duration(seconds: float, text: str) -> None:
    assert duration(dt.timedelta(seconds=seconds)) == text


def test_unset_times() -> None:
    # Go's zero time is ~2020 years ago, beyond time.Duration's ~292 years: Kuma prints 292y.
    assert time_since(None, NOW) == "292y"
    assert ago(None, NOW) == "never"
    assert date_cell(None, dt.UTC) == "-"


def test_ago_and_dates() -> None:
    assert ago(NOW - dt.timedelta(hours=2, minutes=5), NOW) == "2h"
    assert ago(NOW + dt.timedelta(minutes=5), NOW) == "never"
    expiry = dt.datetime(2020, 5, 8, 8, 28, 22, tzinfo=dt.UTC)
    assert date_cell(expiry, dt.UTC) == "2020-05-08 08:28:22"
    assert date_cell(expiry, dt.timezone(dt.timedelta(hours=2))) == "2020-05-08 10:28:22"


def test_tags_are_merged_sorted_and_joined_like_multi_value_tag_set() -> None:
    # inspect-dataplanes.golden.txt: two inbounds, service=mobile/metrics and version=v1
    tags = [{"service": "mobile", "version": "v1"}, {"service": "metrics", "version": "v1"}]
    assert tags_cell(tags) == "service=metrics,mobile version=v1"
    # sorting is on the `k=v` strings, so "a.b=..." comes before "a=..." ('.' < '=')
    assert tags_cell([{"a": "1", "a.b": "2"}]) == "a.b=2 a=1"
    assert tags_cell([]) == ""


def test_go_time_strings() -> None:
    assert go_time_string(None) == "0001-01-01T00:00:00Z"
    assert go_time_string(dt.datetime(2020, 1, 2, 3, 4, 5, 120000, tzinfo=dt.UTC)) == (
        "2020-01-02T03:04:05.12Z"
    )


def test_yaml_is_sorted_and_quotes_like_yaml_v2() -> None:
    value = {
        "name": "sample",
        "creationTime": "1970-01-01T00:00:00Z",
        "tags": {"version": "1.0", "enabled": "true", "kuma.io/service": "web"},
        "list": [{"b": 1, "a": None}],
        "empty": {},
        "none": [],
        "text": "line one\nline two\n",
        "long": "x" * 200,
        "colon": "a: b",
        "star": "*",
        "y": "y",
        "exp": "1e3",
        "blank": "",
    }
    assert to_yaml(value) == (
        'blank: ""\n'
        "colon: 'a: b'\n"
        'creationTime: "1970-01-01T00:00:00Z"\n'
        "empty: {}\n"
        'exp: "1e3"\n'
        "list:\n"
        "- a: null\n"
        "  b: 1\n"
        f"long: {'x' * 200}\n"
        "name: sample\n"
        "none: []\n"
        "star: '*'\n"
        "tags:\n"
        '  enabled: "true"\n'
        "  kuma.io/service: web\n"
        '  version: "1.0"\n'
        "text: |\n"
        "  line one\n"
        "  line two\n"
        '"y": "y"\n'
    )


def test_json_is_indented_and_escaped_like_go() -> None:
    assert to_json({"total": 1, "items": [], "next": None, "html": "<a&b>", "ünï": "ß"}) == (
        "{\n"
        '  "total": 1,\n'
        '  "items": [],\n'
        '  "next": null,\n'
        '  "html": "\\u003ca\\u0026b\\u003e",\n'
        '  "ünï": "ß"\n'
        "}\n"
    )


def test_output_format_names() -> None:
    assert OutputFormat.parse("yaml") is OutputFormat.YAML
    with pytest.raises(ValueError, match='unknown output format "xml"'):
        OutputFormat.parse("xml")
