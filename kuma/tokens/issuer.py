"""Issuing and reading dataplane tokens (Kuma 0.7.3's `pkg/tokens/builtin/issuer`).

    issuer = DataplaneTokenIssuer(signing_key_accessor(manager))
    token = await issuer.issue("web-01", "default")
    proxy_id = await issuer.verify(token)      # ProxyId("default", "web-01")

A token is an HS256 JWT (kuma.tokens.jwt) whose claims are exactly `{"Name": ..., "Mesh": ...}`,
keyed with the signing key's bytes; it does not expire. The key is read through the accessor
on every call.
"""

from __future__ import annotations

from dataclasses import dataclass

from kuma.tokens.jwt import JwtError, decode_hs256, encode_hs256
from kuma.tokens.signing_key import SigningKeyAccessor

__all__ = ["DataplaneTokenIssuer", "InvalidTokenError", "TokenIdentity"]


class InvalidTokenError(ValueError):
    """The token cannot be read with the signing key; the message says why (Kuma's wording:
    `could not parse token: <reason>`)."""


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Who a token was issued for."""

    mesh: str
    name: str


class DataplaneTokenIssuer:
    """Issues tokens for dataplanes and reads them back, with the key `signing_key` returns.

    Both methods raise SigningKeyNotFoundError when there is no signing key (and store errors
    as they come).
    """

    def __init__(self, signing_key: SigningKeyAccessor) -> None:
        self._signing_key = signing_key

    async def issue(self, name: str, mesh: str) -> str:
        """A token for dataplane `name` of `mesh` (ValueError when either is empty)."""
        if not name:
            raise ValueError("name must not be empty")
        if not mesh:
            raise ValueError("mesh must not be empty")
        key = await self._signing_key()
        return encode_hs256({"Name": name, "Mesh": mesh}, key)

    async def verify(self, token: str) -> TokenIdentity:
        """Who `token` was issued for; InvalidTokenError when it is not a token signed with
        the current key or its claims are not Kuma's."""
        key = await self._signing_key()
        try:
            claims = decode_hs256(token, key)
        except JwtError as e:
            raise InvalidTokenError(f"could not parse token: {e}") from None
        name, mesh = claims.get("Name", ""), claims.get("Mesh", "")
        if not isinstance(name, str) or not isinstance(mesh, str):
            raise InvalidTokenError("could not parse token: the Name and Mesh claims must be text")
        if not name or not mesh:
            raise InvalidTokenError("could not parse token: the token names no dataplane")
        return TokenIdentity(mesh=mesh, name=name)
