"""Durations the way Kuma writes them: Go's `time.ParseDuration` syntax and `Duration.String()`.

Kuma's config takes durations as Go strings (`1s`, `500ms`, `72h`, `1m30s`, `-1.5h`) and prints
them back with Go's formatting (`72h0m0s`, `1m30s`, `500ms`, `0s`). kuma-py keeps them as
`datetime.timedelta`, so precision is one microsecond: a nanosecond part is truncated.
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["format_duration", "parse_duration"]

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX_NS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds
_COMPONENT = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_duration(text: str) -> timedelta:
    """Parse Go duration syntax: an optional sign, then one or more `<number><unit>` parts.

    Units are ns, us (µs), ms, s, m, h; numbers may have a fraction (`1.5h`). A bare `0` is
    allowed. Raises ValueError with Go's wording (`time: invalid duration "x"`) otherwise.
    """
    original = text
    quoted = '"' + original + '"'
    sign = 1
    if text[:1] in ("-", "+"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return timedelta(0)
    if not text:
        raise ValueError(f"time: invalid duration {quoted}")
    total_ns = 0
    pos = 0
    while pos < len(text):
        match = _COMPONENT.match(text, pos)
        if match is None or match.end() == pos:  # pragma: no cover - the pattern always matches
            raise ValueError(f"time: invalid duration {quoted}")
        whole, frac, unit = match.group(1), match.group(2), match.group(3)
        if not whole and not frac:
            # "1.s" is fine in Go, ".s" and "s" are not
            raise ValueError(f"time: invalid duration {quoted}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _NS_PER_UNIT:
            raise ValueError(f'time: unknown unit "{unit}" in duration {quoted}')
        scale = _NS_PER_UNIT[unit]
        ns = int(whole or "0") * scale
        if frac:
            ns += int(frac) * scale // 10 ** len(frac)
        total_ns += ns
        if total_ns > _MAX_NS:
            raise ValueError(f"time: invalid duration {quoted}")
        pos = match.end()
    return timedelta(microseconds=sign * (total_ns // 1_000))


def _frac(value: int, digits: int) -> tuple[str, int]:
    """The `.fraction` of value / 10**digits without trailing zeros, and the integer part."""
    scale = 10**digits
    whole, rest = divmod(value, scale)
    if rest == 0:
        return "", whole
    text = str(rest).rjust(digits, "0").rstrip("0")
    return "." + text, whole


def format_duration(value: timedelta) -> str:
    """Go's `time.Duration.String()`: `0s`, `500ms`, `1.5s`, `1m30s`, `72h0m0s`, `-2s`."""
    ns = (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 1_000_000_000:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            frac, whole = _frac(u, 3)
            return f"{sign}{whole}{frac}µs"
        frac, whole = _frac(u, 6)
        return f"{sign}{whole}{frac}ms"
    frac, seconds = _frac(u, 9)
    out = f"{seconds % 60}{frac}s"
    minutes = seconds // 60
    if minutes > 0:
        out = f"{minutes % 60}m{out}"
        hours = minutes // 60
        if hours > 0:
            out = f"{hours}h{out}"
    return sign + out
