"""The reconciler: keeps a Snapshot current for every connected proxy, pushing on change.

The ADS server calls `connect(proxy_id, metadata)` for each stream (`SnapshotSource`). The
MeshCatalog reports `MeshChange`s; the reconciler maps them onto the connected proxies they
affect (a proxy depends on its own Dataplane, on the endpoints of the services it sends traffic
to, and on its mesh's spec and policies), regenerates only those, and wakes their streams when
the content actually changed. Bursts of changes are coalesced (`debounce`).

A proxy whose Dataplane is deleted while it is connected gets an empty config. A proxy whose
Dataplane this control plane has never seen (a memory-store control plane that restarted) gets
no answer at all until the Dataplane is registered: Envoy keeps serving its last config.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog

from kuma.model.resource import Resource
from kuma.xds.catalog import MeshCatalog, MeshChange
from kuma.xds.core import DataplaneMetadata, MeshContext, ProxyId, Snapshot

__all__ = ["Generate", "Reconciler"]

log = structlog.get_logger("kuma.xds.reconciler")

Generate = Callable[[MeshContext, Resource, DataplaneMetadata], tuple[Snapshot, frozenset[str]]]
"""(mesh context, dataplane, Envoy's metadata) -> the proxy's snapshot and the services whose
endpoints it depends on (`kuma.xds.generators.SnapshotGenerator.generate`)."""


class _Watch:
    """ProxyWatch implementation handed to the ADS server."""

    __slots__ = ("_changed", "generation", "snapshot")

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None
        self.generation = 0
        self._changed = anyio.Event()

    def _set(self, snapshot: Snapshot) -> None:
        if self.snapshot is not None and self.snapshot.versions == snapshot.versions:
            return  # same content: nothing to push
        self.snapshot = snapshot
        self.generation += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_changed(self, since: int) -> int:
        while self.generation <= since:
            await self._changed.wait()
        return self.generation


@dataclass(slots=True)
class _Tracked:
    proxy_id: ProxyId
    metadata: DataplaneMetadata
    watch: _Watch = field(default_factory=_Watch)
    streams: int = 0
    services: frozenset[str] = frozenset()
    seen: bool = False
    """Its Dataplane existed at some point while tracked (so its absence means deleted)."""


class Reconciler:
    """SnapshotSource for the ADS server. Start `run` in the root task group."""

    def __init__(
        self,
        catalog: MeshCatalog,
        generate: Generate,
        *,
        debounce: float = 0.01,
        observe: Callable[[float], Any] | None = None,
        on_error: Callable[[], Any] | None = None,
    ) -> None:
        self._catalog = catalog
        self._generate = generate
        self._debounce = debounce
        self._observe = observe
        self._on_error = on_error
        self._tracked: dict[ProxyId, _Tracked] = {}
        self._dirty: set[ProxyId] = set()
        self._wakeup = anyio.Event()

    # -- SnapshotSource -------------------------------------------------------------------------

    @asynccontextmanager
    async def connect(
        self, proxy_id: ProxyId, metadata: DataplaneMetadata
    ) -> AsyncIterator[_Watch]:
        tracked = self._tracked.get(proxy_id)
        if tracked is None:
            tracked = self._tracked[proxy_id] = _Tracked(proxy_id, metadata)
        else:
            tracked.metadata = metadata  # the newest stream's Envoy knows best
        tracked.streams += 1
        # Generate right away so the first request is answered without waiting a cycle.
        self._regenerate(tracked)
        try:
            yield tracked.watch
        finally:
            tracked.streams -= 1
            if tracked.streams == 0:
                self._tracked.pop(proxy_id, None)
                self._dirty.discard(proxy_id)

    # -- change handling ------------------------------------------------------------------------

    def on_change(self, changes: list[MeshChange]) -> None:
        """MeshCatalog listener: mark the affected connected proxies dirty."""
        by_mesh = {c.mesh: c for c in changes}
        for pid, tracked in self._tracked.items():
            change = by_mesh.get(pid.mesh)
            if change is None:
                continue
            if (
                change.everything
                or pid.name in change.dataplanes
                or not change.services.isdisjoint(tracked.services)
            ):
                self._dirty.add(pid)
        if self._dirty:
            self._wakeup.set()

    def mark_all_dirty(self) -> None:
        self._dirty.update(self._tracked)
        self._wakeup.set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        task_status.started()
        while True:
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
            if self._debounce:
                await anyio.sleep(self._debounce)
            dirty, self._dirty = self._dirty, set()
            for i, pid in enumerate(sorted(dirty)):
                tracked = self._tracked.get(pid)
                if tracked is not None:
                    self._regenerate(tracked)
                if i % 16 == 15:
                    await anyio.lowlevel.checkpoint()  # let streams send meanwhile

    def _regenerate(self, tracked: _Tracked) -> None:
        pid = tracked.proxy_id
        ctx = self._catalog.context(pid.mesh)
        dataplane = ctx.dataplanes.get(pid.name) if ctx is not None else None
        if ctx is None or dataplane is None:
            tracked.services = frozenset()
            if tracked.seen:
                # deleted while connected: take its config away (Kuma does the same)
                tracked.watch._set(Snapshot.empty())
            elif tracked.watch.snapshot is None:
                # Never seen since this control plane started (e.g. a memory-store restart):
                # answer nothing, so Envoy keeps the config it has until the Dataplane is
                # registered again, instead of wiping a working proxy.
                log.warning(
                    "dataplane not found; Envoy keeps its current config until it is registered",
                    mesh=pid.mesh,
                    dataplane=pid.name,
                )
            return
        tracked.seen = True
        start = time.perf_counter()
        try:
            snapshot, tracked.services = self._generate(ctx, dataplane, tracked.metadata)
        except Exception:
            log.exception("generating config failed", mesh=pid.mesh, dataplane=pid.name)
            if self._on_error is not None:
                self._on_error()
            return  # keep serving the last good snapshot
        if self._observe is not None:
            self._observe(time.perf_counter() - start)
        tracked.watch._set(snapshot)

    # -- introspection --------------------------------------------------------------------------

    def connected(self) -> list[ProxyId]:
        return sorted(self._tracked)
