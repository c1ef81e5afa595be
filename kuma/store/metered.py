"""A store wrapper that times every operation into Kuma's `store` histogram.

    store = MeteredStore(PostgresStore(...), registry)

Kuma 1.x exports `store{operation, resource_type}` as a histogram of seconds (`store_bucket`,
`store_sum`, `store_count`); operations are `create`, `update`, `delete`, `get` and `list`.
A failed operation is observed too (its latency is as interesting as a successful one's).
Anything that is not part of the store contract (a backend's `run`, for example) is passed
through untouched.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

from kuma.model.resource import Resource, ResourceKey, ResourceType
from kuma.store.base import ListResult, ResourceStore
from kuma.store.events import Subscription

__all__ = ["MeteredStore"]


class MeteredStore(ResourceStore):
    def __init__(self, inner: ResourceStore, registry: CollectorRegistry) -> None:
        self.inner = inner
        self.histogram = Histogram(
            "store",
            "Summary of Store operations",
            ("operation", "resource_type"),
            registry=registry,
        )
        # children resolved once per (operation, type): labels() costs more than observe()
        self._children: dict[tuple[str, str], Any] = {}

    def _observe(self, operation: str, type_name: str, started: float) -> None:
        key = (operation, type_name)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.histogram.labels(operation, type_name)
        child.observe(time.perf_counter() - started)

    async def create(self, resource: Resource, *, owner: ResourceKey | None = None) -> None:
        started = time.perf_counter()
        try:
            await self.inner.create(resource, owner=owner)
        finally:
            self._observe("create", resource.type.name, started)

    async def update(self, resource: Resource) -> None:
        started = time.perf_counter()
        try:
            await self.inner.update(resource)
        finally:
            self._observe("update", resource.type.name, started)

    async def delete(self, rtype: ResourceType, name: str, mesh: str = "") -> None:
        started = time.perf_counter()
        try:
            await self.inner.delete(rtype, name, mesh)
        finally:
            self._observe("delete", rtype.name, started)

    async def get(self, rtype: ResourceType, name: str, mesh: str = "") -> Resource:
        started = time.perf_counter()
        try:
            return await self.inner.get(rtype, name, mesh)
        finally:
            self._observe("get", rtype.name, started)

    async def list(
        self,
        rtype: ResourceType,
        mesh: str | None = None,
        *,
        size: int | None = None,
        offset: str | None = None,
    ) -> ListResult:
        started = time.perf_counter()
        try:
            return await self.inner.list(rtype, mesh, size=size, offset=offset)
        finally:
            self._observe("list", rtype.name, started)

    def subscribe(self, *, max_buffer: int = 10_000) -> Subscription:
        return self.inner.subscribe(max_buffer=max_buffer)

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
