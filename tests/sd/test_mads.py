"""The MADS client: the ACK/NACK state machine, and one stream against a scripted gRPC server.

The scripted server (a real grpclib server on loopback) sends what kuma-cp never would, such as
resources of the wrong type, to show that the client NACKs them and keeps its last good state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import pytest
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest, DiscoveryResponse
from google.protobuf.any_pb2 import Any as AnyPb
from grpclib.const import Cardinality, Handler
from grpclib.exceptions import StreamTerminatedError
from grpclib.server import Server, Stream

from kuma.pb.kuma.observability.v1alpha1 import MonitoringAssignment, MonitoringAssignmentTarget
from kuma.sd.mads import (
    STREAM_METHOD,
    TYPE_URL,
    MadsAddress,
    MadsSession,
    decode_assignments,
    stream_assignments,
)

pytestmark = pytest.mark.anyio


def _packed(name: str, address: str) -> AnyPb:
    msg = MonitoringAssignment(
        name=name,
        targets=[MonitoringAssignmentTarget(labels={"__address__": address})],
        labels={"job": name},
    )
    return AnyPb(type_url=TYPE_URL, value=bytes(msg))


def _response(version: str, nonce: str, *resources: AnyPb) -> DiscoveryResponse:
    return DiscoveryResponse(
        version_info=version, nonce=nonce, type_url=TYPE_URL, resources=list(resources)
    )


BAD_TYPE = AnyPb(type_url="type.googleapis.com/envoy.config.cluster.v3.Cluster", value=b"")


async def test_session_acks_and_nacks() -> None:
    session = MadsSession("prom-1")
    first = session.first_request()
    assert first.node.id == "prom-1"
    assert first.node.user_agent_name == "kuma-prometheus-sd"
    assert first.type_url == TYPE_URL
    assert (first.version_info, first.response_nonce) == ("", "")

    ok = session.on_response(_response("v1", "n1", _packed("a", "10.0.0.1:5670")))
    assert ok.assignments is not None
    assert [a.name for a in ok.assignments] == ["a"]
    assert (ok.request.version_info, ok.request.response_nonce) == ("v1", "n1")
    assert not ok.request.HasField("error_detail")

    bad = session.on_response(_response("v2", "n2", _packed("a", "x:1"), BAD_TYPE))
    assert bad.assignments is None
    assert (bad.request.version_info, bad.request.response_nonce) == ("v1", "n2")
    assert bad.request.error_detail.message == (
        'resources[1]: unexpected type_url "type.googleapis.com/envoy.config.cluster.v3.Cluster" '
        f'(want "{TYPE_URL}")'
    )
    garbage = session.on_response(
        _response("v3", "n3", AnyPb(type_url=TYPE_URL, value=b"\x0a\xff\xff"))
    )
    assert garbage.assignments is None
    assert garbage.request.version_info == "v1"
    assert garbage.request.error_detail.message.startswith(
        "resources[0]: not a valid MonitoringAssignment"
    )
    # a new stream starts from scratch: the server sends its whole state again
    assert session.first_request().version_info == ""


def test_decode_rejects_a_response_of_another_type() -> None:
    response = DiscoveryResponse(type_url="type.googleapis.com/envoy.config.listener.v3.Listener")
    with pytest.raises(Exception, match="unexpected type_url"):
        decode_assignments(response)
    assert decode_assignments(DiscoveryResponse(type_url=TYPE_URL)) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("grpc://kuma-cp:5676", MadsAddress("kuma-cp", 5676, tls=False)),
        ("grpcs://127.0.0.1:5676", MadsAddress("127.0.0.1", 5676, tls=True)),
        ("grpc://[::1]:5676", MadsAddress("::1", 5676, tls=False)),
    ],
)
def test_mads_address(url: str, expected: MadsAddress) -> None:
    assert MadsAddress.parse(url) == expected
    assert str(expected) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://kuma-cp:5676", 'unsupported scheme "http"'),
        ("grpc://kuma-cp", "must name a host and a port"),
        ("grpc://kuma-cp:port", "invalid MADS server URL"),
    ],
)
def test_bad_mads_address(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MadsAddress.parse(url)


class ScriptedMads:
    """Sends `responses` one by one, recording the request that follows each, then ends."""

    def __init__(self, responses: list[DiscoveryResponse]) -> None:
        self.responses = responses
        self.requests: list[DiscoveryRequest] = []

    async def stream(self, stream: Stream[DiscoveryRequest, DiscoveryResponse]) -> None:
        first = await stream.recv_message()
        assert first is not None
        self.requests.append(first)
        for response in self.responses:
            await stream.send_message(response)
            reply = await stream.recv_message()
            assert reply is not None
            self.requests.append(reply)

    def __mapping__(self) -> Mapping[str, Handler]:
        return {
            STREAM_METHOD: Handler(
                self.stream, Cardinality.STREAM_STREAM, DiscoveryRequest, DiscoveryResponse
            )
        }


async def test_stream_over_grpc_acks_nacks_and_ends_with_the_server() -> None:
    script = ScriptedMads(
        [
            _response("v1", "n1", _packed("a", "10.0.0.1:5670"), _packed("b", "10.0.0.2:5670")),
            _response("v2", "n2", BAD_TYPE),
            _response("v3", "n3", _packed("b", "10.0.0.2:5670")),
        ]
    )
    server = Server([script])
    await server.start("127.0.0.1", 0)
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    received: list[list[str]] = []

    async def on_assignments(assignments: list[Any]) -> None:
        received.append([a.name for a in assignments])

    try:
        with anyio.fail_after(10):
            await stream_assignments(
                MadsAddress("127.0.0.1", port, tls=False), MadsSession("prom-1"), on_assignments
            )
    finally:
        server.close()
        await server.wait_closed()

    assert received == [["a", "b"], ["b"]]  # the bad response never reached the file
    first, ack1, nack2, ack3 = script.requests
    assert first.node.id == "prom-1"
    assert (ack1.version_info, ack1.response_nonce, ack1.error_detail.message) == ("v1", "n1", "")
    assert (nack2.version_info, nack2.response_nonce) == ("v1", "n2")
    assert "unexpected type_url" in nack2.error_detail.message
    assert (ack3.version_info, ack3.response_nonce) == ("v3", "n3")


async def test_grpcs_connects_without_verifying_the_server() -> None:
    """`grpcs://`: TLS, but (as Kuma's client) without checking the server's certificate."""
    import ssl

    import trustme

    cert = trustme.CA().issue_cert("kuma-cp.internal")  # a name the client never asks for
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    server_ctx.set_alpn_protocols(["h2"])
    script = ScriptedMads([_response("v1", "n1", _packed("a", "10.0.0.1:5670"))])
    server = Server([script])
    await server.start("127.0.0.1", 0, ssl=server_ctx)
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    received: list[list[str]] = []

    async def on_assignments(assignments: list[Any]) -> None:
        received.append([a.name for a in assignments])

    try:
        with anyio.fail_after(10):
            await stream_assignments(
                MadsAddress.parse(f"grpcs://127.0.0.1:{port}"), MadsSession("x"), on_assignments
            )
    finally:
        server.close()
        await server.wait_closed()
    assert received == [["a"]]
    assert script.requests[1].response_nonce == "n1"


async def test_stream_raises_when_nothing_listens() -> None:
    from tests.support.procs import free_port

    with anyio.fail_after(10), pytest.raises(OSError):
        await stream_assignments(
            MadsAddress("127.0.0.1", free_port(), tls=False), MadsSession("x"), _ignore
        )


async def test_a_silent_server_is_detected_by_pings() -> None:
    """A peer that accepts the connection and then says nothing (a host gone behind a firewall
    looks the same): the unanswered ping ends the stream with an error."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        with anyio.fail_after(10), pytest.raises(StreamTerminatedError):
            await stream_assignments(
                MadsAddress("127.0.0.1", port, tls=False),
                MadsSession("x"),
                _ignore,
                keepalive_time=0.3,
                keepalive_timeout=0.3,
            )
    finally:
        listener.close()


async def _ignore(assignments: list[Any]) -> None:
    pass
