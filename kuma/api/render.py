"""JSON the way Kuma's API server writes it, fast.

Kuma (go-restful with `SetEscapeHTML(false)` and `MarshalIndent`) answers with 2-space indented
JSON, `<`, `>` and `&` left as they are, non-ASCII text as UTF-8, and a trailing newline.
`json.dumps(indent=2)` produces the same text but falls back to the pure-Python encoder, which
needs ~90 ms for a page of 1,000 Dataplanes; `pretty()` is a specialised encoder for JSON-shaped
values (what the codec and `json.loads` produce) that is several times faster.

`RenderCache` keeps the rendered text of resources keyed by everything the text depends on
(type, mesh, name, times and the stored spec text), so repeated reads of unchanged resources
cost a dictionary lookup. A page of a list is the cached fragments re-indented with one
`str.replace` (a newline never occurs inside a JSON string) and joined.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from kuma.model.resource import Resource
from kuma.model.rest import resource_to_dict

__all__ = ["RenderCache", "dumps", "list_body", "pretty"]

_c_encode: Callable[[str], str] | None
try:  # the C string encoder behind json.dumps(ensure_ascii=False)
    from _json import encode_basestring as _c_encode
except ImportError:  # pragma: no cover - CPython always has it
    _c_encode = None

_encode_str: Callable[[str], str] = _c_encode or json.encoder.py_encode_basestring
_encode_str_ascii: Callable[[str], str] = json.encoder.encode_basestring_ascii
_INDENTS = tuple("\n" + "  " * depth for depth in range(64))


def _indent(depth: int) -> str:
    return _INDENTS[depth] if depth < 64 else "\n" + "  " * depth


def _float(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{value!r} cannot be written as JSON")
    return float.__repr__(value)


def _render(obj: Any, encode: Callable[[str], str]) -> str:
    parts: list[str] = []
    append = parts.append

    def value(v: Any, depth: int) -> None:
        t = type(v)
        if t is str:
            append(encode(v))
        elif t is dict:
            if not v:
                append("{}")
                return
            indent = _indent(depth + 1)
            opener = "{"
            for key, item in v.items():
                append(opener + indent + encode(key if type(key) is str else str(key)) + ": ")
                opener = ","
                value(item, depth + 1)
            append(_indent(depth) + "}")
        elif t is list or t is tuple:
            if not v:
                append("[]")
                return
            indent = _indent(depth + 1)
            opener = "["
            for item in v:
                append(opener + indent)
                opener = ","
                value(item, depth + 1)
            append(_indent(depth) + "]")
        elif v is True:
            append("true")
        elif v is False:
            append("false")
        elif v is None:
            append("null")
        elif t is int:
            append(int.__repr__(v))
        elif t is float:
            append(_float(v))
        elif isinstance(v, str):
            append(encode(str(v)))
        elif isinstance(v, int):
            append(int.__repr__(int(v)))
        elif isinstance(v, float):
            append(_float(float(v)))
        elif isinstance(v, dict):
            value(dict(v), depth)
        elif isinstance(v, list | tuple):
            value(list(v), depth)
        else:
            raise TypeError(f"{type(v).__name__} is not JSON serialisable")

    value(obj, 0)
    return "".join(parts)


def pretty(obj: Any) -> str:
    """`obj` as 2-space indented JSON without a trailing newline (Go's MarshalIndent layout).

    Like Go, U+2028 and U+2029 are escaped (they break JavaScript string literals). Text that
    cannot be UTF-8 (lone surrogates from `"\\ud800"` in some input) is written as ASCII
    escapes instead, so the output is always valid UTF-8 JSON.
    """
    text = _render(obj, _encode_str)
    if "\u2028" in text or "\u2029" in text:
        text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _render(obj, _encode_str_ascii)
    return text


def dumps(obj: Any) -> bytes:
    """A response body: `pretty(obj)` plus the newline Go's encoder ends with, as UTF-8."""
    return (pretty(obj) + "\n").encode("utf-8")


_ITEM_INDENT = "\n    "


def list_body(total: int, fragments: Sequence[str], next_url: str | None) -> bytes:
    """`{"total", "items", "next"}` from items already rendered by `pretty` at depth 0."""
    if fragments:
        items = (
            "[\n    " + ",\n    ".join(f.replace("\n", _ITEM_INDENT) for f in fragments) + "\n  ]"
        )
    else:
        items = "[]"
    next_text = "null" if next_url is None else pretty(next_url)
    return (
        '{\n  "total": '
        + str(total)
        + ',\n  "items": '
        + items
        + ',\n  "next": '
        + next_text
        + "\n}\n"
    ).encode("utf-8")


class RenderCache:
    """Rendered JSON of resources, keyed by content; bounded by total characters (FIFO).

    One instance per app; not shared between event loops (no locking needed on one loop).
    """

    def __init__(self, max_chars: int = 32 * 1024 * 1024) -> None:
        self.max_chars = max_chars
        self._entries: dict[Hashable, str] = {}
        self._chars = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def resource_key(resource: Resource) -> Hashable:
        meta = resource.meta
        return (
            resource.type.name,
            meta.mesh,
            meta.name,
            meta.creation_time,
            meta.modification_time,
            resource.spec_json(),
        )

    def get_or_render(self, key: Hashable, build: Callable[[], Any]) -> str:
        text = self._entries.get(key)
        if text is not None:
            self.hits += 1
            return text
        self.misses += 1
        text = pretty(build())
        self._store(key, text)
        return text

    def resource(self, resource: Resource) -> str:
        """`resource` as Kuma's REST envelope (meta first, spec fields flattened), rendered."""
        return self.get_or_render(self.resource_key(resource), lambda: resource_to_dict(resource))

    def _store(self, key: Hashable, text: str) -> None:
        size = len(text)
        if size > self.max_chars:
            return
        entries = self._entries
        while entries and self._chars + size > self.max_chars:
            oldest = next(iter(entries))
            self._chars -= len(entries.pop(oldest))
        entries[key] = text
        self._chars += size

    def clear(self) -> None:
        self._entries.clear()
        self._chars = 0

    def __len__(self) -> int:
        return len(self._entries)
