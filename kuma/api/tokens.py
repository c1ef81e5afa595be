"""The admin server's dataplane token endpoint (Kuma 0.7.3's `pkg/tokens/builtin/server`).

    POST /tokens   {"name": "web-01", "mesh": "default"}   ->  200 text/plain <token>

| status | body |
|---|---|
| 200 | the token (an HS256 JWT), `text/plain`, no trailing newline |
| 400 | `Invalid request` / `Resource is not valid`, causes `name`/`mesh`: `cannot be empty` |
| 400 | `Invalid request` / `Invalid JSON`: the body is not a JSON object with text fields |
| 503 | `Could not issue a token`: there is no signing key yet (its details say so) |
| 500 | `Could not issue a token` / `Internal Server Error` (logged) |

Keys are matched like Go's encoding/json does (exact name first, else case-insensitively) and
unknown keys are ignored. The route exists only when `AdminSettings.dataplane_token_enabled`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kuma.api.body import ClientDisconnect, read_json_body
from kuma.api.errors import RequestError, error_body, error_response, json_response
from kuma.api.render import dumps
from kuma.api.resources import RouteSpec
from kuma.errors import ValidationError, Violation
from kuma.tokens.issuer import DataplaneTokenIssuer
from kuma.tokens.signing_key import SigningKeyNotFoundError

__all__ = ["TOKENS_PATH", "token_route_specs"]

TOKENS_PATH = "/tokens"
_TEXT = "text/plain"


def _field(body: dict[str, Any], name: str) -> str:
    if name in body:
        value = body[name]
    else:
        value = next((v for k, v in body.items() if k.lower() == name), None)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RequestError(400, "Invalid JSON", [Violation(name, "must be a string")])
    return value


def token_route_specs(issuer: DataplaneTokenIssuer, *, max_body_bytes: int) -> list[RouteSpec]:
    """`POST /tokens`, issuing tokens with `issuer`."""

    async def issue(request: Request) -> Response:
        try:
            body = await read_json_body(request, max_body_bytes)
            if not isinstance(body, dict):
                raise RequestError(
                    400, "Invalid JSON", [Violation("", "the request body must be a JSON object")]
                )
            name, mesh = _field(body, "name"), _field(body, "mesh")
        except ClientDisconnect:
            return Response(b"", status_code=400)
        except RequestError as e:
            return error_response(e, "Invalid request")
        violations = []
        if not name:
            violations.append(Violation("name", "cannot be empty"))
        if not mesh:
            violations.append(Violation("mesh", "cannot be empty"))
        if violations:
            return error_response(ValidationError(violations), "Invalid request")
        try:
            token = await issuer.issue(name, mesh)
        except SigningKeyNotFoundError as e:
            return json_response(503, dumps(error_body("Could not issue a token", str(e))))
        except Exception as e:
            return error_response(e, "Could not issue a token")
        return Response(token.encode("ascii"), media_type=_TEXT)

    return [RouteSpec(TOKENS_PATH, {"POST": issue})]
