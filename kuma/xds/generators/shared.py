"""SharedResources: Envoy resources many proxies of one mesh receive, built and serialised once.

Ownership: one instance per mesh, held by whoever calls the generators for that mesh's proxies
(the reconciler, through `SnapshotGenerator`, keeps one per mesh and drops it with the mesh).
Everything runs on one event loop, so there is no locking. A resource handed out here is shared:
never mutate its message (copy it with `XdsResource.with_message`).

Two caches:

* load assignments (EDS), one per service, valid while the MeshContext's endpoint tuple of that
  service is the very same object (the catalog keeps it identical while unchanged); the entry
  holds a reference to the tuple, so its identity cannot be reused by another object;
* everything else keyed by a hashable description of the configuration that produced it (an
  outbound cluster: name + subset key sets + the inputs of any later configurer). This cache is
  bounded: past `max_entries` the oldest half is dropped (they are rebuilt on demand);
* small values many proxies need (`memo`): a packed TLS context, an SDS location.

Everything here was built with `settings` (control-plane-wide: where the SDS server is): a
SharedResources is only ever used with the settings it was created with.

Keys may hold the policy Resources whose content went into a resource (a cluster's HealthCheck):
a Resource hashes by identity and the catalog publishes new objects when policies change, so a
changed policy is a new key (and the old entry ages out).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Sequence
from typing import Any

from kuma.xds.core import ENDPOINT, Endpoint, XdsResource
from kuma.xds.envoy.endpoints import cluster_load_assignment
from kuma.xds.generators.settings import GeneratorSettings

__all__ = ["SharedResources"]


class SharedResources:
    __slots__ = ("_by_key", "_cla", "_memo", "hits", "max_entries", "mesh", "misses", "settings")

    def __init__(
        self,
        mesh: str = "",
        *,
        max_entries: int = 50_000,
        settings: GeneratorSettings | None = None,
    ) -> None:
        self.mesh = mesh
        self.max_entries = max_entries
        self.settings = settings if settings is not None else GeneratorSettings()
        self._cla: dict[str, tuple[tuple[Endpoint, ...], XdsResource]] = {}
        self._by_key: dict[Hashable, XdsResource | tuple[XdsResource, ...]] = {}
        self._memo: dict[Hashable, Any] = {}
        self.hits = 0
        self.misses = 0

    def load_assignment(
        self, service: str, endpoints: tuple[Endpoint, ...], origin: str
    ) -> XdsResource:
        """The ClusterLoadAssignment of `service` (cluster name = service name)."""
        entry = self._cla.get(service)
        if entry is not None and entry[0] is endpoints:
            self.hits += 1
            return entry[1]
        self.misses += 1
        resource = XdsResource(
            service, ENDPOINT, cluster_load_assignment(service, endpoints), origin
        )
        _ = resource.digest  # serialise and hash now, once
        self._cla[service] = (endpoints, resource)
        return resource

    def resource(self, key: Hashable, build: Callable[[], XdsResource]) -> XdsResource:
        """The resource built for `key` (by `build()` on first use).

        `key` must capture every input of `build`, and should start with a tag naming the kind
        of resource (`("cluster", name, ...)`), so different builders never collide.
        """
        cached = self._by_key.get(key)
        if cached is not None:
            self.hits += 1
            assert isinstance(cached, XdsResource)
            return cached
        self.misses += 1
        resource = build()
        _ = resource.digest
        self._store(key, resource)
        return resource

    def resources(
        self, key: Hashable, build: Callable[[], Sequence[XdsResource]]
    ) -> tuple[XdsResource, ...]:
        """Like `resource`, for a group of resources built together."""
        cached = self._by_key.get(key)
        if cached is not None:
            self.hits += 1
            assert isinstance(cached, tuple)
            return cached
        self.misses += 1
        group = tuple(build())
        for r in group:
            _ = r.digest
        self._store(key, group)
        return group

    def memo(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """A value built once for `key` (never mutate it); not counted in hits/misses."""
        try:
            return self._memo[key]
        except KeyError:
            pass
        if len(self._memo) >= self.max_entries:
            self._memo.clear()
        value = self._memo[key] = build()
        return value

    def _store(self, key: Hashable, value: XdsResource | tuple[XdsResource, ...]) -> None:
        if len(self._by_key) >= self.max_entries:
            for old in list(self._by_key)[: len(self._by_key) // 2]:
                del self._by_key[old]
        self._by_key[key] = value

    def prune(self, services: Collection[str]) -> None:
        """Forget load assignments of services not in `services` (e.g. the mesh's current
        endpoint map plus the destinations of connected proxies)."""
        for service in [s for s in self._cla if s not in services]:
            del self._cla[service]

    def clear(self) -> None:
        self._cla.clear()
        self._by_key.clear()
        self._memo.clear()

    def __len__(self) -> int:
        return len(self._cla) + len(self._by_key)
