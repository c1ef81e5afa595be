"""DataplaneInsight: what the control plane saw of each dataplane's ADS streams.

Every ADS stream is one `DiscoverySubscription` in the DataplaneInsight of its dataplane (same
mesh and name, owned by the Dataplane, so deleting the Dataplane deletes it):

* opened: `{id: uuid4, controlPlaneInstanceId, connectTime, status: {all counters zero}}`;
* each response sent: `status.lastUpdateTime = now`, `total.responsesSent++`, `<type>.responsesSent++`;
* each ACK / NACK of a response: `lastUpdateTime = now`, `responsesAcknowledged++` /
  `responsesRejected++` (total and per type);
* closed: `disconnectTime = now`, then a final flush.

The ADS server only bumps counters in memory (`StreamStatus`); `InsightRecorder.run` writes the
subscriptions that changed every `flush_interval` (`xdsServer.dataplaneStatusFlushInterval`,
1 s), replacing the stored subscription with the same id or appending it, keeping the last
`subscription_limit` (`metrics.dataplane.subscriptionLimit`, 10; 0 keeps all) and none at all when
`enabled` (`metrics.dataplane.enabled`) is false. Concurrent writers (another control plane
instance, the SDS server recording certificates) are handled by re-reading on conflict. A
dataplane that does not exist (yet, or any more) is skipped quietly: its next change is tried
again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

import anyio
import anyio.abc
import structlog

from kuma.errors import (
    MeshNotFoundError,
    ResourceAlreadyExistsError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from kuma.manager.manager import ResourceManager
from kuma.model import registry
from kuma.model.resource import Resource, ResourceMeta
from kuma.pb.kuma.mesh.v1alpha1 import (
    DataplaneInsight,
    DiscoveryServiceStats,
    DiscoverySubscription,
    DiscoverySubscriptionStatus,
)
from kuma.store.base import now as utc_now
from kuma.xds.core import ProxyId, short_type

__all__ = [
    "InsightRecorder",
    "InsightSink",
    "StreamStatus",
    "SubscriptionRecord",
    "merge_subscriptions",
]

log = structlog.get_logger("kuma.xds.insights")

_STATS = ("total", "cds", "eds", "lds", "rds")
_MAX_ATTEMPTS = 5


class StreamStatus(Protocol):
    """Per-stream counters the ADS server reports into."""

    def response_sent(self, type_url: str) -> None: ...

    def acked(self, type_url: str) -> None: ...

    def rejected(self, type_url: str) -> None: ...

    def close(self) -> None: ...


class InsightSink(Protocol):
    """Where the ADS server reports its streams (an `InsightRecorder`, or a test double)."""

    def open(self, proxy_id: ProxyId, control_plane_instance_id: str) -> StreamStatus: ...


class SubscriptionRecord:
    """One ADS stream's subscription, kept as plain counters until it is flushed."""

    __slots__ = (
        "_clock",
        "_recorder",
        "closed",
        "connect_time",
        "control_plane_instance_id",
        "disconnect_time",
        "id",
        "last_update_time",
        "proxy_id",
        "stats",
    )

    def __init__(
        self,
        recorder: InsightRecorder | None,
        proxy_id: ProxyId,
        control_plane_instance_id: str,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self._recorder = recorder
        self._clock = clock
        self.proxy_id = proxy_id
        self.id = str(uuid.uuid4())
        self.control_plane_instance_id = control_plane_instance_id
        self.connect_time = clock()
        self.disconnect_time: dt.datetime | None = None
        self.last_update_time: dt.datetime | None = None
        self.stats: dict[str, list[int]] = {k: [0, 0, 0] for k in _STATS}
        """"total"/"cds"/"eds"/"lds"/"rds" -> [sent, acknowledged, rejected]."""
        self.closed = False

    def _bump(self, type_url: str, index: int) -> None:
        self.last_update_time = self._clock()
        self.stats["total"][index] += 1
        per_type = self.stats.get(short_type(type_url))
        if per_type is not None:  # SDS has no counter of its own in 0.7.3's status
            per_type[index] += 1
        if self._recorder is not None:
            self._recorder._mark(self)

    def response_sent(self, type_url: str) -> None:
        self._bump(type_url, 0)

    def acked(self, type_url: str) -> None:
        self._bump(type_url, 1)

    def rejected(self, type_url: str) -> None:
        self._bump(type_url, 2)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.disconnect_time = self._clock()
        if self._recorder is not None:
            self._recorder._mark(self)

    def to_pb(self) -> DiscoverySubscription:
        def stats(key: str) -> DiscoveryServiceStats:
            sent, acked, rejected = self.stats[key]
            return DiscoveryServiceStats(
                responses_sent=sent, responses_acknowledged=acked, responses_rejected=rejected
            )

        return DiscoverySubscription(
            id=self.id,
            control_plane_instance_id=self.control_plane_instance_id,
            connect_time=self.connect_time,
            disconnect_time=self.disconnect_time,
            status=DiscoverySubscriptionStatus(
                last_update_time=self.last_update_time,
                total=stats("total"),
                cds=stats("cds"),
                eds=stats("eds"),
                lds=stats("lds"),
                rds=stats("rds"),
            ),
        )


def merge_subscriptions(
    insight: DataplaneInsight, updates: Sequence[DiscoverySubscription], limit: int
) -> None:
    """Replace the subscriptions with the same ids, append the new ones, keep the last `limit`
    (0: all)."""
    index = {s.id: i for i, s in enumerate(insight.subscriptions)}
    for sub in updates:
        i = index.get(sub.id)
        if i is None:
            index[sub.id] = len(insight.subscriptions)
            insight.subscriptions.append(sub)
        else:
            insight.subscriptions[i] = sub
    if limit > 0 and len(insight.subscriptions) > limit:
        insight.subscriptions = insight.subscriptions[-limit:]


class InsightRecorder:
    """InsightSink that writes DataplaneInsights through the resource manager.

    Start `run` in the root task group; the ADS server calls `open` for every stream.
    """

    def __init__(
        self,
        manager: ResourceManager,
        *,
        flush_interval: float = 1.0,
        subscription_limit: int = 10,
        enabled: bool = True,
        concurrency: int = 16,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        if flush_interval <= 0:
            raise ValueError("flush_interval must be positive")
        if subscription_limit < 0:
            raise ValueError("SubscriptionLimit should be positive or equal 0")
        self._manager = manager
        self._interval = flush_interval
        self._limit = subscription_limit
        self._enabled = enabled
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._clock = clock
        self._dirty: dict[str, SubscriptionRecord] = {}
        self._wakeup = anyio.Event()

    # -- InsightSink ----------------------------------------------------------------------------

    def open(self, proxy_id: ProxyId, control_plane_instance_id: str) -> SubscriptionRecord:
        record = SubscriptionRecord(self, proxy_id, control_plane_instance_id, self._clock)
        self._mark(record)
        return record

    def _mark(self, record: SubscriptionRecord) -> None:
        self._dirty[record.id] = record

    @property
    def pending(self) -> int:
        """Subscriptions changed since they were last written."""
        return len(self._dirty)

    # -- flushing -------------------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Flush every `flush_interval`; on cancellation flush once more (bounded) and stop."""
        task_status.started()
        try:
            while True:
                await anyio.sleep(self._interval)
                await self.flush()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self.flush()

    async def flush(self) -> None:
        """Write every subscription that changed since it was last written."""
        if not self._dirty:
            return
        batch, self._dirty = self._dirty, {}
        by_proxy: dict[ProxyId, list[SubscriptionRecord]] = {}
        for record in batch.values():
            by_proxy.setdefault(record.proxy_id, []).append(record)
        async with anyio.create_task_group() as tg:
            for proxy_id, records in by_proxy.items():
                tg.start_soon(self._flush_one, proxy_id, records)

    async def _flush_one(self, proxy_id: ProxyId, records: list[SubscriptionRecord]) -> None:
        async with self._limiter:
            try:
                await self._upsert(proxy_id, [r.to_pb() for r in records])
            except Exception:
                log.exception(
                    "failed to flush Dataplane status", mesh=proxy_id.mesh, dataplane=proxy_id.name
                )
                for r in records:  # keep them for the next flush (unless changed meanwhile)
                    self._dirty.setdefault(r.id, r)

    async def _upsert(self, proxy_id: ProxyId, subscriptions: list[DiscoverySubscription]) -> None:
        rtype = registry.DATAPLANE_INSIGHT
        for _ in range(_MAX_ATTEMPTS):
            try:
                current: Resource | None = await self._manager.get(
                    rtype, proxy_id.name, proxy_id.mesh
                )
            except ResourceNotFoundError:
                current = None
            except MeshNotFoundError:
                return
            spec = current.spec if current is not None else DataplaneInsight()
            merge_subscriptions(spec, subscriptions, self._limit)
            if not self._enabled:
                spec.subscriptions = []
            try:
                if current is None:
                    meta = ResourceMeta(name=proxy_id.name, mesh=proxy_id.mesh)
                    await self._manager.create(Resource(rtype, meta, spec))
                else:
                    await self._manager.update(current)
            except (ResourceConflictError, ResourceAlreadyExistsError):
                continue  # someone else wrote it meanwhile: read again and merge again
            except MeshNotFoundError:
                return
            except ResourceNotFoundError:
                if current is None:
                    # the owning Dataplane does not exist: nothing to record it in
                    log.debug(
                        "dataplane not found, status not saved",
                        mesh=proxy_id.mesh,
                        dataplane=proxy_id.name,
                    )
                    return
                continue  # the insight was deleted meanwhile: read again
            return
        raise ResourceConflictError(rtype.name, proxy_id.name, proxy_id.mesh)
