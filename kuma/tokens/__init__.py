"""Dataplane tokens (Kuma 0.7.3's builtin tokens, verified on ADS as well, like Kuma 1.x).

    await ensure_signing_key(manager)                       # kuma-cp start
    issuer = DataplaneTokenIssuer(signing_key_accessor(manager))
    token = await issuer.issue("web-01", "default")          # admin server: POST /tokens
    authenticate = make_authenticator(manager, enabled=True) # ADS, SDS and bootstrap servers
    await authenticate(ProxyId("default", "web-01"), {"authorization": token})

See signing_key.py (the key and its Secret), jwt.py (the token format), issuer.py (issue and
read) and auth.py (the servers' authenticator). docs/tokens.md is the operator's guide.
"""

from kuma.tokens.auth import (
    AUTHORIZATION,
    DataplaneAuthenticator,
    TokenRejectedError,
    TokenRequiredError,
    make_authenticator,
    token_from_metadata,
)
from kuma.tokens.issuer import DataplaneTokenIssuer, InvalidTokenError, TokenIdentity
from kuma.tokens.jwt import JwtError, decode_hs256, encode_hs256
from kuma.tokens.signing_key import (
    SIGNING_KEY_MESH,
    SIGNING_KEY_NAME,
    SigningKeyAccessor,
    SigningKeyNotFoundError,
    ensure_signing_key,
    get_signing_key,
    new_signing_key,
    signing_key_accessor,
)

__all__ = [
    "AUTHORIZATION",
    "SIGNING_KEY_MESH",
    "SIGNING_KEY_NAME",
    "DataplaneAuthenticator",
    "DataplaneTokenIssuer",
    "InvalidTokenError",
    "JwtError",
    "SigningKeyAccessor",
    "SigningKeyNotFoundError",
    "TokenIdentity",
    "TokenRejectedError",
    "TokenRequiredError",
    "decode_hs256",
    "encode_hs256",
    "ensure_signing_key",
    "get_signing_key",
    "make_authenticator",
    "new_signing_key",
    "signing_key_accessor",
    "token_from_metadata",
]
