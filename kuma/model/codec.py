"""Strict proto3-JSON codec for Kuma's betterproto2 messages.

betterproto2's own `from_dict` accepts a string where an integer belongs and reports problems as
bare `KeyError`s; Kuma users need every problem with its field path. `decode` walks a plain JSON
value (from JSON or YAML) against a message class, collects a `Violation` per bad field and raises
one `ValidationError` listing them all. `encode` produces the proto3 JSON form Kuma prints: Kuma's
JSON names (`mTLS`, `skipMTLS`), zero values omitted, map keys sorted, int64 as strings, durations
as `"1.500s"`, wrapper types as bare values.

Beyond strict proto3 JSON, and like Kuma's Go parser, decoding accepts Go duration syntax
(`"1m30s"`, `"500ms"`) and integers given as strings.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import betterproto2

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.pb.json_names import JSON_NAMES

__all__ = [
    "decode",
    "encode",
    "format_duration",
    "format_timestamp",
    "parse_duration",
    "parse_timestamp",
    "type_name",
]

M = TypeVar("M", bound=betterproto2.Message)

_INT_RANGES: dict[str, tuple[int, int]] = {
    betterproto2.TYPE_INT32: (-(2**31), 2**31 - 1),
    betterproto2.TYPE_SINT32: (-(2**31), 2**31 - 1),
    betterproto2.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    betterproto2.TYPE_UINT32: (0, 2**32 - 1),
    betterproto2.TYPE_FIXED32: (0, 2**32 - 1),
    betterproto2.TYPE_INT64: (-(2**63), 2**63 - 1),
    betterproto2.TYPE_SINT64: (-(2**63), 2**63 - 1),
    betterproto2.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    betterproto2.TYPE_UINT64: (0, 2**64 - 1),
    betterproto2.TYPE_FIXED64: (0, 2**64 - 1),
}
_INT64 = {
    betterproto2.TYPE_INT64,
    betterproto2.TYPE_SINT64,
    betterproto2.TYPE_SFIXED64,
    betterproto2.TYPE_UINT64,
    betterproto2.TYPE_FIXED64,
}
_FLOATS = {betterproto2.TYPE_FLOAT, betterproto2.TYPE_DOUBLE}

# google.protobuf wrapper message name -> scalar proto type it wraps
_WRAPPERS = {
    "DoubleValue": betterproto2.TYPE_DOUBLE,
    "FloatValue": betterproto2.TYPE_FLOAT,
    "Int64Value": betterproto2.TYPE_INT64,
    "UInt64Value": betterproto2.TYPE_UINT64,
    "Int32Value": betterproto2.TYPE_INT32,
    "UInt32Value": betterproto2.TYPE_UINT32,
    "BoolValue": betterproto2.TYPE_BOOL,
    "StringValue": betterproto2.TYPE_STRING,
    "BytesValue": betterproto2.TYPE_BYTES,
}


# ---------------------------------------------------------------------------------------------
# durations and timestamps


_GO_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_duration(text: str) -> dt.timedelta:
    """Parse `"10s"`, `"1.5s"`, `"1m30s"`, `"500ms"`, `"-2h"` (Go's time.ParseDuration syntax)."""
    s = text.strip()
    if not s:
        raise ValueError("empty duration")
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return dt.timedelta(0)
    total_ns = 0
    pos = 0
    while pos < len(s):
        m = _GO_DURATION.match(s, pos)
        if not m or m.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        number, unit = m.group(1), m.group(2)
        whole, _, frac = number.partition(".")
        ns = int(whole or "0") * _UNIT_NS[unit]
        if frac:
            ns += int(frac) * _UNIT_NS[unit] // 10 ** len(frac)
        total_ns += ns
        pos = m.end()
    return dt.timedelta(microseconds=sign * total_ns / 1000)


def format_duration(value: dt.timedelta) -> str:
    """Proto3 JSON form: seconds with 0, 3, 6 or 9 fractional digits, e.g. `"1.500s"`."""
    total_us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    seconds, micros = divmod(total_us, 1_000_000)
    if micros == 0:
        return f"{sign}{seconds}s"
    if micros % 1000 == 0:
        return f"{sign}{seconds}.{micros // 1000:03d}s"
    return f"{sign}{seconds}.{micros:06d}s"


def parse_timestamp(text: str) -> dt.datetime:
    """Parse an RFC 3339 timestamp (`2020-10-22T10:00:00Z`, with up to 9 fractional digits)."""
    s = text.strip()
    m = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)", s)
    if not m:
        raise ValueError(f"invalid timestamp {text!r}")
    base, frac, zone = m.groups()
    if zone in ("Z", "z"):
        zone = "+00:00"
    micro = (frac or "").ljust(6, "0")[:6]
    parsed = dt.datetime.fromisoformat(f"{base}.{micro}{zone}")
    return parsed.astimezone(dt.UTC)


