"""Validators for every resource type, with Kuma's field paths and messages.

`VALIDATORS` maps a type name to a function `(name, mesh, spec) -> ValidationError | None`.
`validate_meta` checks names and mesh names the way the REST API and kumactl do.
"""

from __future__ import annotations

from kuma.model.validators.common import validate_meta
from kuma.model.validators.registry import VALIDATORS

__all__ = ["VALIDATORS", "validate_meta"]
