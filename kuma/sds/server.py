"""The SDS server: Envoy's v3 SecretDiscoveryService over grpclib (port 5677, TLS).

    sds = SdsServer(manager, ca_managers, authenticator=verify_token)
    await task_group.start(partial(sds.run, sock=sock, ssl=server_tls.ssl_context()))

Per stream (`StreamSecrets`):

1. The first DiscoveryRequest names the proxy: `node.id` is `<mesh>.<name>` (INVALID_ARGUMENT
   otherwise). The authenticator sees the proxy id and the gRPC metadata (Envoy's
   `file_based_metadata` call credentials put the dataplane token in `authorization`);
   `AuthenticationError` ends the stream with UNAUTHENTICATED.
2. The dataplane's `ProxyIdentity` (shared by all its streams) is looked up or created, issuing
   its first certificate: a missing Dataplane or Mesh is NOT_FOUND, a mesh without mTLS or a
   dataplane without services FAILED_PRECONDITION, a CA that cannot be loaded UNAVAILABLE
   (Envoy retries).
3. Requests and new identities go through the same sans-IO state machine as ADS
   (kuma/xds/server/state.py; SDS is a non-wildcard type: a response carries the secrets asked
   for, `mesh_ca` and/or `identity_cert`). Requests of other types are ignored.

In the background (`run`), store events and a tick every `refresh_interval` keep identities
current: a changed Dataplane (services), Mesh or mesh Secret (the CA) re-checks the identities
concerned; each tick re-checks the CA of every mesh with connected dataplanes (a provided CA
read from a file changes without an event) and issues a new certificate to every identity past
4/5 of its lifetime. A new certificate is pushed on every open stream of the dataplane.

`FetchSecrets` (unary) answers once with the same secrets; `DeltaSecrets` is UNIMPLEMENTED.
"""

from __future__ import annotations

import datetime as dt
import inspect
import itertools
import socket
import ssl as _ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import structlog
from cryptography import x509
from envoy.service.discovery.v3 import discovery_pb2
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError
from h2.exceptions import ProtocolError as H2ProtocolError
from prometheus_client import CollectorRegistry

from kuma.ca.core import CaError, CaManager, dataplane_services, dp_cert_validity, enabled_backend
from kuma.errors import ResourceNotFoundError, TransientError
from kuma.model import registry
from kuma.sds.identity import (
    CaFingerprint,
    MtlsDisabledError,
    NoServicesError,
    ProxyIdentity,
    identity_cert_secret,
    mesh_ca_secret,
    record_certificate,
)
from kuma.store.base import now as utc_now
from kuma.store.events import ChangeEvent
from kuma.xds.core import SECRET, ProxyId, Snapshot
from kuma.xds.metrics import KumaCounter
from kuma.xds.server.ads import AuthenticationError, Authenticator
from kuma.xds.server.grpc import serve_grpc
from kuma.xds.server.state import (
    DEFAULT_INITIAL_BACKOFF,
    DEFAULT_MAX_BACKOFF,
    Acked,
    Action,
    AdsStreamState,
    ErrorDetail,
    Event,
    Ignored,
    Rejected,
    RequestReceived,
    ScheduleRetry,
    SendResponse,
    SnapshotChanged,
    TimerFired,
    subset_version,
)

if TYPE_CHECKING:
    from kuma.manager.manager import ResourceManager

__all__ = [
    "RENEWAL_RETRY",
    "SDS_DELTA_METHOD",
    "SDS_FETCH_METHOD",
    "SDS_STREAM_METHOD",
    "SdsServer",
    "SdsStream",
]

_SERVICE = "/envoy.service.secret.v3.SecretDiscoveryService"
SDS_STREAM_METHOD = f"{_SERVICE}/StreamSecrets"
SDS_FETCH_METHOD = f"{_SERVICE}/FetchSecrets"
SDS_DELTA_METHOD = f"{_SERVICE}/DeltaSecrets"

DiscoveryRequest: Any = discovery_pb2.DiscoveryRequest
DiscoveryResponse: Any = discovery_pb2.DiscoveryResponse

