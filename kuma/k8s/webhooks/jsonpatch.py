"""RFC 6902 JSON patches between two JSON documents (what mutating webhooks answer with).

`create_patch(old, new)` lists `add`/`remove`/`replace` operations turning `old` into `new`:
maps are compared key by key, a list that only grew gets `add`s at its end (so two webhooks
appending containers do not overwrite each other), any other changed list is replaced whole.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_patch", "pointer"]


def pointer(*tokens: str | int) -> str:
    """An RFC 6901 JSON pointer (`~` and `/` escaped)."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def create_patch(old: Any, new: Any) -> list[dict[str, Any]]:
    ops: list[dict[str, Any]] = []
    _diff(old, new, (), ops)
    return ops


def _diff(old: Any, new: Any, path: tuple[str | int, ...], ops: list[dict[str, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                ops.append({"op": "remove", "path": pointer(*path, key)})
        for key, value in new.items():
            if key not in old:
                ops.append({"op": "add", "path": pointer(*path, key), "value": value})
            else:
                _diff(old[key], value, (*path, key), ops)
        return
    if isinstance(old, list) and isinstance(new, list):
        if len(new) >= len(old) and _same(new[: len(old)], old):
            for i in range(len(old), len(new)):
                ops.append({"op": "add", "path": pointer(*path, i), "value": new[i]})
            return
        if len(new) == len(old):
            for i, (a, b) in enumerate(zip(old, new, strict=True)):
                _diff(a, b, (*path, i), ops)
            return
    if not _same(old, new):
        ops.append({"op": "replace", "path": pointer(*path), "value": new})


def _same(a: Any, b: Any) -> bool:
    # JSON equality: 1 and True differ, 1 and 1.0 do not
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, str) or isinstance(b, str):
        return type(a) is type(b) and a == b
    return bool(a == b)
