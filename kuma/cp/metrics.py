"""Control-plane wide metrics on the diagnostics port's `/metrics` (Kuma 1.x names).

| name | type | what |
|---|---|---|
| `cp_info` | gauge, always 1 | `instance_id`, `product`, `version` of this control plane |
| `resources_count` | gauge by `resource_type` | resources in the store |

`resources_count` is recounted after store changes (at most once per `min_interval`, and on a
`Resync`), not by listing every resource every minute as Kuma does: each recount asks the store
for one-item pages, whose `total` is the count.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
import structlog
from prometheus_client import CollectorRegistry, Gauge

from kuma.manager import ResourceManager
from kuma.model import registry as types
from kuma.version import __version__

__all__ = ["ResourceCounter", "register_cp_info"]

log = structlog.get_logger("kuma-cp")


def register_cp_info(metrics: CollectorRegistry, instance_id: str) -> Gauge:
    gauge = Gauge(
        "cp_info",
        "Static information about the CP instance",
        ("instance_id", "product", "version"),
        registry=metrics,
    )
    gauge.labels(instance_id, "kuma-py", __version__).set(1)
    return gauge


class ResourceCounter:
    """Keeps `resources_count{resource_type}` current from the store's change events."""

    def __init__(
        self, manager: ResourceManager, metrics: CollectorRegistry, *, min_interval: float = 1.0
    ) -> None:
        self._manager = manager
        self._min_interval = min_interval
        self.gauge = Gauge(
            "resources_count", "Number of resources", ("resource_type",), registry=metrics
        )

    async def count(self) -> None:
        for rtype in types.all_types():
            page = await self._manager.store.list(rtype, size=1)
            self.gauge.labels(rtype.name).set(page.total)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        changed = anyio.Event()

        async def follow(sub: Any) -> None:
            async for _event in sub:  # any change or Resync: count again
                changed.set()

        async with self._manager.store.subscribe() as sub, anyio.create_task_group() as tg:
            tg.start_soon(follow, sub)
            await self._count_quietly()
            task_status.started()
            while True:
                await changed.wait()
                changed = anyio.Event()
                await self._count_quietly()
                await anyio.sleep(self._min_interval)

    async def _count_quietly(self) -> None:
        try:
            await self.count()
        except Exception as exc:  # a store hiccup must not stop the control plane
            log.warning("could not count resources", error=str(exc))
