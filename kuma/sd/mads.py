"""The MADS client: kuma-cp's Monitoring Assignment Discovery Service over one xDS v3 stream.

    session = MadsSession("kuma_sd")
    await stream_assignments(MadsAddress.parse("grpc://kuma-cp:5676"), session, on_assignments)

`MadsSession` is the sans-IO half: it builds the first `DiscoveryRequest` and, for every
`DiscoveryResponse`, decodes the `MonitoringAssignment` resources and builds the reply: an ACK
(the response's version and nonce), or a NACK when a resource cannot be decoded (the last
accepted version, the response's nonce and an `error_detail` saying what is wrong).
`stream_assignments` runs one stream over grpclib until the server ends it or the connection
fails; reconnecting is the caller's job (kuma/sd/run.py).

The stream is state-of-the-world: every response carries every assignment the server has for
this client, so each accepted response replaces the previous set.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import structlog
from envoy.config.core.v3.base_pb2 import Node
from envoy.service.discovery.v3.discovery_pb2 import DiscoveryRequest, DiscoveryResponse
from grpclib.client import Channel
from grpclib.config import Configuration
from grpclib.const import Cardinality

from kuma.errors import KumaError
from kuma.pb.kuma.observability.v1alpha1 import MonitoringAssignment
from kuma.version import __version__

__all__ = [
    "STREAM_METHOD",
    "TYPE_URL",
    "DecodeError",
    "MadsAddress",
    "MadsSession",
    "Reply",
    "decode_assignments",
    "stream_assignments",
]

log = structlog.get_logger("kuma-prometheus-sd")

TYPE_URL = "type.googleapis.com/kuma.observability.v1alpha1.MonitoringAssignment"
STREAM_METHOD = (
    "/kuma.observability.v1alpha1.MonitoringAssignmentDiscoveryService/StreamMonitoringAssignments"
)

KEEPALIVE_TIME = 30.0
"""Seconds of silence on the stream after which the client pings the server."""
KEEPALIVE_TIMEOUT = 10.0
"""Seconds a ping may go unanswered before the connection counts as lost."""


class DecodeError(KumaError):
    """A discovery response whose resources are not monitoring assignments."""


@dataclass(frozen=True, slots=True)
class MadsAddress:
    """Where the MADS server listens: `grpc://host:port` (plaintext) or `grpcs://` (TLS)."""

    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> MadsAddress:
        """Raises ValueError with a clear message for anything but `grpc[s]://host:port`."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise ValueError(f'invalid MADS server URL "{url}": {e}') from None
        if parts.scheme not in ("grpc", "grpcs"):
            raise ValueError(
                f'unsupported scheme "{parts.scheme}" in MADS server URL "{url}". '
                "Use one of [grpc grpcs]"
            )
        if not parts.hostname or port is None:
            raise ValueError(f'MADS server URL "{url}" must name a host and a port')
        return cls(parts.hostname, port, parts.scheme == "grpcs")

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'grpcs' if self.tls else 'grpc'}://{host}:{self.port}"


def decode_assignments(response: DiscoveryResponse) -> list[MonitoringAssignment]:
    """The assignments of one response. Raises DecodeError naming the first bad resource."""
    if response.type_url and response.type_url != TYPE_URL:
        raise DecodeError(f'unexpected type_url "{response.type_url}" (want "{TYPE_URL}")')
    assignments: list[MonitoringAssignment] = []
    for i, resource in enumerate(response.resources):
        if resource.type_url != TYPE_URL:
            raise DecodeError(
                f'resources[{i}]: unexpected type_url "{resource.type_url}" (want "{TYPE_URL}")'
            )
        try:
            assignments.append(MonitoringAssignment.parse(resource.value))
        except Exception as e:  # betterproto2 raises assorted errors for malformed bytes
            raise DecodeError(
                f"resources[{i}]: not a valid MonitoringAssignment: {e or type(e).__name__}"
            ) from e
    return assignments


