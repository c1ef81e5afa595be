"""SDS streams authenticated by dataplane tokens: the real SdsServer (gRPC over TLS on
127.0.0.1) with `make_authenticator`, the token in `authorization` metadata (where Envoy's
file_based_metadata call credentials put it)."""

from __future__ import annotations

import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from kuma.manager import ResourceManager
from kuma.tokens import (
    DataplaneTokenIssuer,
    ensure_signing_key,
    get_signing_key,
    make_authenticator,
    signing_key_accessor,
)
from kuma.xds.core import ProxyId
from tests.sds.harness import request, sds_env, secrets_of

pytestmark = pytest.mark.anyio

WEB = ProxyId("demo", "web-1")


async def test_sds_serves_only_the_tokens_dataplane() -> None:
    managers: list[ResourceManager] = []

    async def key() -> bytes:  # the harness builds its manager after the authenticator
        return await get_signing_key(managers[0])

    async with sds_env(authenticator=make_authenticator(key)) as env:
        managers.append(env.manager)
        await ensure_signing_key(env.manager)
        issuer = DataplaneTokenIssuer(signing_key_accessor(env.manager))
        token = await issuer.issue("web-1", "demo")

        async with env.client(metadata={"authorization": token}) as client:
            await client.send(request("identity_cert", "mesh_ca"))
            assert sorted(secrets_of(await client.recv())) == ["identity_cert", "mesh_ca"]

        other = await issuer.issue("web-2", "demo")
        for metadata, message in [
            (
                {"authorization": other},
                "authentication failed: proxy name from requestor: web-1 is different than in "
                "token: web-2",
            ),
            (
                None,
                "authentication failed: a dataplane token is required: the request has no "
                '"authorization" metadata',
            ),
        ]:
            async with env.client(metadata=metadata) as client:
                await client.send(request("identity_cert"))
                with pytest.raises(GRPCError) as info:
                    await client.recv()
            assert info.value.status is Status.UNAUTHENTICATED
            assert info.value.message == message
