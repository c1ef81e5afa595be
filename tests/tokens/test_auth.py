"""Issuing tokens and authenticating dataplanes with them (the servers' authenticator)."""

from __future__ import annotations

import base64
import json

import pytest

from kuma.store.memory import MemoryStore
from kuma.tokens import (
    DataplaneTokenIssuer,
    InvalidTokenError,
    SigningKeyNotFoundError,
    TokenIdentity,
    TokenRejectedError,
    TokenRequiredError,
    encode_hs256,
    make_authenticator,
    signing_key_accessor,
    token_from_metadata,
)
from kuma.xds.core import ProxyId
from kuma.xds.server.ads import AuthenticationError
from tests.tokens.support import manager_with_key, shared_key

pytestmark = pytest.mark.anyio

WEB = ProxyId("default", "web-01")


def claims_of(token: str) -> dict[str, str]:
    segment = token.split(".")[1]
    decoded: dict[str, str] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


async def test_issue_and_verify_round_trip() -> None:
    manager = await manager_with_key()
    issuer = DataplaneTokenIssuer(signing_key_accessor(manager))
    token = await issuer.issue("web-01", "default")
    assert claims_of(token) == {"Name": "web-01", "Mesh": "default"}
    assert list(claims_of(token)) == ["Name", "Mesh"]
    assert token == encode_hs256({"Name": "web-01", "Mesh": "default"}, shared_key())
    assert await issuer.verify(token) == TokenIdentity(mesh="default", name="web-01")
    # the same claims and key give the same token (no time claims, never expires)
    assert await issuer.issue("web-01", "default") == token


async def test_issue_needs_a_name_and_a_mesh() -> None:
    issuer = DataplaneTokenIssuer(signing_key_accessor(await manager_with_key()))
    with pytest.raises(ValueError, match="name must not be empty"):
        await issuer.issue("", "default")
    with pytest.raises(ValueError, match="mesh must not be empty"):
        await issuer.issue("web-01", "")


async def test_no_signing_key() -> None:
    issuer = DataplaneTokenIssuer(signing_key_accessor(MemoryStore()))
    with pytest.raises(SigningKeyNotFoundError, match=r"^there is no Signing Key"):
        await issuer.issue("web-01", "default")
    authenticate = make_authenticator(MemoryStore())
    token = encode_hs256({"Name": "web-01", "Mesh": "default"}, shared_key())
    with pytest.raises(SigningKeyNotFoundError):
        await authenticate(WEB, {"authorization": token})


async def test_verify_refuses_tokens_without_kumas_claims() -> None:
    issuer = DataplaneTokenIssuer(signing_key_accessor(await manager_with_key()))
    cases = [
        ({"Name": "web-01"}, "could not parse token: the token names no dataplane"),
        (
            {"name": "web-01", "mesh": "default"},
            "could not parse token: the token names no dataplane",
        ),
        (
            {"Name": 1, "Mesh": "default"},
            "could not parse token: the Name and Mesh claims must be text",
        ),
    ]
    for claims, message in cases:
        with pytest.raises(InvalidTokenError) as info:
            await issuer.verify(encode_hs256(claims, shared_key()))
        assert str(info.value) == message


async def test_authenticator_accepts_the_dataplanes_own_token() -> None:
    manager = await manager_with_key()
    token = await DataplaneTokenIssuer(signing_key_accessor(manager)).issue("web-01", "default")
    for keys in (manager, manager.store, signing_key_accessor(manager)):
        authenticate = make_authenticator(keys, enabled=True)
        await authenticate(WEB, {"authorization": token})
    authenticate = make_authenticator(DataplaneTokenIssuer(signing_key_accessor(manager)))
    for value in (token, f"Bearer {token}", f"bearer  {token}", f"{token}\n", f"  {token} "):
        await authenticate(WEB, {"authorization": value})
    await authenticate(WEB, {"Authorization": token})


@pytest.mark.parametrize(
    ("metadata", "error", "message"),
    [
        (
            {},
            TokenRequiredError,
            'a dataplane token is required: the request has no "authorization" metadata',
        ),
        ({"authorization": ""}, TokenRequiredError, None),
        ({"authorization": "  \n"}, TokenRequiredError, None),
        ({"x-other": "token"}, TokenRequiredError, None),
        (
            {"authorization": "garbage"},
            TokenRejectedError,
            "could not parse token: token contains an invalid number of segments",
        ),
        ({"authorization": "Bearer"}, TokenRejectedError, None),
        (
            {"authorization": "YQ.b.c"},
            TokenRejectedError,
            "could not parse token: the header is not valid JSON",
        ),
    ],
)
async def test_authenticator_refuses_missing_and_garbled_tokens(
    metadata: dict[str, str], error: type[AuthenticationError], message: str | None
) -> None:
    authenticate = make_authenticator(await manager_with_key())
    with pytest.raises(error) as info:
        await authenticate(WEB, metadata)
    assert isinstance(info.value, AuthenticationError)
    if message is not None:
        assert str(info.value) == message


async def test_authenticator_refuses_other_dataplanes_meshes_and_keys() -> None:
    manager = await manager_with_key()
    issuer = DataplaneTokenIssuer(signing_key_accessor(manager))
    authenticate = make_authenticator(manager)
    cases = [
        (
            await issuer.issue("web-02", "default"),
            "proxy name from requestor: web-01 is different than in token: web-02",
        ),
        (
            await issuer.issue("web-01", "demo"),
            "proxy mesh from requestor: default is different than in token: demo",
        ),
        (
            encode_hs256({"Name": "web-01", "Mesh": "default"}, b"another control plane's key"),
            "could not parse token: signature is invalid",
        ),
    ]
    for token, message in cases:
        with pytest.raises(TokenRejectedError) as info:
            await authenticate(WEB, {"authorization": token})
        assert str(info.value) == message


async def test_a_replaced_signing_key_invalidates_old_tokens() -> None:
    from kuma.model import registry
    from kuma.tokens import SIGNING_KEY_MESH, SIGNING_KEY_NAME

    manager = await manager_with_key()
    issuer = DataplaneTokenIssuer(signing_key_accessor(manager))
    authenticate = make_authenticator(manager)
    old = await issuer.issue("web-01", "default")
    secret = await manager.get(registry.SECRET, SIGNING_KEY_NAME, SIGNING_KEY_MESH)
    secret.spec.data = b"a new key"
    await manager.store.update(secret)
    with pytest.raises(TokenRejectedError, match="signature is invalid"):
        await authenticate(WEB, {"authorization": old})
    await authenticate(WEB, {"authorization": await issuer.issue("web-01", "default")})


async def test_disabled_authenticator_lets_everyone_in() -> None:
    authenticate = make_authenticator(MemoryStore(), enabled=False)  # no key needed
    await authenticate(WEB, {})
    await authenticate(WEB, {"authorization": "garbage"})


def test_token_from_metadata() -> None:
    assert token_from_metadata({}) == ""
    assert token_from_metadata({"authorization": " t \n"}) == "t"
    assert token_from_metadata({"authorization": "Bearer t"}) == "t"
    assert token_from_metadata({"AUTHORIZATION": "t"}) == "t"
    assert token_from_metadata({"authorization": "Basic t"}) == "Basic t"
