"""Authenticating dataplanes by their token, for the ADS, SDS and bootstrap servers.

    authenticate = make_authenticator(manager, enabled=cfg.admin_server.apis.dataplane_token.enabled)
    AdsServer(reconciler, ..., authenticator=authenticate)
    SdsServer(manager, ca_managers, authenticator=authenticate)
    build_bootstrap_app(manager, settings, authenticator=authenticate)

The authenticator is `async (proxy_id, metadata) -> None`. It reads the token from the
`authorization` metadata (the raw token, or `Bearer <token>`; surrounding whitespace, such as
the newline of a token file Envoy read, is ignored), verifies its signature with the signing
key and checks that it was issued for this proxy (Kuma's messages:
`proxy name from requestor: X is different than in token: Y`, the same for the mesh). It raises:

* TokenRequiredError (an AuthenticationError) when there is no token;
* TokenRejectedError (an AuthenticationError) when the token is garbled, signed with another
  key, or issued for another dataplane;
* SigningKeyNotFoundError or a store error when the check itself cannot be made (the servers
  answer those as internal errors: the dataplane retries).

With `enabled=False` (`adminServer.apis.dataplane_token.enabled: false`) every proxy is let in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import structlog

from kuma.manager import ResourceManager
from kuma.store.base import ResourceStore
from kuma.tokens.issuer import DataplaneTokenIssuer, InvalidTokenError
from kuma.tokens.signing_key import SigningKeyAccessor, signing_key_accessor
from kuma.xds.core import ProxyId
from kuma.xds.server.ads import AuthenticationError

__all__ = [
    "AUTHORIZATION",
    "DataplaneAuthenticator",
    "TokenRejectedError",
    "TokenRequiredError",
    "make_authenticator",
    "token_from_metadata",
]

log = structlog.get_logger("tokens")

AUTHORIZATION = "authorization"
"""The gRPC metadata key (HTTP/2 header) carrying the dataplane token."""

DataplaneAuthenticator = Callable[[ProxyId, Mapping[str, str]], Awaitable[None]]
"""`async (proxy_id, metadata) -> None`; raises AuthenticationError to refuse the proxy."""


class TokenRequiredError(AuthenticationError):
    """The dataplane presented no token although tokens are required."""


class TokenRejectedError(AuthenticationError):
    """The dataplane's token is not valid, or not valid for this dataplane."""


def token_from_metadata(metadata: Mapping[str, str]) -> str:
    """The token in `metadata["authorization"]` (key matched case-insensitively), without a
    `Bearer ` prefix and surrounding whitespace; "" when there is none."""
    value = metadata.get(AUTHORIZATION)
    if value is None:
        value = next((v for k, v in metadata.items() if k.lower() == AUTHORIZATION), "")
    token = value.strip()
    scheme, _, rest = token.partition(" ")
    if scheme.lower() == "bearer" and rest:
        token = rest.strip()
    return token


def make_authenticator(
    keys: ResourceManager | ResourceStore | SigningKeyAccessor | DataplaneTokenIssuer,
    enabled: bool = True,
) -> DataplaneAuthenticator:
    """The authenticator of dataplane tokens signed with the key `keys` gives access to: a
    resource manager or store (the key is read from its Secret on every check), a
    `SigningKeyAccessor`, or a `DataplaneTokenIssuer`. `enabled=False` allows every proxy."""
    if not enabled:

        async def allow_all(proxy_id: ProxyId, metadata: Mapping[str, str]) -> None:
            return None

        return allow_all

    if isinstance(keys, DataplaneTokenIssuer):
        issuer = keys
    elif isinstance(keys, ResourceManager | ResourceStore):
        issuer = DataplaneTokenIssuer(signing_key_accessor(keys))
    else:
        issuer = DataplaneTokenIssuer(keys)

    async def authenticate(proxy_id: ProxyId, metadata: Mapping[str, str]) -> None:
        token = token_from_metadata(metadata)
        if not token:
            raise TokenRequiredError(
                f'a dataplane token is required: the request has no "{AUTHORIZATION}" metadata'
            )
        try:
            identity = await issuer.verify(token)
        except InvalidTokenError as e:
            raise TokenRejectedError(str(e)) from None
        if identity.name != proxy_id.name:
            raise TokenRejectedError(
                f"proxy name from requestor: {proxy_id.name} is different than in token: "
                f"{identity.name}"
            )
        if identity.mesh != proxy_id.mesh:
            raise TokenRejectedError(
                f"proxy mesh from requestor: {proxy_id.mesh} is different than in token: "
                f"{identity.mesh}"
            )
        log.debug("dataplane token verified", mesh=proxy_id.mesh, dataplane=proxy_id.name)

    return authenticate
