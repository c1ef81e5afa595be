"""Compact JSON Web Tokens signed with HS256 (RFC 7519 over RFC 7515), as Kuma's tokens are.

    token = encode_hs256({"Name": "web-01", "Mesh": "default"}, key)
    claims = decode_hs256(token, key)          # JwtError when it is not a valid token for `key`

A token is `base64url(header) "." base64url(claims) "." base64url(signature)`, unpadded, where
the signature is HMAC-SHA256 of the first two segments under `key`. Segments are encoded the
way Go's `dgrijalva/jwt-go` (Kuma's library) does: compact JSON as Go's `encoding/json` writes
it (`<`, `>`, `&`, U+2028 and U+2029 escaped), header `{"alg":"HS256","typ":"JWT"}`, so a
token issued here is byte for byte the token Kuma issues for the same claims and key.

Decoding is stricter than jwt-go where jwt-go is lax: only `alg: HS256` is accepted (jwt-go
would verify an HS384/HS512 token with the same key), segments must be base64url (padding
tolerated), header and claims must be JSON objects, and the signature is checked (in constant
time) before the claims are read. The registered time claims are honoured when present
(`exp`, `nbf`, `iat`, numeric seconds since the epoch, no leeway, like jwt-go);
Kuma's tokens carry none of them and never expire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["ALGORITHM", "HEADER", "JwtError", "decode_hs256", "encode_hs256", "go_json"]

ALGORITHM = "HS256"
HEADER: Mapping[str, str] = {"alg": ALGORITHM, "typ": "JWT"}
"""The JOSE header of every token issued here (jwt-go's, keys in Go's sorted map order)."""

_SEGMENT = re.compile(r"[A-Za-z0-9_-]*={0,2}")


class JwtError(ValueError):
    """The text is not a valid HS256 JWT for the key; the message says what is wrong."""


# -- Go's encoding/json, for the values a token holds ---------------------------------------------


def _go_string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or ch in "<>&\u2028\u2029":
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")  # a lone surrogate is not UTF-8: Go writes U+FFFD
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_value(value: Any) -> str:
    if isinstance(value, str):
        return _go_string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Mapping):
        items = (f"{_go_string(str(k))}:{_go_value(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_go_value(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} in a token")


def go_json(value: Any) -> bytes:
    """`value` (str, int, bool, None, lists and mappings of them) as Go's json.Marshal writes
    it: compact, keys in the mapping's order, HTML characters escaped, UTF-8."""
    return _go_value(value).encode("utf-8")


# -- segments -------------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(segment: str, what: str) -> bytes:
    if not _SEGMENT.fullmatch(segment):
        raise JwtError(f"the {what} is not base64url")
    unpadded = segment.rstrip("=")
    if len(unpadded) % 4 == 1:
        raise JwtError(f"the {what} is not base64url (bad length)")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise JwtError(f"the {what} is not base64url") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise JwtError(f"the {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise JwtError(f"the {what} is not a JSON object")
    return value


def _signature(signing_input: bytes, key: bytes) -> bytes:
    return hmac.new(key, signing_input, hashlib.sha256).digest()


# -- public ---------------------------------------------------------------------------------------


def encode_hs256(claims: Mapping[str, Any], key: bytes) -> str:
    """A compact JWT with `HEADER` and `claims` (in their order), signed with HMAC-SHA256."""
    if not key:
        raise ValueError("the signing key must not be empty")
    signing_input = f"{_b64encode(go_json(HEADER))}.{_b64encode(go_json(claims))}"
    signature = _signature(signing_input.encode("ascii"), key)
    return f"{signing_input}.{_b64encode(signature)}"


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JwtError(f'the "{name}" claim is not a number')
    return float(value)


def decode_hs256(token: str, key: bytes, *, now: float | None = None) -> dict[str, Any]:
    """The claims of `token` after checking its header, signature and time claims.

    `now`: seconds since the epoch to check `exp`/`nbf`/`iat` against (default: the clock).
    Raises JwtError naming the first problem found.
    """
    if not key:
        raise ValueError("the signing key must not be empty")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwtError("token contains an invalid number of segments")
    header_segment, claims_segment, signature_segment = parts
    if not _SEGMENT.fullmatch(claims_segment):
        raise JwtError("the claims segment is not base64url")
    header = _json_object(_b64decode(header_segment, "header"), "header")
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise JwtError("the header names no signing method (alg)")
    if alg != ALGORITHM:
        raise JwtError(f"signing method {alg} is not allowed: tokens are signed with {ALGORITHM}")
    signature = _b64decode(signature_segment, "signature")
    expected = _signature(f"{header_segment}.{claims_segment}".encode("ascii"), key)
    if not hmac.compare_digest(signature, expected):
        raise JwtError("signature is invalid")
    claims = _json_object(_b64decode(claims_segment, "claims segment"), "claims segment")
    current = time.time() if now is None else now
    expires = _numeric_date(claims, "exp")
    if expires is not None and current > expires:
        raise JwtError("token is expired")
    not_before = _numeric_date(claims, "nbf")
    if not_before is not None and current < not_before:
        raise JwtError("token is not valid yet")
    issued_at = _numeric_date(claims, "iat")
    if issued_at is not None and current < issued_at:
        raise JwtError("token used before issued")
    return claims