def format_timestamp(value: dt.datetime, *, nano_style: bool = False) -> str:
    """RFC 3339 in UTC with `Z`.

    Proto style (default) prints 0, 3 or 6 fractional digits like protobuf's JSON; `nano_style`
    trims every trailing zero like Go's time.Time JSON (used for Kuma's resource meta times).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    us = value.microsecond
    if us == 0:
        return base + "Z"
    if nano_style:
        return f"{base}.{us:06d}".rstrip("0") + "Z"
    if us % 1000 == 0:
        return f"{base}.{us // 1000:03d}Z"
    return f"{base}.{us:06d}Z"


# ---------------------------------------------------------------------------------------------
# per-class plans


@dataclasses.dataclass(slots=True)
class _Kind:
    """How one value (a field, a list item or a map value) is read and written."""

    proto_type: str
    wrapper: str | None = None  # "Duration", "Timestamp", "DoubleValue", ... when unwrapped
    message: type[betterproto2.Message] | None = None
    special: str | None = None  # "Struct", "Value", "ListValue"
    enum: type[Any] | None = None


@dataclasses.dataclass(slots=True)
class _Field:
    name: str  # Python attribute
    json_name: str
    kind: _Kind
    repeated: bool
    map_key: _Kind | None  # set for map fields; then `kind` is the value kind
    optional: bool
    group: str | None


@dataclasses.dataclass(slots=True)
class _Plan:
    cls: type[betterproto2.Message]
    fields: list[_Field]
    by_input_name: dict[str, _Field]


_PLANS: dict[type[Any], _Plan] = {}


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _full_proto_name(cls: type[betterproto2.Message]) -> str:
    # betterproto2 flattens nested names (DataplaneInsightMtls); its message pool knows the
    # proto name (kuma.mesh.v1alpha1.DataplaneInsight.MTLS).
    from kuma.pb.message_pool import default_message_pool

    url = default_message_pool.type_to_url.get(cls, cls.__name__)
    return str(url).rsplit("/", 1)[-1]


def _kind_for(meta: betterproto2.FieldMetadata, field_cls: type[Any]) -> _Kind:
    if meta.unwrap is not None:
        wrapped = meta.unwrap()
        return _Kind(meta.proto_type, wrapper=wrapped.__name__)
    if meta.proto_type == betterproto2.TYPE_MESSAGE:
        mod = getattr(field_cls, "__module__", "")
        if mod.endswith("google.protobuf") and field_cls.__name__ in (
            "Struct",
            "Value",
            "ListValue",
        ):
            return _Kind(meta.proto_type, special=field_cls.__name__, message=field_cls)
        return _Kind(meta.proto_type, message=field_cls)
    if meta.proto_type == betterproto2.TYPE_ENUM:
        return _Kind(meta.proto_type, enum=field_cls)
    return _Kind(meta.proto_type)


def _plan(cls: type[betterproto2.Message]) -> _Plan:
    plan = _PLANS.get(cls)
    if plan is not None:
        return plan
    renames = JSON_NAMES.get(_full_proto_name(cls), {})
    fields: list[_Field] = []
    by_input: dict[str, _Field] = {}
    any_cls: Any = cls
    meta_cls: Any = any_cls._betterproto
    for f in dataclasses.fields(any_cls):  # declaration order, as Go prints them
        meta: betterproto2.FieldMetadata = meta_cls.meta_by_field_name[f.name]
        json_name = renames.get(f.name, _camel(f.name).rstrip("_"))
        map_key: _Kind | None = None
        if meta.proto_type == betterproto2.TYPE_MAP:
            assert meta.map_meta is not None
            key_meta, value_meta = meta.map_meta
            value_cls = meta_cls.cls_by_field.get(f"{f.name}.value", type(None))
            map_key = _Kind(key_meta.proto_type)
            kind = _kind_for(value_meta, value_cls)
        else:
            kind = _kind_for(meta, meta_cls.cls_by_field[f.name])
        fld = _Field(
            name=f.name,
            json_name=json_name,
            kind=kind,
            repeated=bool(meta.repeated),
            map_key=map_key,
            optional=bool(meta.optional),
            group=meta.group,
        )
        fields.append(fld)
        for alias in {json_name, f.name, _camel(f.name)}:
            by_input[alias] = fld
    plan = _Plan(cls, fields, by_input)
    _PLANS[cls] = plan
    return plan


# ---------------------------------------------------------------------------------------------
# decoding


def type_name(value: Any) -> str:
    """`a string`, `a number`, `an object`, `a list`, ...: how errors name a JSON value's kind."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _scalar(proto_type: str, value: Any) -> Any:
    if proto_type == betterproto2.TYPE_STRING:
        if not isinstance(value, str):
            raise _Invalid(f"must be a string, got {type_name(value)}")
        return value
    if proto_type == betterproto2.TYPE_BOOL:
        if not isinstance(value, bool):
            raise _Invalid(f"must be a boolean, got {type_name(value)}")
        return value
    if proto_type in _INT_RANGES:
        if isinstance(value, bool):
            raise _Invalid("must be an integer, got a boolean")
        if isinstance(value, int):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip())
        ):
            number = int(value)
        else:
            shown = f" {value!r}" if isinstance(value, str | float) else ""
            raise _Invalid(f"must be an integer, got {type_name(value)}{shown}")
        low, high = _INT_RANGES[proto_type]
        if not low <= number <= high:
            raise _Invalid(f"must be in range [{low}, {high}], got {number}")
        return number
    if proto_type in _FLOATS:
        if isinstance(value, bool):
            raise _Invalid("must be a number, got a boolean")
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
            if value in special:
                return special[value]
            try:
                return float(value)
            except ValueError:
                pass
        raise _Invalid(f"must be a number, got {type_name(value)}")
    if proto_type == betterproto2.TYPE_BYTES:
        if not isinstance(value, str):
            raise _Invalid(f"must be a base64 string, got {type_name(value)}")
        text = value.strip().replace("-", "+").replace("_", "/")
        text += "=" * (-len(text) % 4)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _Invalid("must be valid base64") from None
    raise _Invalid(f"unsupported field type {proto_type}")  # pragma: no cover


