"""Collecting violations with Kuma's field paths.

    errs = Violations()
    p = Path().field("networking").field("inbound").index(0)
    errs.add(p.field("port"), "port has to be in range of [1, 65535]")
    errs.raise_if_any()

renders the field as `networking.inbound[0].port`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from kuma.errors import ValidationError, Violation

__all__ = ["Path", "Violations"]


@dataclass(frozen=True, slots=True)
class Path:
    """An immutable field path; each step returns a new Path."""

    text: str = ""

    def field(self, name: str) -> Path:
        return Path(f"{self.text}.{name}" if self.text else name)

    def index(self, i: int) -> Path:
        return Path(f"{self.text}[{i}]")

    def key(self, k: str) -> Path:
        # Kuma quotes map keys with Go's %q, which for tag names equals a JSON string.
        return Path(f"{self.text}[{json.dumps(k, ensure_ascii=False)}]")

    def __str__(self) -> str:
        return self.text


class Violations:
    """A mutable list of violations that becomes a `ValidationError`."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[Violation] = []

    def add(self, path: Path | str, message: str) -> None:
        self._items.append(Violation(str(path), message))

    def extend(self, other: Violations | ValidationError, prefix: Path | str = "") -> None:
        base = str(prefix)
        items = other._items if isinstance(other, Violations) else other.violations
        for v in items:
            if base and v.field:
                field = f"{base}{v.field}" if v.field.startswith("[") else f"{base}.{v.field}"
            else:
                field = base or v.field
            self._items.append(Violation(field, v.message))

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def items(self) -> list[Violation]:
        return list(self._items)

    def error(self) -> ValidationError | None:
        return ValidationError(self._items) if self._items else None

    def raise_if_any(self) -> None:
        if self._items:
            raise ValidationError(self._items)
