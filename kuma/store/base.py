"""The resource store contract, and the strict wrapper every caller goes through.

Backends (memory, PostgreSQL, Kubernetes) implement `ResourceStore`; one contract test suite
(`tests/store/contract.py`) runs against each. Semantics:

* `create` fails with ResourceAlreadyExistsError on a taken key, and with ResourceNotFoundError
  when `owner` does not exist. It sets `meta.version`, `creation_time` and `modification_time`.
* `update` is optimistic: `resource.meta.version` must be the stored version, else
  ResourceConflictError (a missing resource is ResourceNotFoundError). It sets a new version.
* `delete` removes the resource and, transitively, everything it owns.
* `list` orders by (name, mesh); `offset` is an opaque token from a previous `next_offset`.
* Every successful write is published as a ChangeEvent (cascaded deletes included) to
  `subscribe()`rs, in this process and, for shared backends, in every control plane instance.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from kuma.errors import InvalidOffsetError
from kuma.model.resource import Resource, ResourceKey, ResourceType
from kuma.store.events import Subscription

__all__ = ["ListResult", "ResourceStore", "StrictResourceStore", "now", "parse_offset"]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class ListResult:
    items: list[Resource] = field(default_factory=list)
    total: int = 0
    """Number of matching resources before paging."""
    next_offset: str | None = None
    """Token for the next page; None on the last page."""


def parse_offset(offset: str | None) -> int:
    """Numeric offsets (memory and PostgreSQL); anything else is InvalidOffsetError."""
    if offset is None or offset == "":
        return 0
    if not offset.isdigit():
        raise InvalidOffsetError()
    return int(offset)


class ResourceStore(ABC):
    """Async CRUD over resources plus change events. See the module docstring for semantics."""

    @abstractmethod
    async def create(self, resource: Resource, *, owner: ResourceKey | None = None) -> None: ...

    @abstractmethod
    async def update(self, resource: Resource) -> None: ...

    @abstractmethod
    async def delete(self, rtype: ResourceType, name: str, mesh: str = "") -> None: ...

    @abstractmethod
    async def get(self, rtype: ResourceType, name: str, mesh: str = "") -> Resource: ...

    @abstractmethod
    async def list(
        self,
        rtype: ResourceType,
        mesh: str | None = None,
        *,
        size: int | None = None,
        offset: str | None = None,
    ) -> ListResult:
        """`mesh=None` lists every mesh; `size=None` returns everything after `offset`."""

    @abstractmethod
    def subscribe(self, *, max_buffer: int = 10_000) -> Subscription: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the store is unusable afterwards."""


class StrictResourceStore(ResourceStore):
    """Checks that keys fit their type's scope before the backend sees them.

    Mesh-scoped types need a mesh; global types must not have one. These are programming
    errors (ValueError), not user errors: user input is validated before it gets here.
    """

    def __init__(self, inner: ResourceStore) -> None:
        self.inner = inner

    @staticmethod
    def _check(rtype: ResourceType, name: str, mesh: str | None) -> None:
        if not name:
            raise ValueError(f"{rtype.name}: name is required")
        if rtype.mesh_scoped and not mesh:
            raise ValueError(f"{rtype.name} is mesh-scoped: mesh is required")
        if not rtype.mesh_scoped and mesh:
            raise ValueError(f"{rtype.name} is global: mesh must be empty, got {mesh!r}")

    async def create(self, resource: Resource, *, owner: ResourceKey | None = None) -> None:
        self._check(resource.type, resource.meta.name, resource.meta.mesh)
        await self.inner.create(resource, owner=owner)

    async def update(self, resource: Resource) -> None:
        self._check(resource.type, resource.meta.name, resource.meta.mesh)
        if not resource.meta.version:
            raise ValueError(f"{resource!r}: update needs the version it was read at")
        await self.inner.update(resource)

    async def delete(self, rtype: ResourceType, name: str, mesh: str = "") -> None:
        self._check(rtype, name, mesh)
        await self.inner.delete(rtype, name, mesh)

    async def get(self, rtype: ResourceType, name: str, mesh: str = "") -> Resource:
        self._check(rtype, name, mesh)
        return await self.inner.get(rtype, name, mesh)

    async def list(
        self,
        rtype: ResourceType,
        mesh: str | None = None,
        *,
        size: int | None = None,
        offset: str | None = None,
    ) -> ListResult:
        if not rtype.mesh_scoped and mesh:
            raise ValueError(f"{rtype.name} is global: cannot list by mesh")
        if size is not None and size < 0:
            raise ValueError("size must be >= 0")
        return await self.inner.list(rtype, mesh, size=size, offset=offset)

    def subscribe(self, *, max_buffer: int = 10_000) -> Subscription:
        return self.inner.subscribe(max_buffer=max_buffer)

    async def close(self) -> None:
        await self.inner.close()
