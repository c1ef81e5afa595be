"""Kuma's error bodies (`pkg/core/rest/errors/error_handler.go`) and the mapping onto them.

    {"title": "<what was attempted>", "details": "<kind>", "causes": [{"field", "message"}]}

`causes` is left out when empty. Handlers catch exceptions and call `error_response(exc, title)`;
every typed error of `kuma.errors` has a fixed status and `details`, anything else is a 500
(logged with its traceback, never shown to the client).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from starlette.responses import Response

from kuma.api.render import dumps
from kuma.errors import (
    InvalidOffsetError,
    InvalidPageSizeError,
    MeshNotFoundError,
    PaginationWithFilterError,
    ResourceAlreadyExistsError,
    ResourceConflictError,
    ResourceNotFoundError,
    ValidationError,
    Violation,
)

__all__ = [
    "JSON",
    "JsonResponse",
    "RequestError",
    "error_body",
    "error_response",
    "json_response",
    "text_response",
]

JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"

log = structlog.get_logger("api-server")


class RequestError(Exception):
    """A request the API refuses before any store work: bad body, bad page size and the like."""

    def __init__(self, status: int, details: str, causes: Iterable[Violation] = ()) -> None:
        self.status = status
        self.details = details
        self.causes = list(causes)
        super().__init__(details)


def error_body(title: str, details: str, causes: Iterable[Violation] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"title": title, "details": details}
    listed = [{"field": c.field, "message": c.message} for c in causes]
    if listed:
        body["causes"] = listed
    return body


class JsonResponse(Response):
    """A JSON body with its two headers built directly (the hot path of every GET)."""

    media_type = JSON

    def __init__(self, body: bytes, status_code: int = 200) -> None:
        self.status_code = status_code
        self.body = body
        self.background = None
        self.raw_headers = [
            (b"content-length", str(len(body)).encode("latin-1")),
            (b"content-type", b"application/json"),
        ]


def json_response(status: int, body: bytes) -> Response:
    return JsonResponse(body, status)


def text_response(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
    return Response(text.encode("utf-8"), status_code=status, media_type=_TEXT, headers=headers)


def _classify(exc: BaseException) -> tuple[int, str, list[Violation]] | None:
    if isinstance(exc, RequestError):
        return exc.status, exc.details, exc.causes
    if isinstance(exc, ResourceNotFoundError):
        return 404, "Not found", []
    if isinstance(exc, MeshNotFoundError):
        return (
            400,
            "Mesh is not found",
            [Violation("mesh", f"mesh of name {exc.mesh} is not found")],
        )
    if isinstance(exc, ValidationError):
        return 400, "Resource is not valid", exc.violations
    if isinstance(exc, InvalidOffsetError):
        return 400, "Invalid offset", [Violation("offset", exc.message)]
    if isinstance(exc, InvalidPageSizeError):
        return 400, "Invalid page size", [Violation("size", exc.message)]
    if isinstance(exc, PaginationWithFilterError):
        return 400, str(exc), []
    if isinstance(exc, ResourceConflictError):
        where = f" in mesh {exc.mesh}" if exc.mesh else ""
        return (
            409,
            "Conflict",
            [
                Violation(
                    "",
                    f"{exc.type_name} {exc.name}{where} was changed by another request "
                    "while this one was processed; retry the request",
                )
            ],
        )
    if isinstance(exc, ResourceAlreadyExistsError):
        where = f" in mesh {exc.mesh}" if exc.mesh else ""
        return (
            409,
            "Conflict",
            [
                Violation(
                    "",
                    f"{exc.type_name} {exc.name}{where} was created by another request "
                    "while this one was processed; retry the request",
                )
            ],
        )
    return None


def error_response(exc: BaseException, title: str) -> Response:
    """Kuma's error response for `exc`; unexpected exceptions become a logged 500."""
    classified = _classify(exc)
    causes: list[Violation]
    if classified is None:
        log.error(title, exc_info=exc)
        status, details, causes = 500, "Internal Server Error", []
    else:
        status, details, causes = classified
    return json_response(status, dumps(error_body(title, details, causes)))
