"""The current set of monitoring assignments, kept up to date from store change events.

    index = AssignmentIndex(manager)
    await task_group.start(index.run)
    index.current            # AssignmentSet: version + the response, serialised once
    await index.wait_changed(index.current.generation)

Nothing polls. The index subscribes to the store, loads every Mesh and Dataplane once, then
applies each batch of Mesh/Dataplane change events (whatever queued up while the previous batch
was handled, collapsed per resource): a changed Dataplane is re-read and only its assignment is
rebuilt; a changed Mesh is re-read and, when its Prometheus port/path or enablement changed, the
assignments of its dataplanes are rebuilt; a `Resync` (or the optional periodic safety resync)
reloads everything. Each assignment is serialised once, as the `resources` entry of a
DiscoveryResponse; after a batch the entries are concatenated into one response body shared by
every connected client, and its version is a content hash, so a batch that changes nothing
visible publishes nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import anyio
import anyio.abc
import anyio.lowlevel
import structlog
from envoy.service.discovery.v3 import discovery_pb2

from kuma.errors import ResourceNotFoundError, ValidationError
from kuma.mads.generator import MONITORING_ASSIGNMENT_TYPE, assignment_for
from kuma.mads.wire import encode_assignment, resource_entry
from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.metrics import PrometheusEndpoint, mesh_prometheus
from kuma.model.resource import Resource
from kuma.pb.kuma.observability.v1alpha1 import MonitoringAssignment
from kuma.store.events import ChangeEvent, Resync, Subscription

__all__ = ["AssignmentIndex", "AssignmentSet", "NameExtensions", "no_extensions"]

log = structlog.get_logger("kuma.mads")

NameExtensions = Callable[[Resource], Mapping[str, str]]
"""A store's extra identity of a resource (Kubernetes name/namespace) to turn into labels."""

_WATCHED = {registry.MESH.name, registry.DATAPLANE.name}
_RETRY_MIN, _RETRY_MAX = 0.5, 10.0  # seconds between reloads after the store failed
_YIELD_EVERY = 100  # dataplanes rebuilt between two event-loop checkpoints
_DiscoveryResponse: Any = discovery_pb2.DiscoveryResponse


def no_extensions(_: Resource) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True, slots=True)
class AssignmentSet:
    """One version of every monitoring assignment.

    `body` is a serialised DiscoveryResponse holding `version_info`, `type_url` and every
    assignment as a `google.protobuf.Any`; a stream appends its own `nonce` (protobuf messages
    concatenate into their merge), so the assignments are serialised once for all clients.
    """

    version: str
    body: bytes
    count: int
    generation: int
    built_at: float
    """`time.perf_counter()` when this set was published."""
    build_seconds: float
    """How long assembling this set took (entries concatenated, hashed, wrapped)."""


def _entry(assignment: MonitoringAssignment) -> bytes:
    """The assignment as one `resources` entry of a serialised DiscoveryResponse."""
    return resource_entry(MONITORING_ASSIGNMENT_TYPE, encode_assignment(assignment))


_Prometheus: TypeAlias = PrometheusEndpoint | None


def _endpoint_key(config: _Prometheus) -> tuple[int, str] | None:
    return None if config is None else (config.port, config.path)


