"""The SDS server over real gRPC + TLS on 127.0.0.1: secrets, errors, auth, insights, rotation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from kuma.ca import cert_secret_name, key_secret_name
from kuma.model import registry as r
from kuma.model.resource import Resource, ResourceKey, ResourceMeta
from kuma.pb.kuma.mesh.v1alpha1 import DataplaneInsight, DiscoverySubscription
from kuma.sds.server import RENEWAL_RETRY
from kuma.xds.core import CLUSTER, ProxyId
from kuma.xds.insights import InsightRecorder
from kuma.xds.server.ads import AuthenticationError
from tests.ca.support import dataplane, mesh_yaml

from .harness import (
    MTLS,
    Env,
    ack,
    fetch,
    identity_cert,
    request,
    sds_env,
    secrets_of,
    uris,
)

pytestmark = pytest.mark.anyio

WEB = ProxyId("demo", "web-1")


async def ca_root(env: Env, backend: str = "ca-1") -> bytes:
    secret = await env.manager.get(r.SECRET, cert_secret_name("demo", backend), "demo")
    data: bytes = secret.spec.data
    return data


async def test_a_stream_gets_the_mesh_ca_and_its_identity() -> None:
    async with sds_env() as env, env.client() as client:
        await client.send(request("identity_cert", "mesh_ca"))
        response = await client.recv()
        assert (
            response.type_url
            == "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
        )
        assert response.version_info
        secrets = secrets_of(response)
        assert sorted(secrets) == ["identity_cert", "mesh_ca"]

        root_pem = await ca_root(env)
        assert secrets["mesh_ca"].validation_context.trusted_ca.inline_bytes == root_pem
        cert = identity_cert(response)
        assert uris(cert) == ["spiffe://demo/web"]
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(root_pem))
        key = serialization.load_pem_private_key(
            secrets["identity_cert"].tls_certificate.private_key.inline_bytes, None
        )
        assert key.public_key() == cert.public_key()
        assert cert.not_valid_after_utc == env.clock.now + dt.timedelta(hours=1)

        # an ACK changes nothing; nothing is re-sent
        await client.send(ack(response, "identity_cert", "mesh_ca"))
        assert await client.nothing_within(0.3)
        (stream,) = env.server.streams_of(WEB)
        assert stream.acks == 1
        assert stream.responses_sent == 1


async def test_streams_of_one_dataplane_share_its_identity() -> None:
    async with sds_env() as env, env.client() as one, env.client() as two:
        await one.send(request("identity_cert"))
        await two.send(request("mesh_ca"))
        first, second = await one.recv(), await two.recv()
        assert sorted(secrets_of(first)) == ["identity_cert"]
        assert sorted(secrets_of(second)) == ["mesh_ca"]
        async with env.client() as three:
            await three.send(request("identity_cert"))
            assert identity_cert(await three.recv()) == identity_cert(first)
        identity = env.server.identity(WEB)
        assert identity is not None
        assert identity.regenerations == 1
    assert env.server.identity(WEB) is None  # forgotten with its last stream


async def test_requests_of_other_types_are_ignored() -> None:
    async with sds_env() as env, env.client() as client:
        await client.send(request(type_url=CLUSTER))
        assert await client.nothing_within(0.3)
        await client.send(request("mesh_ca"))
        assert sorted(secrets_of(await client.recv())) == ["mesh_ca"]


async def test_the_authenticator_sees_the_token_and_can_refuse() -> None:
    seen: list[tuple[ProxyId, str | None]] = []

    async def authenticate(proxy_id: ProxyId, metadata: Mapping[str, str]) -> None:
        token = metadata.get("authorization")
        seen.append((proxy_id, token))
        if token != "good-token":
            raise AuthenticationError("the dataplane token is not valid")

    async with sds_env(authenticator=authenticate) as env:
        async with env.client(metadata={"authorization": "bad-token"}) as client:
            await client.send(request("identity_cert"))
            with pytest.raises(GRPCError) as e:
                await client.recv()
            assert e.value.status == Status.UNAUTHENTICATED
            assert e.value.message == "authentication failed: the dataplane token is not valid"
        assert env.server.identity(WEB) is None  # nothing issued to a refused proxy

        async with env.client(metadata={"authorization": "good-token"}) as client:
            await client.send(request("identity_cert"))
            assert uris(identity_cert(await client.recv())) == ["spiffe://demo/web"]
    assert seen == [(WEB, "bad-token"), (WEB, "good-token")]


@pytest.mark.parametrize(
    ("node_id", "status", "message"),
    [
        (
            "demo.nope",
            Status.NOT_FOUND,
            "Dataplane 'nope' not found in mesh 'demo'",
        ),
        (
            "plain.web-1",
            Status.FAILED_PRECONDITION,
            'mTLS is not enabled in mesh "plain": set mtls.enabledBackend on the Mesh to give '
            "its dataplanes certificates",
        ),
        (
            "web-1",
            Status.INVALID_ARGUMENT,
            "SDS request must have a valid Proxy Id 'web-1': the name should be provided after "
            "the dot",
        ),
    ],
)
async def test_proxies_that_cannot_get_an_identity(
    node_id: str, status: Status, message: str
) -> None:
    async with sds_env() as env:
        await env.manager.create(mesh_yaml("plain"))
        await env.manager.create(dataplane("web-1", "plain", "web"))
        async with env.client() as client:
            await client.send(request("identity_cert", node_id=node_id))
            with pytest.raises(GRPCError) as e:
                await client.recv()
        assert e.value.status == status
        assert e.value.message == message


async def test_each_issue_is_recorded_in_the_dataplane_insight() -> None:
    async with sds_env() as env:
        # the ADS side wrote a subscription already: it must survive
        existing = DataplaneInsight(
            subscriptions=[DiscoverySubscription(id="ads-1", control_plane_instance_id="cp")]
        )
        await env.manager.create(
            Resource(r.DATAPLANE_INSIGHT, ResourceMeta("web-1", "demo"), existing)
        )
        async with env.client() as client:
            await client.send(request("identity_cert"))
            cert = identity_cert(await client.recv())

        insight = (await env.manager.get(r.DATAPLANE_INSIGHT, "web-1", "demo")).spec
        assert [s.id for s in insight.subscriptions] == ["ads-1"]
        assert insight.m_tls.certificate_regenerations == 1
        assert insight.m_tls.certificate_expiration_time == cert.not_valid_after_utc
        assert insight.m_tls.last_certificate_regeneration == env.clock.now

        # and the ADS recorder's next flush keeps the mTLS fields
        recorder = InsightRecorder(env.manager)
        recorder.open(WEB, "cp-2").close()
        await recorder.flush()
        insight = (await env.manager.get(r.DATAPLANE_INSIGHT, "web-1", "demo")).spec
        assert len(insight.subscriptions) == 2
        assert insight.m_tls.certificate_regenerations == 1


async def test_an_insight_is_created_when_there_is_none() -> None:
    async with sds_env() as env, env.client() as client:
        await client.send(request("identity_cert"))
        await client.recv()
        insight = (await env.manager.get(r.DATAPLANE_INSIGHT, "web-1", "demo")).spec
        assert insight.subscriptions == []
        assert insight.m_tls.certificate_regenerations == 1


async def test_a_certificate_is_renewed_after_four_fifths_of_its_lifetime() -> None:
    async with sds_env() as env, env.client() as client:
        issued_at = env.clock.now
        await client.send(request("identity_cert", "mesh_ca"))
        first = await client.recv()
        await client.send(ack(first, "identity_cert", "mesh_ca"))

        env.clock.advance(dt.timedelta(minutes=47, seconds=59))  # lifetime 1h: renew at 48 min
        assert await client.nothing_within(0.4)

        env.clock.advance(dt.timedelta(seconds=2))
        second = await client.recv(within=5)
        assert second.version_info != first.version_info
        renewed = identity_cert(second)
        assert renewed.serial_number != identity_cert(first).serial_number
        now = issued_at + dt.timedelta(minutes=48, seconds=1)
        assert renewed.not_valid_before_utc == now - dt.timedelta(seconds=10)
        assert renewed.not_valid_after_utc == now + dt.timedelta(hours=1)
        # the CA did not change
        assert secrets_of(second)["mesh_ca"] == secrets_of(first)["mesh_ca"]

        insight = (await env.manager.get(r.DATAPLANE_INSIGHT, "web-1", "demo")).spec
        assert insight.m_tls.certificate_regenerations == 2
        assert insight.m_tls.last_certificate_regeneration == now
        assert insight.m_tls.certificate_expiration_time == renewed.not_valid_after_utc


async def test_new_services_get_a_new_certificate() -> None:
    async with sds_env() as env, env.client() as client:
        await client.send(request("identity_cert"))
        first = await client.recv()
        await client.send(ack(first, "identity_cert"))

        dp = await env.manager.get(r.DATAPLANE, "web-1", "demo")
        dp.spec = dataplane("web-1", "demo", "web", "admin").spec
        await env.manager.update(dp)
        second = await client.recv(within=5)
        assert uris(identity_cert(second)) == ["spiffe://demo/admin", "spiffe://demo/web"]

        # a change that leaves the services alone issues nothing
        await client.send(ack(second, "identity_cert"))
        dp = await env.manager.get(r.DATAPLANE, "web-1", "demo")
        dp.spec.networking.address = "127.0.0.2"
        await env.manager.update(dp)
        assert await client.nothing_within(0.4)


async def test_a_new_mesh_ca_reaches_the_open_stream() -> None:
    async with sds_env() as env, env.client() as client:
        await client.send(request("identity_cert", "mesh_ca"))
        first = await client.recv()
        await client.send(ack(first, "identity_cert", "mesh_ca"))

        async def set_enabled(backend: str) -> None:
            mesh = await env.manager.get(r.MESH, "demo")
            spec = mesh_yaml(
                "demo", MTLS.replace("enabledBackend: ca-1", f"enabledBackend: {backend}")
            )
            mesh.spec = spec.spec
            await env.manager.update(mesh)

        # mTLS off: the dataplane keeps what it has (its Envoy config drops TLS via ADS)
        await set_enabled('""')
        assert await client.nothing_within(0.4)

        await set_enabled("ca-2")
        second = await client.recv(within=5)
        root2 = await ca_root(env, "ca-2")
        secrets = secrets_of(second)
        assert secrets["mesh_ca"].validation_context.trusted_ca.inline_bytes == root2
        identity_cert(second).verify_directly_issued_by(x509.load_pem_x509_certificate(root2))


async def test_fetch_secrets_answers_once() -> None:
    async with sds_env() as env:
        response = await fetch(env, "mesh_ca")
        assert sorted(secrets_of(response)) == ["mesh_ca"]
        assert secrets_of(response)["mesh_ca"].validation_context.trusted_ca.inline_bytes == (
            await ca_root(env)
        )
        with pytest.raises(GRPCError) as e:
            await fetch(env, "mesh_ca", node_id="demo.nope")
        assert e.value.status == Status.NOT_FOUND


async def test_a_failed_renewal_keeps_the_certificate_and_is_retried_later() -> None:
    async with sds_env() as env, env.client() as client:
        await client.send(request("identity_cert"))
        first = await client.recv()
        await client.send(ack(first, "identity_cert"))

        # the CA's key goes missing: renewal fails, Envoy keeps what it has
        key_name = key_secret_name("demo", "ca-1")
        key = await env.manager.get(r.SECRET, key_name, "demo")
        await env.manager.delete(r.SECRET, key_name, "demo")
        env.clock.advance(dt.timedelta(minutes=49))
        assert await client.nothing_within(0.4)
        identity = env.server.identity(WEB)
        assert identity is not None
        assert identity.retry_after == env.clock.now + RENEWAL_RETRY
        assert identity.regenerations == 1

        # the key is back; the next try after RENEWAL_RETRY renews
        restored = Resource(r.SECRET, ResourceMeta(key_name, "demo"), key.spec)
        await env.manager.store.create(restored, owner=ResourceKey("Mesh", "", "demo"))
        assert await client.nothing_within(0.3)
        env.clock.advance(RENEWAL_RETRY)
        second = await client.recv(within=5)
        assert identity_cert(second).serial_number != identity_cert(first).serial_number
        assert identity.retry_after is None
