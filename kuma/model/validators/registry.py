"""Type name -> spec validator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kuma.errors import ValidationError

__all__ = ["VALIDATORS"]

Validator = Callable[[str, str, Any], ValidationError | None]

VALIDATORS: dict[str, Validator] = {}
