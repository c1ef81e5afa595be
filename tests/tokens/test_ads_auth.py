"""ADS streams authenticated by dataplane tokens: the real AdsServer on 127.0.0.1 with
`make_authenticator`, and a grpclib client playing Envoy (token in `authorization` metadata)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from kuma.manager import ResourceManager
from kuma.tokens import DataplaneTokenIssuer, encode_hs256, make_authenticator, signing_key_accessor
from kuma.xds.core import CLUSTER, ProxyId, Snapshot, XdsResource
from kuma.xds.server.ads import AdsServer
from tests.tokens.support import manager_with_key
from tests.xds.server.harness import AdsClient, StaticSource, node_request

pytestmark = pytest.mark.anyio

WEB = ProxyId("default", "web-01")
SNAPSHOT = Snapshot.build(
    [
        XdsResource(
            "backend", CLUSTER, cluster_pb2.Cluster(name="backend", type=cluster_pb2.Cluster.EDS)
        )
    ]
)


@dataclass
class Env:
    manager: ResourceManager
    source: StaticSource
    server: AdsServer
    port: int
    issuer: DataplaneTokenIssuer


async def serve(enabled: bool) -> AsyncIterator[Env]:
    manager = await manager_with_key()
    source = StaticSource()
    source.set(WEB, SNAPSHOT)
    server = AdsServer(
        source, instance_id="cp-test", authenticator=make_authenticator(manager, enabled)
    )
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            lambda task_status: server.run(host="127.0.0.1", port=0, task_status=task_status)
        )
        yield Env(
            manager, source, server, port, DataplaneTokenIssuer(signing_key_accessor(manager))
        )
        tg.cancel_scope.cancel()


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async for e in serve(enabled=True):
        yield e


@pytest.fixture
async def open_env() -> AsyncIterator[Env]:
    async for e in serve(enabled=False):
        yield e


async def test_a_stream_with_the_dataplanes_token_is_served(env: Env) -> None:
    token = await env.issuer.issue("web-01", "default")
    async with AdsClient(env.port, metadata={"authorization": token}) as client:
        await client.send(node_request(CLUSTER, node_id=str(WEB)))
        response = await client.recv()
        assert response.type_url == CLUSTER
        assert len(response.resources) == 1
        assert [s.proxy_id for s in env.server.streams] == [WEB]
    assert [p for p, _ in env.source.connects] == [WEB]


async def test_bearer_tokens_are_accepted(env: Env) -> None:
    token = await env.issuer.issue("web-01", "default")
    async with AdsClient(env.port, metadata={"authorization": f"Bearer {token}"}) as client:
        await client.send(node_request(CLUSTER, node_id=str(WEB)))
        assert (await client.recv()).type_url == CLUSTER


async def refused(env: Env, metadata: dict[str, str] | None) -> str:
    async with AdsClient(env.port, metadata=metadata) as client:
        await client.send(node_request(CLUSTER, node_id=str(WEB)))
        with pytest.raises(GRPCError) as info:
            await client.recv()
    assert info.value.status is Status.UNAUTHENTICATED
    assert env.source.connects == []  # nothing was served, not even a watch opened
    assert env.server.streams == []
    return str(info.value.message)


async def test_streams_without_a_valid_token_are_unauthenticated(env: Env) -> None:
    other_dp = await env.issuer.issue("web-02", "default")
    other_mesh = await env.issuer.issue("web-01", "demo")
    other_key = encode_hs256({"Name": "web-01", "Mesh": "default"}, b"some other key")
    cases = [
        (
            None,
            "authentication failed: a dataplane token is required: the request has no "
            '"authorization" metadata',
        ),
        ({"authorization": "  "}, None),
        (
            {"authorization": "garbage"},
            "authentication failed: could not parse token: token contains an invalid number of "
            "segments",
        ),
        (
            {"authorization": other_dp},
            "authentication failed: proxy name from requestor: web-01 is different than in "
            "token: web-02",
        ),
        (
            {"authorization": other_mesh},
            "authentication failed: proxy mesh from requestor: default is different than in "
            "token: demo",
        ),
        (
            {"authorization": other_key},
            "authentication failed: could not parse token: signature is invalid",
        ),
    ]
    for metadata, message in cases:
        got = await refused(env, metadata)
        if message is not None:
            assert got == message
        else:
            assert got.startswith("authentication failed: a dataplane token is required")


async def test_a_stream_for_another_proxy_with_a_valid_token_is_refused(env: Env) -> None:
    """A token is only good for the node id it was issued for."""
    token = await env.issuer.issue("web-01", "default")
    async with AdsClient(env.port, metadata={"authorization": token}) as client:
        await client.send(node_request(CLUSTER, node_id="default.db-01"))
        with pytest.raises(GRPCError) as info:
            await client.recv()
    assert info.value.status is Status.UNAUTHENTICATED
    assert info.value.message == (
        "authentication failed: proxy name from requestor: db-01 is different than in token: web-01"
    )
    assert env.source.connects == []


async def test_no_signing_key_is_an_internal_error(env: Env) -> None:
    from kuma.model import registry
    from kuma.tokens import SIGNING_KEY_MESH, SIGNING_KEY_NAME

    token = await env.issuer.issue("web-01", "default")
    await env.manager.store.delete(registry.SECRET, SIGNING_KEY_NAME, SIGNING_KEY_MESH)
    async with AdsClient(env.port, metadata={"authorization": token}) as client:
        await client.send(node_request(CLUSTER, node_id=str(WEB)))
        with pytest.raises(GRPCError) as info:
            await client.recv()
    assert info.value.status is Status.INTERNAL
    assert env.source.connects == []


async def test_tokens_turned_off_serve_everyone(open_env: Env) -> None:
    for metadata in (None, {"authorization": "garbage"}):
        async with AdsClient(open_env.port, metadata=metadata) as client:
            await client.send(node_request(CLUSTER, node_id=str(WEB)))
            assert (await client.recv()).type_url == CLUSTER
