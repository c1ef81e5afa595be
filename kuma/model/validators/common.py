"""Rules and helpers shared by all resource types."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import betterproto2

from kuma.errors import ValidationError
from kuma.model import codec
from kuma.model.validation import Path, Violations
from kuma.model.validators.golang import go_quote

__all__ = [
    "NAME_MESSAGE",
    "NAME_RE",
    "allowed_values_hint",
    "key",
    "sorted_keys",
    "to_typed",
    "validate_duration",
    "validate_meta",
    "validate_threshold",
]

M = TypeVar("M", bound=betterproto2.Message)

NAME_RE = re.compile(r"^[0-9a-z-_]*$")
NAME_MESSAGE = "invalid characters. Valid characters are numbers, lowercase latin letters and '-', '_' symbols."


MAX_NAME_LENGTH = 100
"""Longest name or mesh name: the PostgreSQL store's columns are varchar(100), as Kuma's are.
Kuma itself lets longer names reach the database and fail there; kuma-py refuses them up front
on every store, so a resource valid on memory stays valid on PostgreSQL."""
LENGTH_MESSAGE = f"cannot be longer than {MAX_NAME_LENGTH} characters"


def validate_meta(name: str, mesh: str, *, mesh_scoped: bool = True) -> ValidationError | None:
    """Names (and, for mesh-scoped types, mesh names) must match `^[0-9a-z-_]*$` and be at
    most MAX_NAME_LENGTH characters."""
    errs = Violations()
    if not name:
        errs.add("name", "cannot be empty")
    elif not NAME_RE.match(name):
        errs.add("name", NAME_MESSAGE)
    elif len(name) > MAX_NAME_LENGTH:
        errs.add("name", LENGTH_MESSAGE)
    if mesh_scoped:
        if not mesh:
            errs.add("mesh", "cannot be empty")
        elif not NAME_RE.match(mesh):
            errs.add("mesh", NAME_MESSAGE)
        elif len(mesh) > MAX_NAME_LENGTH:
            errs.add("mesh", LENGTH_MESSAGE)
    return errs.error()


def key(path: Path, name: str) -> Path:
    """`path["name"]`, quoted with Go's %q like Kuma's PathBuilder.Key."""
    return Path(f"{path.text}[{go_quote(name)}]")


def sorted_keys(tags: Mapping[str, str]) -> list[str]:
    """Tag names in Kuma's order (Go's sort.Strings; code point order equals UTF-8 byte order)."""
    return sorted(tags)


def allowed_values_hint(*values: str) -> str:
    """`Allowed values: a, b, c` (or `(none)`)."""
    return f"Allowed values: {', '.join(values) if values else '(none)'}"


# protobuf's Duration range: +-10,000 years
_MAX_DURATION_SECONDS = 315_576_000_000


def validate_duration(errs: Violations, path: Path, value: dt.timedelta | None) -> None:
    """A required google.protobuf.Duration that must not be zero."""
    if value is None:
        errs.add(path, "must have a positive value")
        return
    if abs(value.total_seconds()) > _MAX_DURATION_SECONDS:
        errs.add(path, "must have a valid value")
        return
    if value == dt.timedelta(0):
        errs.add(path, "must have a positive value")


def validate_threshold(errs: Violations, path: Path, value: int) -> None:
    if value == 0:
        errs.add(path, "must have a positive value")


# ---------------------------------------------------------------------------------------------
# google.protobuf.Struct -> typed config


def to_typed(
    cls: type[M],
    conf: Any,
    path: Path,
    errs: Violations,
    *,
    prefix: str = "could not parse config: ",
) -> M | None:
    """Decode a `google.protobuf.Struct` (or plain dict) into `cls` the way Kuma's ToTyped does.

    Unknown fields are ignored; a field of the wrong type becomes a violation under `path`
    (`logging.backends[0].config.path`) whose message starts with `prefix`. Returns None when
    the config could not be decoded.
    """
    if conf is None:
        data: Any = {}
    elif isinstance(conf, betterproto2.Message):
        data = conf.to_dict()
    else:
        data = conf
    try:
        return codec.decode(cls, data, path, ignore_unknown=True)
    except ValidationError as e:
        for v in e.violations:
            errs.add(v.field, prefix + v.message)
        return None
