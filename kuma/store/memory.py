"""In-memory store (the default for `kuma-cp run`): everything is lost on restart.

Specs are kept as their proto3-JSON text, so a read hands out an independent Resource whose spec
is decoded only if the caller looks at it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from kuma.errors import ResourceAlreadyExistsError, ResourceConflictError, ResourceNotFoundError
from kuma.model.resource import Resource, ResourceKey, ResourceMeta, ResourceType
from kuma.store.base import ListResult, ResourceStore, now, parse_offset
from kuma.store.events import ChangeEvent, ChangeOp, EventBus, Subscription

__all__ = ["MemoryStore"]


@dataclass(slots=True)
class _Record:
    meta: ResourceMeta
    spec_json: str
    owner: ResourceKey | None
    children: set[ResourceKey] = field(default_factory=set)


def _copy_meta(meta: ResourceMeta) -> ResourceMeta:
    return ResourceMeta(
        meta.name, meta.mesh, meta.version, meta.creation_time, meta.modification_time
    )


class MemoryStore(ResourceStore):
    def __init__(self) -> None:
        self._records: dict[ResourceKey, _Record] = {}
        # per type: keys sorted by (name, mesh), the listing order
        self._sorted: dict[str, list[tuple[str, str]]] = {}
        self._bus = EventBus()

    # -- writes ---------------------------------------------------------------------------------

    async def create(self, resource: Resource, *, owner: ResourceKey | None = None) -> None:
        key = resource.key
        if key in self._records:
            raise ResourceAlreadyExistsError(key.type, key.name, key.mesh)
        if owner is not None and owner not in self._records:
            raise ResourceNotFoundError(owner.type, owner.name, owner.mesh)
        ts = now()
        meta = resource.meta
        meta.version = "1"
        meta.creation_time = ts
        meta.modification_time = ts
        self._records[key] = _Record(_copy_meta(meta), resource.spec_json(), owner)
        bisect.insort(self._sorted.setdefault(key.type, []), (key.name, key.mesh))
        if owner is not None:
            self._records[owner].children.add(key)
        self._bus.publish(ChangeEvent(ChangeOp.CREATE, key.type, key.mesh, key.name))

    async def update(self, resource: Resource) -> None:
        key = resource.key
        record = self._records.get(key)
        if record is None:
            raise ResourceNotFoundError(key.type, key.name, key.mesh)
        if record.meta.version != resource.meta.version:
            raise ResourceConflictError(key.type, key.name, key.mesh)
        meta = resource.meta
        meta.version = str(int(record.meta.version) + 1)
        meta.creation_time = record.meta.creation_time
        meta.modification_time = now()
        record.meta = _copy_meta(meta)
        record.spec_json = resource.spec_json()
        self._bus.publish(ChangeEvent(ChangeOp.UPDATE, key.type, key.mesh, key.name))

    async def delete(self, rtype: ResourceType, name: str, mesh: str = "") -> None:
        key = ResourceKey(rtype.name, mesh, name)
        record = self._records.get(key)
        if record is None:
            raise ResourceNotFoundError(rtype.name, name, mesh)
        if record.owner is not None and record.owner in self._records:
            self._records[record.owner].children.discard(key)
        self._remove_tree(key)

    def _remove_tree(self, key: ResourceKey) -> None:
        record = self._records.pop(key, None)
        if record is None:
            return
        keys = self._sorted.get(key.type, [])
        i = bisect.bisect_left(keys, (key.name, key.mesh))
        if i < len(keys) and keys[i] == (key.name, key.mesh):
            del keys[i]
        for child in list(record.children):
            self._remove_tree(child)
        self._bus.publish(ChangeEvent(ChangeOp.DELETE, key.type, key.mesh, key.name))

    # -- reads ----------------------------------------------------------------------------------

    async def get(self, rtype: ResourceType, name: str, mesh: str = "") -> Resource:
        record = self._records.get(ResourceKey(rtype.name, mesh, name))
        if record is None:
            raise ResourceNotFoundError(rtype.name, name, mesh)
        return Resource(rtype, _copy_meta(record.meta), spec_json=record.spec_json)

    async def list(
        self,
        rtype: ResourceType,
        mesh: str | None = None,
        *,
        size: int | None = None,
        offset: str | None = None,
    ) -> ListResult:
        start = parse_offset(offset)
        keys = self._sorted.get(rtype.name, [])
        if mesh is not None:
            keys = [k for k in keys if k[1] == mesh]
        total = len(keys)
        end = total if not size else min(total, start + size)
        items = []
        for name, m in keys[start:end]:
            record = self._records[ResourceKey(rtype.name, m, name)]
            items.append(Resource(rtype, _copy_meta(record.meta), spec_json=record.spec_json))
        next_offset = str(end) if size and end < total else None
        return ListResult(items, total, next_offset)

    def subscribe(self, *, max_buffer: int = 10_000) -> Subscription:
        return self._bus.subscribe(max_buffer=max_buffer)

    async def close(self) -> None:
        self._bus.close()

    # -- diagnostics ----------------------------------------------------------------------------

    def count(self, rtype: ResourceType | None = None) -> int:
        if rtype is None:
            return len(self._records)
        return len(self._sorted.get(rtype.name, []))