@dataclass(frozen=True, slots=True)
class Reply:
    """What to do with one response: the decoded assignments (None when rejected), the request
    to send back (ACK or NACK), and the reason for a NACK."""

    assignments: list[MonitoringAssignment] | None
    request: DiscoveryRequest
    error: str | None = None


class MadsSession:
    """ACK/NACK bookkeeping for one client across streams (sans-IO)."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.accepted_version = ""
        """version_info of the last response ACKed; a NACK sends it back."""

    def first_request(self) -> DiscoveryRequest:
        """The request that opens a stream: who we are and which type we want.

        It carries no version, so the server sends its full current state on every new stream
        (a restarted control plane's versions need not match the ones we accepted before).
        """
        return DiscoveryRequest(
            node=Node(
                id=self.node_id,
                user_agent_name="kuma-prometheus-sd",
                user_agent_version=__version__,
            ),
            type_url=TYPE_URL,
        )

    def on_response(self, response: DiscoveryResponse) -> Reply:
        """Decode `response` and build its ACK, or its NACK when it cannot be decoded."""
        try:
            assignments = decode_assignments(response)
        except DecodeError as e:
            nack = DiscoveryRequest(
                version_info=self.accepted_version,
                response_nonce=response.nonce,
                type_url=TYPE_URL,
            )
            nack.error_detail.code = 3  # google.rpc.Code INVALID_ARGUMENT
            nack.error_detail.message = str(e)
            return Reply(None, nack, str(e))
        self.accepted_version = response.version_info
        ack = DiscoveryRequest(
            version_info=response.version_info,
            response_nonce=response.nonce,
            type_url=TYPE_URL,
        )
        return Reply(assignments, ack)


def _client_ssl_context() -> ssl.SSLContext:
    # Kuma's client does not verify the MADS server: it sends no secret and only reads
    # targets that Prometheus will scrape anyway.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    return ctx


async def stream_assignments(
    address: MadsAddress,
    session: MadsSession,
    on_assignments: Callable[[list[MonitoringAssignment]], Awaitable[None]],
    *,
    keepalive_time: float = KEEPALIVE_TIME,
    keepalive_timeout: float = KEEPALIVE_TIMEOUT,
) -> None:
    """Run one `StreamMonitoringAssignments` stream until the server ends it.

    Each accepted response goes to `on_assignments` before it is ACKed. Returns when the server
    closes the stream; raises (grpclib's GRPCError or StreamTerminatedError, OSError) when the
    connection cannot be made or is lost, including a server that stops answering HTTP/2 pings
    (sent every `keepalive_time` seconds, each given `keepalive_timeout` seconds).
    """
    channel = Channel(
        address.host,
        address.port,
        ssl=_client_ssl_context() if address.tls else None,
        config=Configuration(
            _keepalive_time=keepalive_time,
            _keepalive_timeout=keepalive_timeout,
            _http2_max_pings_without_data=0,
            _http2_min_sent_ping_interval_without_data=keepalive_time,
        ),
    )
    try:
        async with channel.request(
            STREAM_METHOD, Cardinality.STREAM_STREAM, DiscoveryRequest, DiscoveryResponse
        ) as stream:
            await stream.send_message(session.first_request())
            log.info("MADS stream open", server=str(address), node=session.node_id)
            async for response in stream:
                reply = session.on_response(response)
                if reply.assignments is None:
                    log.error(
                        "rejected a MADS response",
                        version=response.version_info,
                        nonce=response.nonce,
                        error=reply.error,
                    )
                else:
                    log.info(
                        "received monitoring assignments",
                        version=response.version_info,
                        len=len(reply.assignments),
                    )
                    await on_assignments(reply.assignments)
                await stream.send_message(reply.request)
            await stream.end()  # the server ended the stream: end ours, read its status
    finally:
        channel.close()
