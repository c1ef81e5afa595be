"""SDS test harness: a control plane slice (memory store, CA hook, SdsServer over TLS on
127.0.0.1) and a grpclib SDS client that verifies the server's certificate."""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import h2.exceptions
from cryptography import x509
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from kuma.ca import CaManager
from kuma.manager import ResourceManager
from kuma.manager.ca import enable_mesh_ca
from kuma.sds import SdsServer, SdsServerTls, sds_server_tls
from kuma.sds.server import SDS_FETCH_METHOD, SDS_STREAM_METHOD
from kuma.store.memory import MemoryStore
from kuma.xds.core import SECRET
from kuma.xds.server.ads import Authenticator
from tests.ca.support import dataplane, mesh_yaml
from tests.xds.server.harness import recv_message

DiscoveryRequest: Any = discovery_pb2.DiscoveryRequest
DiscoveryResponse: Any = discovery_pb2.DiscoveryResponse
Secret: Any = secret_pb2.Secret

MTLS = """
enabledBackend: ca-1
backends:
- name: ca-1
  type: builtin
  dpCert:
    rotation: {expiration: 1h}
- name: ca-2
  type: builtin
"""


@dataclass
class FakeClock:
    """Wall time the test moves by hand."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0))

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta


@dataclass
class Env:
    manager: ResourceManager
    ca_managers: dict[str, CaManager]
    server: SdsServer
    port: int
    tls: SdsServerTls
    clock: FakeClock

    def client(self, *, metadata: dict[str, str] | None = None) -> SdsClient:
        return SdsClient(self.port, self.tls.cert_pem, metadata=metadata)


@asynccontextmanager
async def sds_env(
    *,
    authenticator: Authenticator | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    refresh_interval: float = 0.05,
) -> AsyncIterator[Env]:
    manager = ResourceManager(MemoryStore())
    ca_managers = dict(enable_mesh_ca(manager))
    await manager.create(mesh_yaml("demo", MTLS))
    await manager.create(dataplane("web-1", "demo", "web"))
    fake = FakeClock()
    server = SdsServer(
        manager,
        ca_managers,
        authenticator=authenticator,
        refresh_interval=refresh_interval,
        clock=clock or fake,
        initial_backoff=0.2,
        max_backoff=0.4,
    )
    tls = sds_server_tls(hosts=["127.0.0.1", "localhost"])
    async with anyio.create_task_group() as tg:
        port = await tg.start(partial(server.run, host="127.0.0.1", port=0, ssl=tls.ssl_context()))
        try:
            yield Env(manager, ca_managers, server, port, tls, fake)
        finally:
            tg.cancel_scope.cancel()


def client_ssl(server_cert: bytes) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=server_cert.decode())
    ctx.set_alpn_protocols(["h2"])
    return ctx


def request(
    *names: str,
    node_id: str = "demo.web-1",
    type_url: str = SECRET,
    nonce: str = "",
    version: str = "",
) -> Any:
    req = DiscoveryRequest(
        type_url=type_url,
        resource_names=list(names),
        response_nonce=nonce,
        version_info=version,
    )
    req.node.id = node_id
    return req


def ack(response: Any, *names: str) -> Any:
    return DiscoveryRequest(
        type_url=response.type_url,
        response_nonce=response.nonce,
        version_info=response.version_info,
        resource_names=list(names),
    )


def secrets_of(response: Any) -> dict[str, Any]:
    out = {}
    for any_msg in response.resources:
        secret = Secret()
        assert any_msg.Unpack(secret)
        out[secret.name] = secret
    return out


def identity_cert(response: Any) -> x509.Certificate:
    secret = secrets_of(response)["identity_cert"]
    return x509.load_pem_x509_certificate(secret.tls_certificate.certificate_chain.inline_bytes)


def uris(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


class SdsClient:
    """One StreamSecrets stream over TLS, trusting only the SDS server's certificate."""

    def __init__(self, port: int, server_cert: bytes, *, metadata: dict[str, str] | None) -> None:
        self._port = port
        self._ssl = client_ssl(server_cert)
        self._metadata = metadata
        self.channel: Channel | None = None
        self.stream: Any = None

    async def __aenter__(self) -> SdsClient:
        self.channel = Channel("127.0.0.1", self._port, ssl=self._ssl)
        self.stream = self.channel.request(
            SDS_STREAM_METHOD,
            Cardinality.STREAM_STREAM,
            DiscoveryRequest,
            DiscoveryResponse,
            metadata=self._metadata,
        )
        await self.stream.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            with (
                anyio.move_on_after(2),
                contextlib.suppress(
                    GRPCError, ProtocolError, StreamTerminatedError, h2.exceptions.ProtocolError
                ),
            ):
                await self.stream.end()
                await self.stream.__aexit__(None, None, None)
        finally:
            assert self.channel is not None
            self.channel.close()

    async def send(self, message: Any) -> None:
        await self.stream.send_message(message)

    async def recv(self, within: float = 10.0) -> Any:
        with anyio.fail_after(within):
            return await recv_message(self.stream)

    async def nothing_within(self, seconds: float) -> bool:
        with anyio.move_on_after(seconds):
            await recv_message(self.stream)
            return False
        return True


async def fetch(env: Env, *names: str, node_id: str = "demo.web-1") -> Any:
    channel = Channel("127.0.0.1", env.port, ssl=client_ssl(env.tls.cert_pem))
    try:
        with anyio.fail_after(10):
            async with channel.request(
                SDS_FETCH_METHOD, Cardinality.UNARY_UNARY, DiscoveryRequest, DiscoveryResponse
            ) as stream:
                await stream.send_message(request(*names, node_id=node_id), end=True)
                response = await stream.recv_message()
                await stream.recv_trailing_metadata()
                return response
    finally:
        channel.close()
