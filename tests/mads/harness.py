"""MADS test harness: a memory store behind a MadsServer on 127.0.0.1, and a grpclib client that
speaks the v3 discovery messages and decodes every assignment with betterproto2."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import h2.exceptions
from envoy.service.discovery.v3 import discovery_pb2
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

from kuma.mads import MADS_FETCH_METHOD, MADS_STREAM_METHOD, MONITORING_ASSIGNMENT_TYPE, MadsServer
from kuma.manager import ResourceManager
from kuma.model.resource import Resource
from kuma.model.yamlio import load_resources
from kuma.pb.kuma.observability.v1alpha1 import MonitoringAssignment
from kuma.store.memory import MemoryStore
from tests.xds.server.harness import recv_message

DiscoveryRequest: Any = discovery_pb2.DiscoveryRequest
DiscoveryResponse: Any = discovery_pb2.DiscoveryResponse

PROMETHEUS = """
metrics:
  enabledBackend: prom-1
  backends:
  - name: prom-1
    type: prometheus
    conf: {port: 1234, path: /non-standard-path}
"""


def resource(text: str) -> Resource:
    (res,) = load_resources(text)
    return res


def mesh(name: str, body: str = "") -> Resource:
    return resource(f"type: Mesh\nname: {name}\n{body}")


def dataplane(
    name: str,
    mesh: str = "default",
    service: str = "backend",
    *,
    address: str = "192.168.0.1",
    extra: str = "",
    port: int = 80,
) -> Resource:
    return resource(
        f"""
type: Dataplane
name: {name}
mesh: {mesh}
networking:
  address: {address}
  inbound:
  - port: {port}
    servicePort: 8080
    tags:
      kuma.io/service: {service}
{extra}"""
    )


def assignments_of(response: Any) -> dict[str, MonitoringAssignment]:
    """Name -> assignment, checking every resource's type URL."""
    out: dict[str, MonitoringAssignment] = {}
    for item in response.resources:
        assert item.type_url == MONITORING_ASSIGNMENT_TYPE
        assignment = MonitoringAssignment.parse(item.value)
        out[assignment.name] = assignment
    return out


def request(*, node_id: str = "kuma_sd", version: str = "", nonce: str = "", **kw: Any) -> Any:
    req = DiscoveryRequest(
        type_url=kw.pop("type_url", MONITORING_ASSIGNMENT_TYPE),
        version_info=version,
        response_nonce=nonce,
        **kw,
    )
    req.node.id = node_id
    return req


def ack(response: Any) -> Any:
    return DiscoveryRequest(
        type_url=response.type_url,
        version_info=response.version_info,
        response_nonce=response.nonce,
    )


def nack(response: Any, accepted_version: str, message: str = "bad assignment") -> Any:
    req = DiscoveryRequest(
        type_url=response.type_url, version_info=accepted_version, response_nonce=response.nonce
    )
    req.error_detail.code = 3
    req.error_detail.message = message
    return req


class MadsClient:
    """One StreamMonitoringAssignments stream over plaintext gRPC."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._host = host
        self._port = port
        self.channel: Channel | None = None
        self.stream: Any = None

    async def __aenter__(self) -> MadsClient:
        self.channel = Channel(self._host, self._port)
        self.stream = self.channel.request(
            MADS_STREAM_METHOD, Cardinality.STREAM_STREAM, DiscoveryRequest, DiscoveryResponse
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

    async def subscribe(self) -> Any:
        """Send the first request and return the first response."""
        await self.send(request())
        return await self.recv()


async def fetch(port: int, version: str = "") -> Any:
    channel = Channel("127.0.0.1", port)
    try:
        with anyio.fail_after(10):
            async with channel.request(
                MADS_FETCH_METHOD, Cardinality.UNARY_UNARY, DiscoveryRequest, DiscoveryResponse
            ) as stream:
                await stream.send_message(request(version=version), end=True)
                response = await stream.recv_message()
                await stream.recv_trailing_metadata()
                return response
    finally:
        channel.close()


@dataclass
class Env:
    manager: ResourceManager
    server: MadsServer
    port: int

    def client(self) -> MadsClient:
        return MadsClient(self.port)


@asynccontextmanager
async def mads_env(*resources: Resource, **server_options: Any) -> AsyncIterator[Env]:
    """A MadsServer on a free loopback port over a memory store holding `resources`."""
    manager = ResourceManager(MemoryStore())
    for res in resources:
        await manager.create(res)
    server = MadsServer(manager, initial_backoff=0.2, max_backoff=0.4, **server_options)
    async with anyio.create_task_group() as tg:
        port = await tg.start(partial(server.run, host="127.0.0.1", port=0))
        try:
            yield Env(manager, server, port)
        finally:
            tg.cancel_scope.cancel()
