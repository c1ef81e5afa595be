"""Typed errors shared by every layer of kuma-py.

Callers branch on the class, never on the message text. Store backends translate their driver's
errors into these at their edge; the REST API and kumactl turn them into Kuma's error shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "DatabaseNotMigratedError",
    "InvalidOffsetError",
    "InvalidPageSizeError",
    "KumaError",
    "MeshNotFoundError",
    "PaginationWithFilterError",
    "ResourceAlreadyExistsError",
    "ResourceConflictError",
    "ResourceNotFoundError",
    "StoreError",
    "TransientError",
    "UnknownResourceTypeError",
    "ValidationError",
    "Violation",
]


class KumaError(Exception):
    """Base class of every error kuma-py raises on purpose."""


class TransientError(KumaError):
    """Something a request depends on is not there yet (a Dataplane the Kubernetes controller
    has not written, an API server that does not answer): the caller should retry, and servers
    answer 503 / UNAVAILABLE without logging a traceback."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem with one field. `field` uses Kuma's paths: `networking.inbound[0].port`."""

    field: str
    message: str


class ValidationError(KumaError):
    """A resource (or a request) broke one or more rules; each rule broken is a `Violation`."""

    def __init__(self, violations: Iterable[Violation] = ()) -> None:
        self.violations: list[Violation] = list(violations)
        super().__init__(self._text())

    def _text(self) -> str:
        return "; ".join(
            f"{v.field}: {v.message}" if v.field else v.message for v in self.violations
        )

    def __iter__(self) -> Iterator[Violation]:
        return iter(self.violations)

    def __bool__(self) -> bool:  # an empty ValidationError means "valid"
        return bool(self.violations)


class _ResourceKeyError(KumaError):
    def __init__(self, type_name: str, name: str, mesh: str = "") -> None:
        self.type_name = type_name
        self.name = name
        self.mesh = mesh
        super().__init__(self._text())

    def _text(self) -> str:
        where = f" in mesh {self.mesh!r}" if self.mesh else ""
        return f"{self.type_name} {self.name!r}{where}"


class ResourceNotFoundError(_ResourceKeyError):
    """No resource of that type, name and mesh."""

    def _text(self) -> str:
        return "not found: " + super()._text()


class ResourceAlreadyExistsError(_ResourceKeyError):
    """Create was asked for a key that is taken."""

    def _text(self) -> str:
        return "already exists: " + super()._text()


class ResourceConflictError(_ResourceKeyError):
    """Update or delete was based on a version that is no longer current (optimistic concurrency)."""

    def _text(self) -> str:
        return "version conflict: " + super()._text() + " was changed by someone else"


class MeshNotFoundError(KumaError):
    """A mesh-scoped resource names a mesh that does not exist."""

    def __init__(self, mesh: str) -> None:
        self.mesh = mesh
        super().__init__(f"mesh of name {mesh} is not found")


class InvalidPageSizeError(KumaError):
    """`size` is not an integer, or is above the maximum."""

    def __init__(self, message: str = "Invalid format") -> None:
        self.message = message
        super().__init__(message)


class InvalidOffsetError(KumaError):
    """`offset` is not one this store handed out."""

    def __init__(self, message: str = "Invalid format") -> None:
        self.message = message
        super().__init__(message)


class PaginationWithFilterError(KumaError):
    """Filters (`tag`, `gateway`, ...) were combined with `size`/`offset`."""

    def __init__(self) -> None:
        super().__init__("Pagination and filtering at the same time is not supported")


class StoreError(KumaError):
    """The backing store failed (connection lost, driver error) in a way callers cannot fix."""


class DatabaseNotMigratedError(StoreError):
    """The PostgreSQL schema is older than this kuma-py needs."""

    def __init__(self) -> None:
        super().__init__(
            'database is not migrated. Run "kuma-cp migrate up" to update database to the '
            "newest schema"
        )


class UnknownResourceTypeError(KumaError):
    """A document names a `type` kuma-py does not know."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        super().__init__(
            f'unknown resource type "{type_name}"' if type_name else "type cannot be empty"
        )
