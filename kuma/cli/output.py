"""kumactl's output formats: tables, YAML and JSON, and the cells that go into tables.

* YAML is what Go's `ghodss/yaml` (yaml.v2 underneath) prints: keys sorted, block style,
  sequences not indented under their key, strings that would read back as another type
  (`"true"`, `"1"`, `"2020-10-22T10:00:00Z"`) in double quotes, multi-line strings as literal
  blocks, and no line wrapping.
* JSON is Go's `json.MarshalIndent(v, "", "  ")`: two-space indent, keys in the order given,
  `<`, `>`, `&`, U+2028 and U+2029 escaped, other non-ASCII text kept as it is.
* Durations (`AGE`, `... AGO`) are Go's `table.Duration`: whole seconds, minutes, hours, days
  or years, truncated; values below -1s print `never`. Go's durations saturate at about 292
  years, so an unset (year 1) time prints `292y` as in Kuma.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

import yaml

from kuma.cli.tabwriter import format_table

__all__ = [
    "OutputFormat",
    "ago",
    "date_cell",
    "duration",
    "format_table",
    "go_time_string",
    "tags_cell",
    "time_since",
    "to_json",
    "to_yaml",
]

ZERO_TIME = dt.datetime(1, 1, 1, tzinfo=dt.UTC)
_MAX_GO_DURATION_US = (2**63 - 1) // 1000


class OutputFormat(StrEnum):
    TABLE = "table"
    YAML = "yaml"
    JSON = "json"

    @classmethod
    def parse(cls, text: str) -> OutputFormat:
        """The format named `text`; ValueError with kumactl's message otherwise."""
        for f in cls:
            if f.value == text:
                return f
        raise ValueError(f"unknown output format {json.dumps(text)}")


# -- YAML ------------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    pass


_STR_TAG = "tag:yaml.org,2002:str"
# PyYAML-only implicit types (`=`, `!`, `&`, `*`): plain strings to yaml.v2.
_NOT_TYPES_IN_YAML_V2 = {_STR_TAG, "tag:yaml.org,2002:yaml", "tag:yaml.org,2002:value"}


def _looks_typed_to_yaml_v2(dumper: _Dumper, data: str) -> bool:
    """Would yaml.v2 read this plain scalar back as something other than a string?"""
    if data in ("y", "Y", "n", "N"):  # YAML 1.1 booleans PyYAML does not know
        return True
    if data[:1] in tuple("+-.0123456789"):
        try:
            float(data.replace("_", ""))
        except ValueError:
            pass
        else:
            return True
    resolved = dumper.resolve(yaml.ScalarNode, data, (True, False))  # type: ignore[no-untyped-call]
    return resolved not in _NOT_TYPES_IN_YAML_V2


def _represent_str(dumper: _Dumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar(_STR_TAG, data, style="|")
    # yaml.v2 double-quotes a string whose plain form would read back as another type; anything
    # else it asks to be plain and lets the emitter fall back to single quotes if it must.
    if _looks_typed_to_yaml_v2(dumper, data):
        return dumper.represent_scalar(_STR_TAG, data, style='"')
    return dumper.represent_scalar(_STR_TAG, data)


def _represent_dict(dumper: _Dumper, data: dict[Any, Any]) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", sorted(data.items()))


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(dict, _represent_dict)


def to_yaml(value: Any) -> str:
    """YAML text of a JSON-like value (dicts, lists, str, int, float, bool, None)."""
    return yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=False,
        allow_unicode=True,
        width=2**31 - 1,
        sort_keys=True,
    )


# -- JSON ------------------------------------------------------------------------------------

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def to_json(value: Any) -> str:
    """Indented JSON text with a trailing newline, escaped like Go's encoding/json."""
    return json.dumps(value, indent=2, ensure_ascii=False).translate(_GO_ESCAPES) + "\n"


# -- cells -----------------------------------------------------------------------------------


def go_time_string(value: dt.datetime | None) -> str:
    """A time the way Go's time.Time marshals to JSON (RFC 3339, trailing zeros trimmed)."""
    value = value or ZERO_TIME
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.year < 1000:
        base = f"{value.year:04d}" + base[base.index("-") :]
    if value.microsecond:
        base += f".{value.microsecond:06d}".rstrip("0")
    return base + "Z"


def _go_sub(now: dt.datetime, then: dt.datetime) -> dt.timedelta:
    """now - then, saturated to Go's time.Duration range like Go's Time.Sub."""
    if then.tzinfo is None:
        then = then.replace(tzinfo=dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    delta = now - then
    us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    us = max(-_MAX_GO_DURATION_US, min(_MAX_GO_DURATION_US, us))
    return dt.timedelta(microseconds=us)


def _trunc(value: float) -> int:
    return int(value)  # toward zero, like Go's int(float64)


def duration(delta: dt.timedelta) -> str:
    """`Ns`, `Nm`, `Nh`, `Nd` or `Ny`; `0s` just below zero, `never` further below."""
    total = delta.total_seconds()
    seconds = _trunc(total)
    if seconds < -1:
        return "never"
    if seconds < 0:
        return "0s"
    if seconds < 60:
        return f"{seconds}s"
    minutes = _trunc(total / 60)
    if minutes < 60:
        return f"{minutes}m"
    hours = _trunc(total / 3600)
    if hours < 24:
        return f"{hours}h"
    if hours < 24 * 365:
        return f"{hours // 24}d"
    return f"{_trunc(total / 3600 / 24 / 365)}y"


def time_since(then: dt.datetime | None, now: dt.datetime) -> str:
    """The AGE cell: an unset time counts as Go's zero time (year 1)."""
    return duration(_go_sub(now, then or ZERO_TIME))


def ago(then: dt.datetime | None, now: dt.datetime) -> str:
    """`... AGO` cells: `never` when the time is unknown."""
    if then is None:
        return "never"
    return duration(_go_sub(now, then))


def date_cell(value: dt.datetime | None, tz: dt.tzinfo | None) -> str:
    """`2006-01-02 15:04:05` in the given zone (None: the machine's local zone), `-` if unset."""
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def tags_cell(tag_maps: Iterable[dict[str, str]]) -> str:
    """Tags of many inbounds as `k=v1,v2 k2=v` (values sorted, then `k=...` strings sorted)."""
    merged: dict[str, set[str]] = {}
    for tags in tag_maps:
        for key, value in tags.items():
            merged.setdefault(key, set()).add(value)
    return " ".join(sorted(f"{k}={','.join(sorted(vs))}" for k, vs in merged.items()))


def table(
    headers: Sequence[str],
    items: Iterable[Any],
    row: Callable[[Any], Sequence[str]],
    footer: str = "",
) -> str:
    return format_table(headers, (row(item) for item in items), footer)