def _json_value(value: Any, path: Path, errs: Violations) -> bool:
    """Check that `value` is plain JSON (for Struct/Value fields)."""
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list):
        return all(_json_value(v, path.index(i), errs) for i, v in enumerate(value))
    if isinstance(value, Mapping):
        ok = True
        for k, v in value.items():
            if not isinstance(k, str):
                errs.add(path, f"object keys must be strings, got {type_name(k)}")
                ok = False
            elif not _json_value(v, path.field(k), errs):
                ok = False
        return ok
    errs.add(path, f"must be plain JSON, got {type(value).__name__}")
    return False


def _value(kind: _Kind, value: Any, path: Path, errs: Violations, lax: bool = False) -> Any:
    """Decode one value; on error record it and return `_FAILED`."""
    try:
        if kind.wrapper is not None:
            if kind.wrapper == "Duration":
                if not isinstance(value, str):
                    raise _Invalid(
                        f'must be a duration string such as "5s", got {type_name(value)}'
                    )
                try:
                    return parse_duration(value)
                except ValueError:
                    raise _Invalid(
                        f'invalid duration {value!r}, expected e.g. "5s" or "1m30s"'
                    ) from None
            if kind.wrapper == "Timestamp":
                if not isinstance(value, str):
                    raise _Invalid(f"must be an RFC 3339 timestamp string, got {type_name(value)}")
                try:
                    return parse_timestamp(value)
                except ValueError:
                    raise _Invalid(f"invalid RFC 3339 timestamp {value!r}") from None
            if kind.wrapper in _WRAPPERS:
                return _scalar(_WRAPPERS[kind.wrapper], value)
            raise _Invalid(f"unsupported wrapper {kind.wrapper}")  # pragma: no cover
        if kind.special is not None:
            assert kind.message is not None
            if kind.special == "Struct" and not isinstance(value, Mapping):
                raise _Invalid(f"must be an object, got {type_name(value)}")
            if kind.special == "ListValue" and not isinstance(value, list):
                raise _Invalid(f"must be a list, got {type_name(value)}")
            if not _json_value(value, path, errs):
                return _FAILED
            return kind.message.from_dict(value)
        if kind.message is not None:
            if not isinstance(value, Mapping):
                raise _Invalid(f"must be an object, got {type_name(value)}")
            return _decode_message(kind.message, value, path, errs, lax)
        if kind.enum is not None:
            if isinstance(value, str):
                try:
                    return kind.enum.from_string(value)
                except (ValueError, KeyError):
                    raise _Invalid(f"unknown value {value!r}") from None
            if isinstance(value, int) and not isinstance(value, bool):
                return kind.enum(value)
            raise _Invalid(f"must be a string, got {type_name(value)}")
        return _scalar(kind.proto_type, value)
    except _Invalid as e:
        errs.add(path, e.message)
        return _FAILED


_FAILED: Any = object()