class AssignmentIndex:
    """Keeps `current` up to date. Start `run` in the root task group."""

    def __init__(
        self,
        manager: ResourceManager,
        *,
        resync_interval: float | None = None,
        name_extensions: NameExtensions = no_extensions,
    ) -> None:
        """
        resync_interval: seconds between full reloads from the store, a safety net on top of
            change events (None: never; events and `Resync`s are enough for every kuma-py store).
        name_extensions: the store's extra identity of a Dataplane, turned into labels.
        """
        self._manager = manager
        self._resync_interval = resync_interval
        self._name_extensions = name_extensions
        self._meshes: dict[str, _Prometheus] = {}
        self._dataplanes: dict[str, dict[str, Resource]] = {}
        self._entries: dict[tuple[str, str], bytes] = {}
        self._built: dict[tuple[str, str], tuple[str, tuple[int, str] | None]] = {}
        """What each entry was built from: the dataplane's spec JSON and its mesh's endpoint."""
        self._generation = 0
        self._current = self._assemble()
        self._changed = anyio.Event()
        self.ready = anyio.Event()

    # -- reading --------------------------------------------------------------------------------

    @property
    def current(self) -> AssignmentSet:
        return self._current

    async def wait_changed(self, since: int) -> int:
        """Wait until the generation is past `since`; return the new generation."""
        while self._current.generation <= since:
            await self._changed.wait()
        return self._current.generation

    # -- running --------------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        # Subscribe before loading so nothing written during the load is missed.
        async with self._manager.subscribe(max_buffer=100_000) as sub:
            await self._reload_all()
            self.ready.set()
            task_status.started()
            await self._follow(sub)

    async def _follow(self, sub: Subscription) -> None:
        interval = self._resync_interval
        next_resync = None if interval is None else anyio.current_time() + interval
        while True:
            first: ChangeEvent | Resync | None = None
            if next_resync is None:
                first = await sub.receive()
            else:
                with anyio.move_on_after(max(0.0, next_resync - anyio.current_time())):
                    first = await sub.receive()
            try:
                if first is None:
                    assert interval is not None
                    next_resync = anyio.current_time() + interval
                    await self._reload_all()
                else:
                    await self._apply([first, *sub.drain()])
            except Exception:  # keep serving the last good set until a reload succeeds
                log.exception("applying store changes failed; reloading everything")
                await self._recover()

    async def _recover(self) -> None:
        delay = _RETRY_MIN
        while True:
            await anyio.sleep(delay)
            try:
                await self._reload_all()
                return
            except Exception:
                delay = min(delay * 2, _RETRY_MAX)
                log.exception("reloading monitoring assignments failed", retry_in=delay)

    async def _apply(self, batch: list[ChangeEvent | Resync]) -> None:
        if any(isinstance(e, Resync) for e in batch):
            log.info("resync: reloading every mesh and dataplane")
            await self._reload_all()
            return
        keys = dict.fromkeys(
            (e.type, e.mesh, e.name)
            for e in batch
            if isinstance(e, ChangeEvent) and e.type in _WATCHED
        )
        if not keys:
            return
        changed = False
        for type_name, mesh, name in keys:
            if type_name == registry.MESH.name:
                changed |= await self._apply_mesh(name)
            else:
                changed |= await self._apply_dataplane(mesh, name)
        if changed:
            self._publish()

    async def _apply_mesh(self, name: str) -> bool:
        try:
            mesh = await self._manager.get(registry.MESH, name)
        except ResourceNotFoundError:
            self._meshes.pop(name, None)
            dataplanes = self._dataplanes.pop(name, {})
            for dp_name in dataplanes:
                self._entries.pop((name, dp_name), None)
                self._built.pop((name, dp_name), None)
            return bool(dataplanes)
        config = self._prometheus(mesh)
        known = name in self._meshes
        old = self._meshes.get(name)
        self._meshes[name] = config
        if not known:
            # a new mesh: its dataplanes (normally none yet) come with their own events
            listed = await self._manager.list(registry.DATAPLANE, name)
            self._dataplanes[name] = {dp.meta.name: dp for dp in listed.items}
        elif _endpoint_key(old) == _endpoint_key(config):
            return False
        for i, dp in enumerate(list(self._dataplanes.get(name, {}).values())):
            stamp = self._built.get((name, dp.meta.name))
            self._rebuild(config, dp, stamp[0] if stamp is not None else None)
            if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                await anyio.lowlevel.checkpoint()  # a big mesh does not stall the event loop
        return True

    async def _apply_dataplane(self, mesh: str, name: str) -> bool:
        if mesh not in self._meshes:
            return False  # its mesh is not loaded (being created or deleted): that event covers it
        try:
            dp: Resource | None = await self._manager.get(registry.DATAPLANE, name, mesh)
        except ResourceNotFoundError:
            dp = None
        dataplanes = self._dataplanes.setdefault(mesh, {})
        if dp is None:
            dataplanes.pop(name, None)
            self._built.pop((mesh, name), None)
            return self._entries.pop((mesh, name), None) is not None
        dataplanes[name] = dp
        before = self._entries.get((mesh, name))
        self._rebuild(self._meshes[mesh], dp)
        return self._entries.get((mesh, name)) != before

    # -- building -------------------------------------------------------------------------------

    @staticmethod
    def _prometheus(mesh: Resource) -> _Prometheus:
        try:
            return mesh_prometheus(mesh)
        except ValidationError as e:
            log.warning(
                "mesh left out of monitoring assignments: unreadable prometheus backend",
                mesh=mesh.meta.name,
                error=str(e),
            )
            return None

    def _rebuild(self, config: _Prometheus, dp: Resource, spec_json: str | None = None) -> None:
        """Rebuild the dataplane's entry. `spec_json`: its spec's JSON text when `dp` was decoded
        already (the text of a resource fresh from the store costs nothing; a decoded one's
        would be encoded again)."""
        key = (dp.meta.mesh, dp.meta.name)
        spec_json = dp.spec_json() if spec_json is None else spec_json
        self._built[key] = (spec_json, _endpoint_key(config))
        assignment = assignment_for(config, dp, self._name_extensions(dp))
        if assignment is None:
            self._entries.pop(key, None)
        else:
            self._entries[key] = _entry(assignment)

    async def _reload_all(self) -> None:
        meshes = (await self._manager.list(registry.MESH)).items
        configs = {m.meta.name: self._prometheus(m) for m in meshes}
        dataplanes: dict[str, dict[str, Resource]] = {}
        entries: dict[tuple[str, str], bytes] = {}
        built: dict[tuple[str, str], tuple[str, tuple[int, str] | None]] = {}
        reused = 0
        for name, config in configs.items():
            listed = (await self._manager.list(registry.DATAPLANE, name)).items
            dataplanes[name] = {dp.meta.name: dp for dp in listed}
            for i, dp in enumerate(listed):
                if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                    await anyio.lowlevel.checkpoint()
                key = (name, dp.meta.name)
                # a resource fresh from the store still holds its JSON text: comparing it is
                # cheap, so an unchanged dataplane of an unchanged mesh keeps its entry
                stamp = (dp.spec_json(), _endpoint_key(config))
                built[key] = stamp
                if self._built.get(key) == stamp:
                    reused += 1
                    if key in self._entries:
                        entries[key] = self._entries[key]
                    continue
                assignment = assignment_for(config, dp, self._name_extensions(dp))
                if assignment is not None:
                    entries[key] = _entry(assignment)
        self._meshes, self._dataplanes = configs, dataplanes
        self._entries, self._built = entries, built
        log.debug("monitoring assignments reloaded", dataplanes=len(built), unchanged=reused)
        self._publish()

    def _assemble(self) -> AssignmentSet:
        start = time.perf_counter()
        joined = b"".join(self._entries[k] for k in sorted(self._entries))
        version = hashlib.blake2b(joined, digest_size=8).hexdigest()
        head: bytes = _DiscoveryResponse(
            version_info=version, type_url=MONITORING_ASSIGNMENT_TYPE
        ).SerializeToString()
        now = time.perf_counter()
        return AssignmentSet(
            version=version,
            body=head + joined,
            count=len(self._entries),
            generation=self._generation,
            built_at=now,
            build_seconds=now - start,
        )

    def _publish(self) -> None:
        candidate = self._assemble()
        if candidate.version == self._current.version and self._generation > 0:
            return
        self._generation += 1
        self._current = AssignmentSet(
            candidate.version,
            candidate.body,
            candidate.count,
            self._generation,
            candidate.built_at,
            candidate.build_seconds,
        )
        log.debug(
            "monitoring assignments changed",
            version=self._current.version,
            count=self._current.count,
        )
        changed, self._changed = self._changed, anyio.Event()
        changed.set()
