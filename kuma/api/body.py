"""Reading a JSON request body with a size limit."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from kuma.api.errors import RequestError
from kuma.errors import Violation

__all__ = ["ClientDisconnect", "read_json_body"]


def _too_large(limit: int) -> RequestError:
    return RequestError(
        413,
        "Request Entity Too Large",
        [Violation("", f"the request body must not be larger than {limit} bytes")],
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


async def read_json_body(request: Request, limit: int) -> Any:
    """The parsed body. Reads incrementally and stops as soon as `limit` bytes are exceeded.

    Raises RequestError: 413 for a body over `limit` (checked against Content-Length first),
    400 for an empty body or anything that is not strict JSON in UTF-8.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise RequestError(400, "Invalid JSON", [Violation("", "the request body is empty")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RequestError(
            400,
            "Invalid JSON",
            [Violation("", f"the request body is not UTF-8: {e.reason} at byte {e.start}")],
        ) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise RequestError(
            400,
            "Invalid JSON",
            [Violation("", f"{e.msg} at line {e.lineno}, column {e.colno}")],
        ) from None
    except ValueError as e:  # NaN / Infinity
        raise RequestError(400, "Invalid JSON", [Violation("", str(e))]) from None
    except RecursionError:
        raise RequestError(
            400, "Invalid JSON", [Violation("", "the request body is nested too deeply")]
        ) from None