log = structlog.get_logger("kuma.sds")

RENEWAL_RETRY = dt.timedelta(seconds=30)
"""After a renewal failed, a due certificate is tried again this much later (events retry now)."""

_BROKEN = (StreamTerminatedError, ProtocolError, ConnectionError, H2ProtocolError)


def _request_metadata(stream: Any) -> dict[str, str]:
    metadata = stream.metadata or {}
    return {k: v for k, v in metadata.items() if isinstance(v, str)}


class SdsStream:
    """One open SDS stream (read-only, for diagnostics and tests)."""

    def __init__(self, stream_id: int, proxy_id: ProxyId, state: AdsStreamState) -> None:
        self.id = stream_id
        self.proxy_id = proxy_id
        self.state = state
        self.responses_sent = 0
        self.acks = 0
        self.nacks = 0
        self.last_rejection: str | None = None

    def __repr__(self) -> str:
        return f"<SdsStream {self.id} {self.proxy_id}>"


class _End:
    pass


_END = _End()
_CHANGED = object()


class SdsServer:
    """gRPC server of SDS (`__mapping__` is grpclib's servable protocol)."""

    def __init__(
        self,
        manager: ResourceManager,
        ca_managers: Mapping[str, CaManager],
        *,
        authenticator: Authenticator | None = None,
        refresh_interval: float = 1.0,
        clock: Callable[[], dt.datetime] = utc_now,
        initial_backoff: float = DEFAULT_INITIAL_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        """
        manager: reads Dataplanes, Meshes and CA Secrets; writes DataplaneInsights.
        ca_managers: CA managers by backend type (`kuma.ca.default_ca_managers`, or what
            `kuma.manager.ca.enable_mesh_ca` returned).
        authenticator: `(proxy_id, grpc_metadata) -> None`, sync or async, raising
            `AuthenticationError` to refuse a stream; None allows every proxy.
        refresh_interval: how often CAs are re-checked and rotations are looked for
            (`sdsServer.dataplaneConfigurationRefreshInterval`).
        clock: wall time (UTC) for certificate validity and rotation; tests move it.
        initial_backoff, max_backoff: delay before a rejected secret is offered again.
        metrics: where to export `sds_cert_generation` (certificates issued, Kuma's name) and
            `sds_cert_generation_errors` (issues that failed).
        """
        if refresh_interval <= 0:
            raise ValueError("refresh_interval must be positive")
        self._manager = manager
        self._ca_managers = ca_managers
        self._authenticator = authenticator
        self._refresh = refresh_interval
        self._clock = clock
        AdsStreamState(initial_backoff=initial_backoff, max_backoff=max_backoff)  # validate
        self._backoff = (initial_backoff, max_backoff)
        self._identities: dict[ProxyId, ProxyIdentity] = {}
        self._streams: dict[int, SdsStream] = {}
        self._ids = itertools.count(1)
        self._tg: anyio.abc.TaskGroup | None = None
        self._mesh_checks: set[str] = set()
        self.cert_generations = KumaCounter(
            "sds_cert_generation", "Number of generated certificates", registry=metrics
        )
        self.cert_generation_errors = KumaCounter(
            "sds_cert_generation_errors",
            "Number of certificates that could not be generated",
            registry=metrics,
        )

    # -- grpclib servable -----------------------------------------------------------------------

    def __mapping__(self) -> dict[str, Handler]:
        return {
            SDS_STREAM_METHOD: Handler(
                self.stream_secrets,
                Cardinality.STREAM_STREAM,
                DiscoveryRequest,
                DiscoveryResponse,
            ),
            SDS_FETCH_METHOD: Handler(
                self.fetch_secrets,
                Cardinality.UNARY_UNARY,
                DiscoveryRequest,
                DiscoveryResponse,
            ),
            SDS_DELTA_METHOD: Handler(
                self.delta_secrets,
                Cardinality.STREAM_STREAM,
                discovery_pb2.DeltaDiscoveryRequest,
                discovery_pb2.DeltaDiscoveryResponse,
            ),
        }

    # -- running --------------------------------------------------------------------------------

    async def run(
        self,
        *,
        host: str = "0.0.0.0",
        port: int = 5677,
        ssl: _ssl.SSLContext | None = None,
        sock: socket.socket | None = None,
        task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve until cancelled; `task_status.started(bound_port)` (port 0 picks a free one).

        `sock`: an already bound, listening socket to serve on instead of host/port. `ssl`: the
        server's TLS context with ALPN `h2` (`kuma.sds.tls`); None serves plaintext, which
        Envoy's SDS channel (ssl_credentials) does not accept: for tests only.
        """
        async with (
            self._manager.subscribe(max_buffer=100_000) as sub,
            anyio.create_task_group() as tg,
        ):
            self._tg = tg
            tg.start_soon(self._follow_events, sub)
            tg.start_soon(self._tick)
            try:
                await serve_grpc(
                    self,
                    name="SDS",
                    host=host,
                    port=port,
                    ssl=ssl,
                    sock=sock,
                    task_status=task_status,
                )
            finally:
                self._tg = None
                tg.cancel_scope.cancel()

    # -- introspection --------------------------------------------------------------------------

    @property
    def streams(self) -> list[SdsStream]:
        """Open streams, oldest first."""
        return list(self._streams.values())

    def streams_of(self, proxy_id: ProxyId) -> list[SdsStream]:
        return [s for s in self._streams.values() if s.proxy_id == proxy_id]

    def identity(self, proxy_id: ProxyId) -> ProxyIdentity | None:
        """The secrets currently served to a connected dataplane."""
        return self._identities.get(proxy_id)

    # -- handlers -------------------------------------------------------------------------------

    async def delta_secrets(self, stream: Any) -> None:
        raise GRPCError(
            Status.UNIMPLEMENTED,
            "incremental (delta) SDS is not supported: use state-of-the-world StreamSecrets",
        )

    async def fetch_secrets(self, stream: Any) -> None:
        request = await stream.recv_message()
        proxy_id = await self._open(request, stream)
        async with self._identity_of(proxy_id) as identity:
            snapshot = identity.snapshot
            assert snapshot is not None
            items = snapshot.of_type(SECRET)
            names = list(request.resource_names) or sorted(items)
            chosen = [items[n] for n in sorted(set(names)) if n in items]
            response = DiscoveryResponse(
                version_info=subset_version(chosen), type_url=SECRET, nonce=""
            )
            for resource in chosen:
                response.resources.add(type_url=resource.type_url, value=resource.payload)
        await stream.send_message(response)

    async def stream_secrets(self, stream: Any) -> None:
        try:
            first = await stream.recv_message()
        except _BROKEN:
            return
        if first is None:
            return
        proxy_id = await self._open(first, stream)
        stream_id = next(self._ids)
        slog = log.bind(mesh=proxy_id.mesh, dataplane=proxy_id.name, stream=stream_id)
        async with self._identity_of(proxy_id) as identity:
            initial, maximum = self._backoff
            sds = SdsStream(
                stream_id,
                proxy_id,
                AdsStreamState(initial_backoff=initial, max_backoff=maximum),
            )
            self._streams[stream_id] = sds
            slog.info("SDS stream opened")
            try:
                await _StreamRunner(sds, stream, identity, slog).serve(first)
            finally:
                del self._streams[stream_id]
                slog.info(
                    "SDS stream closed",
                    responses_sent=sds.responses_sent,
                    acks=sds.acks,
                    nacks=sds.nacks,
                )

    async def _open(self, request: Any, stream: Any) -> ProxyId:
        """Parse the node id and authenticate the proxy (GRPCError when refused)."""
        if request is None:
            raise GRPCError(Status.INVALID_ARGUMENT, "SDS request expected")
        node_id = request.node.id
        try:
            proxy_id = ProxyId.parse(node_id)
        except ValueError as e:
            raise GRPCError(
                Status.INVALID_ARGUMENT, f"SDS request must have a valid Proxy Id {node_id!r}: {e}"
            ) from None
        if self._authenticator is None:
            return proxy_id
        slog = log.bind(mesh=proxy_id.mesh, dataplane=proxy_id.name)
        try:
            result = self._authenticator(proxy_id, _request_metadata(stream))
            if inspect.isawaitable(result):
                await result
        except AuthenticationError as e:
            slog.warning("SDS stream refused", reason=str(e))
            raise GRPCError(Status.UNAUTHENTICATED, f"authentication failed: {e}") from None
        except GRPCError:
            raise
        except TransientError as e:  # e.g. the Pod's Dataplane is not written yet: Envoy retries
            slog.info("stream deferred", reason=str(e))
            raise GRPCError(Status.UNAVAILABLE, f"not ready yet, retry: {e}") from None
        except Exception:
            slog.exception("authentication could not be completed")
            raise GRPCError(Status.INTERNAL, "authentication could not be completed") from None
        return proxy_id

    @asynccontextmanager
    async def _identity_of(self, proxy_id: ProxyId) -> AsyncIterator[ProxyIdentity]:
        """The proxy's shared identity, with a certificate, for as long as the block runs."""
        identity = self._identities.get(proxy_id)
        if identity is None:
            identity = self._identities[proxy_id] = ProxyIdentity(proxy_id)
        identity.refs += 1
        try:
            if identity.snapshot is None:
                await self._reconcile_or_fail(identity)
            yield identity
        finally:
            identity.refs -= 1
            if identity.refs == 0 and self._identities.get(proxy_id) is identity:
                del self._identities[proxy_id]

    async def _reconcile_or_fail(self, identity: ProxyIdentity) -> None:
        proxy_id = identity.proxy_id
        try:
            await self.reconcile(identity)
        except ResourceNotFoundError as e:
            what = f"Dataplane {proxy_id.name!r}" if e.type_name != registry.MESH.name else "Mesh"
            raise GRPCError(
                Status.NOT_FOUND, f"{what} not found in mesh {proxy_id.mesh!r}"
            ) from None
        except (MtlsDisabledError, NoServicesError) as e:
            raise GRPCError(Status.FAILED_PRECONDITION, str(e)) from None
        except CaError as e:
            log.warning(
                "could not issue a certificate",
                mesh=proxy_id.mesh,
                dataplane=proxy_id.name,
                error=str(e),
            )
            raise GRPCError(Status.UNAVAILABLE, str(e)) from None

    # -- identities -----------------------------------------------------------------------------

    async def reconcile(self, identity: ProxyIdentity) -> bool:
        """Issue a new certificate to `identity` if one is due; True when one was issued.

        Raises ResourceNotFoundError (no Dataplane or Mesh), MtlsDisabledError,
        NoServicesError or CaError when no certificate can be issued.
        """
        proxy_id = identity.proxy_id
        async with identity.lock:
            dataplane = await self._manager.get(registry.DATAPLANE, proxy_id.name, proxy_id.mesh)
            mesh = await self._manager.get(registry.MESH, proxy_id.mesh)
            backend = enabled_backend(mesh.spec)
            if backend is None:
                raise MtlsDisabledError(proxy_id.mesh)
            ca = self._ca_managers.get(backend.type)
            if ca is None:
                raise CaError(f"CA manager of type {backend.type} not exist")
            services = dataplane_services(dataplane.spec)
            if not services:
                raise NoServicesError()
            roots = await ca.get_root_certs(proxy_id.mesh, backend)
            fingerprint = CaFingerprint.of(backend, roots)
            now = self._clock()
            reason = identity.regeneration_reason(services, fingerprint, now)
            if reason is None:
                return False
            validity = dp_cert_validity(backend)
            try:
                pair = await ca.generate_dataplane_cert(proxy_id.mesh, backend, services, now=now)
            except Exception:
                self.cert_generation_errors.inc()
                raise
            self.cert_generations.inc()
            expires_at = x509.load_pem_x509_certificate(pair.cert_pem).not_valid_after_utc
            snapshot = Snapshot.build([identity_cert_secret(pair), mesh_ca_secret(roots)])
            identity.publish(
                snapshot,
                services=services,
                ca=fingerprint,
                issued_at=now,
                expires_at=expires_at,
                validity=validity,
            )
        log.info(
            "identity certificate issued",
            mesh=proxy_id.mesh,
            dataplane=proxy_id.name,
            reason=reason,
            services=services,
            expires=expires_at.isoformat(),
        )
        try:
            await record_certificate(
                self._manager, proxy_id, regenerated_at=now, expires_at=expires_at
            )
        except Exception:
            # Envoy gets its certificate even when the insight cannot be written
            log.exception(
                "could not update the Dataplane insight",
                mesh=proxy_id.mesh,
                dataplane=proxy_id.name,
            )
        return True

    def _schedule(self, identity: ProxyIdentity) -> None:
        tg = self._tg
        if tg is None or identity.scheduled or identity.snapshot is None:
            return  # not running, already queued, or its first stream is issuing one now
        identity.scheduled = True
        tg.start_soon(self._reconcile_quietly, identity)

    async def _reconcile_quietly(self, identity: ProxyIdentity) -> None:
        identity.scheduled = False
        proxy_id = identity.proxy_id
        try:
            await self.reconcile(identity)
        except (ResourceNotFoundError, MtlsDisabledError, NoServicesError, CaError) as e:
            # Envoy keeps the certificate it has; the next change, or a tick after a while,
            # tries again
            identity.retry_after = self._clock() + RENEWAL_RETRY
            log.info(
                "certificate not renewed",
                mesh=proxy_id.mesh,
                dataplane=proxy_id.name,
                reason=str(e),
            )
        except Exception:
            identity.retry_after = self._clock() + RENEWAL_RETRY
            log.exception("certificate renewal failed", mesh=proxy_id.mesh, dataplane=proxy_id.name)

    def _schedule_mesh_check(self, mesh: str) -> None:
        tg = self._tg
        if tg is None or mesh in self._mesh_checks:
            return
        self._mesh_checks.add(mesh)
        tg.start_soon(self._check_mesh, mesh)

    async def _check_mesh(self, mesh: str) -> None:
        """Re-issue certificates of the mesh's identities whose CA changed."""
        self._mesh_checks.discard(mesh)
        identities = [i for i in self._identities.values() if i.proxy_id.mesh == mesh]
        if not identities:
            return
        try:
            resource = await self._manager.get(registry.MESH, mesh)
            backend = enabled_backend(resource.spec)
            ca = self._ca_managers.get(backend.type) if backend is not None else None
            if backend is None or ca is None:
                return  # mTLS turned off: dataplanes keep what they have until their config drops it
            fingerprint = CaFingerprint.of(backend, await ca.get_root_certs(mesh, backend))
        except (ResourceNotFoundError, CaError) as e:
            log.debug("mesh CA not checked", mesh=mesh, reason=str(e))
            return
        for identity in identities:
            if identity.ca != fingerprint:
                self._schedule(identity)

    async def _tick(self) -> None:
        while True:
            await anyio.sleep(self._refresh)
            now = self._clock()
            meshes = set()
            for identity in list(self._identities.values()):
                meshes.add(identity.proxy_id.mesh)
                if identity.due(now):
                    self._schedule(identity)
            for mesh in sorted(meshes):
                self._schedule_mesh_check(mesh)

    async def _follow_events(self, sub: Any) -> None:
        async for event in sub:
            if not isinstance(event, ChangeEvent):  # Resync: look at everything again
                for identity in list(self._identities.values()):
                    self._schedule(identity)
                    self._schedule_mesh_check(identity.proxy_id.mesh)
                continue
            if event.type == registry.DATAPLANE.name:
                found = self._identities.get(ProxyId(event.mesh, event.name))
                if found is not None:
                    self._schedule(found)
            elif event.type == registry.MESH.name:
                self._schedule_mesh_check(event.name)
            elif event.type == registry.SECRET.name:
                self._schedule_mesh_check(event.mesh)


class _StreamRunner:
    """Carries one stream's requests and identity changes into its state machine."""

    def __init__(self, sds: SdsStream, stream: Any, identity: ProxyIdentity, slog: Any) -> None:
        self._sds = sds
        self._stream = stream
        self._identity = identity
        self._log = slog
        self._send, self._receive = anyio.create_memory_object_stream[Any](16)
        self._changed_queued = False
        self._error: GRPCError | None = None

    async def serve(self, first: Any) -> None:
        state = self._sds.state
        seen = self._identity.generation
        assert self._identity.snapshot is not None
        state.handle(SnapshotChanged(self._identity.snapshot, anyio.current_time()))
        async with self._send, self._receive, anyio.create_task_group() as tg:
            tg.start_soon(self._read_requests, first)
            tg.start_soon(self._watch_identity, seen)
            await self._process()
            tg.cancel_scope.cancel()
        if self._error is not None:
            raise self._error

    async def _read_requests(self, first: Any) -> None:
        node_id = first.node.id
        await self._send.send(first)
        while True:
            try:
                request = await self._stream.recv_message()
            except _BROKEN as e:
                self._log.debug("SDS stream broken", error=str(e))
                request = None
            if request is None:
                await self._send.send(_END)
                return
            if request.HasField("node") and request.node.id and request.node.id != node_id:
                self._error = GRPCError(
                    Status.INVALID_ARGUMENT,
                    f"stream was opened for node {node_id!r}; node id cannot change to "
                    f"{request.node.id!r} within a stream",
                )
                await self._send.send(_END)
                return
            await self._send.send(request)

    async def _watch_identity(self, seen: int) -> None:
        while True:
            seen = await self._identity.wait_changed(seen)
            if not self._changed_queued:  # coalesce: the newest snapshot is read when handled
                self._changed_queued = True
                await self._send.send(_CHANGED)

    async def _process(self) -> None:
        state = self._sds.state
        while True:
            deadline = state.next_timer
            item: Any = None
            if deadline is None:
                item = await self._receive.receive()
            else:
                with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                    item = await self._receive.receive()
            now = anyio.current_time()
            event: Event
            if item is None:
                event = TimerFired(now)
            elif item is _END:
                return
            elif item is _CHANGED:
                self._changed_queued = False
                snapshot = self._identity.snapshot
                if snapshot is None:
                    continue
                event = SnapshotChanged(snapshot, now)
            else:
                if item.type_url != SECRET:
                    self._log.debug("request of another type ignored", type=item.type_url)
                    continue
                event = _request_event(item, now)
            try:
                for action in state.handle(event):
                    await self._apply(action)
            except _BROKEN as e:
                self._log.debug("SDS stream broken while sending", error=str(e))
                return

    async def _apply(self, action: Action) -> None:
        sds = self._sds
        if isinstance(action, SendResponse):
            response = DiscoveryResponse(
                version_info=action.version_info, type_url=action.type_url, nonce=action.nonce
            )
            add = response.resources.add
            for resource in action.resources:
                add(type_url=resource.type_url, value=resource.payload)
            await self._stream.send_message(response)
            sds.responses_sent += 1
            self._log.debug(
                "secrets sent",
                version=action.version_info,
                nonce=action.nonce,
                names=[r.name for r in action.resources],
            )
        elif isinstance(action, Acked):
            sds.acks += 1
        elif isinstance(action, Rejected):
            sds.nacks += 1
            sds.last_rejection = action.message
            log_at = self._log.debug if action.stale else self._log.warning
            log_at(
                "secrets rejected by Envoy",
                version=action.version,
                nonce=action.nonce,
                error=action.message.strip(),
                stale=action.stale,
            )
        elif isinstance(action, ScheduleRetry):
            self._log.info(
                "rejected secrets will be offered again",
                after=round(action.at - anyio.current_time(), 3),
            )
        elif isinstance(action, Ignored):
            self._log.debug("request ignored", nonce=action.nonce, reason=action.reason)


def _request_event(request: Any, now: float) -> RequestReceived:
    error = None
    if request.HasField("error_detail"):
        error = ErrorDetail(request.error_detail.code, request.error_detail.message)
    return RequestReceived(
        type_url=request.type_url,
        version_info=request.version_info,
        response_nonce=request.response_nonce,
        resource_names=tuple(request.resource_names),
        error_detail=error,
        now=now,
    )
