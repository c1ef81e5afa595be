"""MeshCatalog: one current `MeshContext` per mesh, maintained from store change events.

Nothing polls. The catalog subscribes to the store, loads everything once, then applies each
batch of events incrementally: a changed Dataplane is re-read and only the endpoint tuples of the
services it gains or loses are rebuilt; a changed policy replaces that policy type's tuple; a
`Resync` (a subscriber that fell behind, or a PostgreSQL listener that reconnected) reloads all.
After each batch it publishes new MeshContexts (copy-on-write: a reader holding an old context
keeps a consistent view) and reports what changed to its listener as `MeshChange`s.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import anyio
import structlog

from kuma.errors import ResourceNotFoundError
from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.resource import Resource, ResourceType
from kuma.store.events import ChangeEvent, Resync, Subscription
from kuma.xds.core import Endpoint, MeshContext

__all__ = ["POLICY_TYPES", "MeshCatalog", "MeshChange"]

log = structlog.get_logger("kuma.xds.catalog")

# Resource types that shape a dataplane's Envoy config (besides Mesh and Dataplane).
POLICY_TYPES: tuple[ResourceType, ...] = (
    registry.TRAFFIC_PERMISSION,
    registry.TRAFFIC_ROUTE,
    registry.HEALTH_CHECK,
    registry.CIRCUIT_BREAKER,
    registry.FAULT_INJECTION,
    registry.TRAFFIC_LOG,
    registry.TRAFFIC_TRACE,
    registry.PROXY_TEMPLATE,
    registry.RETRY,
    registry.TIMEOUT,
)
_POLICY_NAMES = {t.name for t in POLICY_TYPES}
_WATCHED = {registry.MESH.name, registry.DATAPLANE.name, *_POLICY_NAMES}

EndpointsOf = Callable[[Resource], Iterable[tuple[str, Endpoint]]]


@dataclass(slots=True)
class MeshChange:
    """What one batch of events changed in one mesh."""

    mesh: str
    everything: bool = False
    """The Mesh itself, a policy, or a resync: every proxy of the mesh may be affected."""
    deleted: bool = False
    """The mesh is gone: its proxies get empty config."""
    dataplanes: set[str] = field(default_factory=set)
    """Dataplanes created, changed or deleted (their own config changes)."""
    services: set[str] = field(default_factory=set)
    """Services whose endpoints changed (proxies with outbounds to them are affected)."""


@dataclass(slots=True)
class _MeshState:
    mesh: Resource
    dataplanes: dict[str, Resource] = field(default_factory=dict)
    dp_endpoints: dict[str, list[tuple[str, Endpoint]]] = field(default_factory=dict)
    policies: dict[str, tuple[Resource, ...]] = field(default_factory=dict)
    endpoints: dict[str, tuple[Endpoint, ...]] = field(default_factory=dict)


def _default_endpoints_of(dataplane: Resource) -> Iterable[tuple[str, Endpoint]]:
    from kuma.xds.topology import endpoints_of

    return endpoints_of(dataplane)


class MeshCatalog:
    """Keeps MeshContexts current. Start `run` in the root task group; read with `context()`."""

    def __init__(
        self,
        manager: ResourceManager,
        *,
        on_change: Callable[[list[MeshChange]], None] | None = None,
        endpoints_of: EndpointsOf = _default_endpoints_of,
    ) -> None:
        self._manager = manager
        self._on_change = on_change
        self._endpoints_of = endpoints_of
        self._states: dict[str, _MeshState] = {}
        self._contexts: dict[str, MeshContext] = {}
        self._generation = itertools.count(1)
        self.ready = anyio.Event()

    # -- reading --------------------------------------------------------------------------------

    def context(self, mesh: str) -> MeshContext | None:
        return self._contexts.get(mesh)

    def meshes(self) -> list[str]:
        return sorted(self._contexts)

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
        while True:
            first = await sub.receive()
            batch = [first, *sub.drain()]
            try:
                await self._apply(batch)
            except Exception:  # keep serving the last good contexts; reload on the next batch
                log.exception("applying store changes failed; reloading everything")
                await anyio.sleep(0.5)
                await self._reload_all()

    async def _apply(self, batch: list[ChangeEvent | Resync]) -> None:
        if any(isinstance(e, Resync) for e in batch):
            log.info("resync: reloading every mesh")
            await self._reload_all()
            return
        events = [e for e in batch if isinstance(e, ChangeEvent) and e.type in _WATCHED]
        if not events:
            return
        changes: dict[str, MeshChange] = {}

        def change(mesh: str) -> MeshChange:
            return changes.setdefault(mesh, MeshChange(mesh))

        # Collapse repeated events on one key: only the latest state matters.
        keys = list(dict.fromkeys((e.type, e.mesh, e.name) for e in events))
        for type_name, mesh, name in keys:
            if type_name == registry.MESH.name:
                await self._apply_mesh(name, change(name))
            elif type_name == registry.DATAPLANE.name:
                await self._apply_dataplane(mesh, name, change(mesh))
            else:
                changed = change(mesh)
                changed.everything = True
        # Policies: re-read each touched type once per mesh (a handful of resources).
        for type_name, mesh in dict.fromkeys((t, m) for t, m, _ in keys if t in _POLICY_NAMES):
            state = self._states.get(mesh)
            if state is not None:
                state.policies[type_name] = await self._load_policies(registry.get(type_name), mesh)
        for mesh in changes:
            self._publish(mesh)
        if self._on_change is not None:
            self._on_change(list(changes.values()))

    async def _apply_mesh(self, name: str, change: MeshChange) -> None:
        try:
            mesh = await self._manager.get(registry.MESH, name)
        except ResourceNotFoundError:
            self._states.pop(name, None)
            change.deleted = True
            change.everything = True
            return
        change.everything = True
        state = self._states.get(name)
        if state is None:
            self._states[name] = await self._load_mesh(mesh)
        else:
            _ = mesh.spec  # decode now, not in a generator
            state.mesh = mesh

    async def _apply_dataplane(self, mesh: str, name: str, change: MeshChange) -> None:
        state = self._states.get(mesh)
        if state is None:
            return  # its mesh is not loaded (being created or deleted): that event covers it
        change.dataplanes.add(name)
        try:
            dp = await self._manager.get(registry.DATAPLANE, name, mesh)
        except ResourceNotFoundError:
            dp = None
        old = state.dp_endpoints.pop(name, [])
        state.dataplanes.pop(name, None)
        new: list[tuple[str, Endpoint]] = []
        if dp is not None:
            _ = dp.spec
            state.dataplanes[name] = dp
            new = list(self._endpoints_of(dp))
            state.dp_endpoints[name] = new
        if old != new:
            touched = {svc for svc, _ in old} | {svc for svc, _ in new}
            change.services |= touched
            for svc in touched:
                self._rebuild_service(state, svc)

    def _rebuild_service(self, state: _MeshState, service: str) -> None:
        eps = [
            ep
            for dp_name in sorted(state.dp_endpoints)
            for svc, ep in state.dp_endpoints[dp_name]
            if svc == service
        ]
        if eps:
            state.endpoints[service] = tuple(eps)
        else:
            state.endpoints.pop(service, None)

    # -- loading --------------------------------------------------------------------------------

    async def _list_all(self, rtype: ResourceType, mesh: str | None) -> list[Resource]:
        result = await self._manager.list(rtype, mesh)
        for r in result.items:
            _ = r.spec  # decode once here, never in the generators' hot path
        return result.items

    async def _load_policies(self, rtype: ResourceType, mesh: str) -> tuple[Resource, ...]:
        return tuple(await self._list_all(rtype, mesh))

    async def _load_mesh(self, mesh: Resource) -> _MeshState:
        _ = mesh.spec
        name = mesh.meta.name
        state = _MeshState(mesh)
        for dp in await self._list_all(registry.DATAPLANE, name):
            state.dataplanes[dp.meta.name] = dp
            state.dp_endpoints[dp.meta.name] = list(self._endpoints_of(dp))
        for rtype in POLICY_TYPES:
            state.policies[rtype.name] = await self._load_policies(rtype, name)
        for svc in {s for eps in state.dp_endpoints.values() for s, _ in eps}:
            self._rebuild_service(state, svc)
        return state

    async def _reload_all(self) -> None:
        meshes = await self._list_all(registry.MESH, None)
        states = {m.meta.name: await self._load_mesh(m) for m in meshes}
        gone = set(self._states) - set(states)
        self._states = states
        for name in gone:
            self._contexts.pop(name, None)
        for name in states:
            self._publish(name)
        if self._on_change is not None:
            changes = [MeshChange(m, everything=True) for m in states]
            changes += [MeshChange(m, everything=True, deleted=True) for m in gone]
            self._on_change(changes)

    def _publish(self, mesh: str) -> None:
        state = self._states.get(mesh)
        if state is None:
            self._contexts.pop(mesh, None)
            return
        self._contexts[mesh] = MeshContext(
            mesh=state.mesh,
            dataplanes=dict(state.dataplanes),
            policies=dict(state.policies),
            endpoints=dict(state.endpoints),
            generation=next(self._generation),
        )
