"""Errors kumactl prints as `Error: <message>` before exiting with status 1."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ApiError", "Cause", "KumactlError", "NotFoundError"]


class KumactlError(Exception):
    """A failure to report to the user; `message` is printed after `Error: `."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def wrap(self, context: str) -> KumactlError:
        """A copy with `context: ` in front, like Go's errors.Wrap (API errors stay as they are)."""
        return KumactlError(f"{context}: {self.message}")


@dataclass(frozen=True, slots=True)
class Cause:
    field: str
    message: str


@dataclass
class _ApiErrorData:
    title: str
    details: str
    causes: list[Cause] = field(default_factory=list)


class ApiError(KumactlError):
    """An error body of the API server: `{"title", "details", "causes": [{field, message}]}`.

    Printed as `<title> (<details>)` and one `* <field>: <message>` line per cause. Wrapping
    never changes it: kumactl prints the server's error as it is.
    """

    def __init__(self, status: int, title: str, details: str, causes: list[Cause]) -> None:
        self.status = status
        self.title = title
        self.details = details
        self.causes = causes
        text = f"{title} ({details})" + "".join(f"\n* {c.field}: {c.message}" for c in causes)
        super().__init__(text)

    def wrap(self, context: str) -> KumactlError:
        return self


class NotFoundError(KumactlError):
    """The server answered 404 for a single resource."""

    def __init__(self, status: int, body: str) -> None:
        self.status = status
        super().__init__(f"({status}): {body}")