def _decode_message(
    cls: type[M], data: Mapping[str, Any], path: Path, errs: Violations, lax: bool = False
) -> M:
    plan = _plan(cls)
    kwargs: dict[str, Any] = {}
    groups: dict[str, str] = {}
    for key, raw in data.items():
        if not isinstance(key, str):
            errs.add(path, f"field names must be strings, got {type_name(key)}")
            continue
        fld = plan.by_input_name.get(key)
        if fld is None:
            if not lax:
                errs.add(path.field(key), "unknown field")
            continue
        fpath = path.field(fld.json_name)
        if raw is None:
            continue  # null means "not set" in proto3 JSON
        if fld.group is not None:
            other = groups.get(fld.group)
            if other is not None and other != fld.json_name:
                errs.add(fpath, f'only one of "{other}" and "{fld.json_name}" may be set')
                continue
            groups[fld.group] = fld.json_name
        if fld.map_key is not None:
            if not isinstance(raw, Mapping):
                errs.add(fpath, f"must be an object, got {type_name(raw)}")
                continue
            out_map: dict[Any, Any] = {}
            for mk, mv in raw.items():
                kpath = fpath.key(str(mk))
                if fld.map_key.proto_type == betterproto2.TYPE_STRING:
                    key_value: Any = mk if isinstance(mk, str) else str(mk)
                else:
                    key_value = _value(fld.map_key, mk, kpath, errs)
                if mv is None and fld.kind.proto_type == betterproto2.TYPE_STRING:
                    mv = ""
                val = _value(fld.kind, mv, kpath, errs, lax)
                if key_value is not _FAILED and val is not _FAILED:
                    out_map[key_value] = val
            kwargs[fld.name] = out_map
        elif fld.repeated:
            if not isinstance(raw, list):
                errs.add(fpath, f"must be a list, got {type_name(raw)}")
                continue
            items = []
            for i, item in enumerate(raw):
                val = _value(fld.kind, item, fpath.index(i), errs, lax)
                if val is not _FAILED:
                    items.append(val)
            kwargs[fld.name] = items
        else:
            val = _value(fld.kind, raw, fpath, errs, lax)
            if val is not _FAILED:
                kwargs[fld.name] = val
    return cls(**kwargs)


def decode(cls: type[M], data: Any, path: Path | str = "", *, ignore_unknown: bool = False) -> M:
    """Build a `cls` message from a plain JSON value, or raise `ValidationError` with every problem.

    `ignore_unknown` skips fields `cls` does not have (at every depth) instead of reporting them,
    like Kuma reading a backend's free-form `conf` into its typed config.
    """
    errs = Violations()
    base = path if isinstance(path, Path) else Path(path)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        errs.add(base, f"must be an object, got {type_name(data)}")
        raise ValidationError(errs.items)
    msg = _decode_message(cls, data, base, errs, ignore_unknown)
    errs.raise_if_any()
    return msg


# ---------------------------------------------------------------------------------------------
# encoding


def _number(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e15:
        return int(value)  # Go prints 100, not 100.0
    return value


def _out_scalar(proto_type: str, value: Any) -> Any:
    if proto_type in _INT64:
        return str(value)
    if proto_type in _FLOATS:
        return _number(value)
    if proto_type == betterproto2.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    return value


def _out(kind: _Kind, value: Any) -> Any:
    if kind.wrapper is not None:
        if kind.wrapper == "Duration":
            return format_duration(value)
        if kind.wrapper == "Timestamp":
            return format_timestamp(value)
        return _out_scalar(_WRAPPERS[kind.wrapper], value)
    if kind.special is not None:
        return value.to_dict()
    if kind.message is not None:
        return _encode_message(value)
    if kind.enum is not None:
        # A number no enum member has (proto3 enums are open) is written as that number.
        return getattr(value, "proto_name", None) or value.name or int(value)
    return _out_scalar(kind.proto_type, value)


def _encode_message(msg: betterproto2.Message) -> dict[str, Any]:
    plan = _plan(type(msg))
    out: dict[str, Any] = {}
    for fld in plan.fields:
        value = getattr(msg, fld.name)
        if fld.map_key is not None:
            if value:
                out[fld.json_name] = {
                    str(_out_scalar(fld.map_key.proto_type, k)): _out(fld.kind, value[k])
                    for k in sorted(value)
                }
        elif fld.repeated:
            if value:
                out[fld.json_name] = [_out(fld.kind, v) for v in value]
        elif value is None:
            continue
        elif (
            fld.optional
            or fld.kind.message is not None
            or fld.kind.wrapper is not None
            or value
            or (fld.kind.enum is not None and value != 0)
        ):
            out[fld.json_name] = _out(fld.kind, value)
    return out


def encode(msg: betterproto2.Message) -> dict[str, Any]:
    """The proto3 JSON object of `msg`, as Kuma prints it."""
    return _encode_message(msg)


def encoder_for(cls: type[M]) -> Callable[[M], dict[str, Any]]:
    """`encode` specialised to one class (plans are cached either way; kept for symmetry)."""
    _plan(cls)
    return _encode_message
