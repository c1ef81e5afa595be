"""Rules shared by all resource types."""

from __future__ import annotations

import re

from kuma.errors import ValidationError
from kuma.model.validation import Violations

__all__ = ["NAME_MESSAGE", "NAME_RE", "validate_meta"]

NAME_RE = re.compile(r"^[0-9a-z-_]*$")
NAME_MESSAGE = "invalid characters. Valid characters are numbers, lowercase latin letters and '-', '_' symbols."


def validate_meta(name: str, mesh: str, *, mesh_scoped: bool = True) -> ValidationError | None:
    """Names (and, for mesh-scoped types, mesh names) must match `^[0-9a-z-_]*$`."""
    errs = Violations()
    if not name:
        errs.add("name", "cannot be empty")
    elif not NAME_RE.match(name):
        errs.add("name", NAME_MESSAGE)
    if mesh_scoped:
        if not mesh:
            errs.add("mesh", "cannot be empty")
        elif not NAME_RE.match(mesh):
            errs.add("mesh", NAME_MESSAGE)
    return errs.error()
