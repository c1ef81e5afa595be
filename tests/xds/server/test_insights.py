"""DataplaneInsight recording: subscriptions, counters, flushing, limits, missing dataplanes."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import anyio
import pytest

from kuma.manager import ResourceManager
from kuma.model import codec
from kuma.model import registry as r
from kuma.model.resource import Resource
from kuma.model.yamlio import load_resources
from kuma.store.memory import MemoryStore
from kuma.xds.core import CLUSTER, ENDPOINT, LISTENER, SECRET, ProxyId
from kuma.xds.insights import InsightRecorder

pytestmark = pytest.mark.anyio

DP = """
type: Dataplane
mesh: {mesh}
name: {name}
networking:
  address: 10.0.0.1
  inbound:
  - port: 8000
    tags: {{kuma.io/service: backend}}
"""

WEB = ProxyId("default", "web")


class RacingStore(MemoryStore):
    """A memory store where another writer gets in right before the next insight update."""

    def __init__(self) -> None:
        super().__init__()
        self.before_update: Callable[[], Awaitable[None]] | None = None

    async def update(self, resource: Resource) -> None:
        if self.before_update is not None and resource.type is r.DATAPLANE_INSIGHT:
            race, self.before_update = self.before_update, None
            await race()
        await super().update(resource)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2020, 10, 1, 12, 0, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> dt.datetime:
        self.now += dt.timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def store() -> RacingStore:
    return RacingStore()


@pytest.fixture
async def manager(store: RacingStore) -> ResourceManager:
    m = ResourceManager(store)
    await m.ensure_default_mesh()
    (dp,) = load_resources(DP.format(mesh="default", name="web"))
    await m.create(dp)
    return m


async def insight(manager: ResourceManager, name: str = "web") -> Resource:
    return await manager.get(r.DATAPLANE_INSIGHT, name, "default")


async def test_stream_becomes_a_subscription_with_kuma_counters(manager: ResourceManager) -> None:
    clock = Clock()
    recorder = InsightRecorder(manager, clock=clock)
    status = recorder.open(WEB, "cp-1")
    await recorder.flush()
    got = await insight(manager)
    (sub,) = got.spec.subscriptions
    assert sub.id == status.id
    assert len(sub.id) == 36  # a uuid
    assert sub.control_plane_instance_id == "cp-1"
    assert sub.connect_time == clock.now
    assert sub.disconnect_time is None
    assert sub.status.total.responses_sent == 0

    clock.tick()
    status.response_sent(CLUSTER)
    status.response_sent(ENDPOINT)
    status.response_sent(LISTENER)
    status.acked(CLUSTER)
    status.acked(ENDPOINT)
    last = clock.tick()
    status.rejected(LISTENER)
    status.response_sent(SECRET)  # counted in total only: 0.7.3's status has no sds counter
    await recorder.flush()
    document = codec.encode((await insight(manager)).spec)
    assert document == {
        "subscriptions": [
            {
                "id": status.id,
                "controlPlaneInstanceId": "cp-1",
                "connectTime": "2020-10-01T12:00:00Z",
                "status": {
                    "lastUpdateTime": "2020-10-01T12:00:02Z",
                    "total": {
                        "responsesSent": "4",
                        "responsesAcknowledged": "2",
                        "responsesRejected": "1",
                    },
                    "cds": {"responsesSent": "1", "responsesAcknowledged": "1"},
                    "eds": {"responsesSent": "1", "responsesAcknowledged": "1"},
                    "lds": {"responsesSent": "1", "responsesRejected": "1"},
                    "rds": {},
                },
            }
        ]
    }
    assert last == clock.now

    clock.tick(10)
    status.close()
    await recorder.flush()
    (sub,) = (await insight(manager)).spec.subscriptions
    assert sub.disconnect_time == clock.now


async def test_unchanged_status_is_not_written_again(manager: ResourceManager) -> None:
    recorder = InsightRecorder(manager)
    status = recorder.open(WEB, "cp-1")
    await recorder.flush()
    version = (await insight(manager)).meta.version
    await recorder.flush()
    await recorder.flush()
    assert (await insight(manager)).meta.version == version
    status.response_sent(CLUSTER)
    assert recorder.pending == 1
    await recorder.flush()
    assert (await insight(manager)).meta.version != version
    assert recorder.pending == 0


async def test_streams_of_one_dataplane_share_the_insight_and_the_last_ten_are_kept(
    manager: ResourceManager,
) -> None:
    recorder = InsightRecorder(manager, subscription_limit=10)
    ids = []
    for _ in range(12):
        status = recorder.open(WEB, "cp-1")
        ids.append(status.id)
        await recorder.flush()
        status.close()
    await recorder.flush()
    subs = (await insight(manager)).spec.subscriptions
    assert [s.id for s in subs] == ids[-10:]
    assert all(s.disconnect_time is not None for s in subs)


async def test_subscription_limit_zero_keeps_all(manager: ResourceManager) -> None:
    recorder = InsightRecorder(manager, subscription_limit=0)
    for _ in range(12):
        recorder.open(WEB, "cp-1").close()
        await recorder.flush()
    assert len((await insight(manager)).spec.subscriptions) == 12


async def test_disabled_insights_keep_no_subscriptions(manager: ResourceManager) -> None:
    recorder = InsightRecorder(manager, enabled=False)
    recorder.open(WEB, "cp-1").response_sent(CLUSTER)
    await recorder.flush()
    assert (await insight(manager)).spec.subscriptions == []


async def test_missing_dataplane_or_mesh_is_skipped_quietly(
    manager: ResourceManager, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = InsightRecorder(manager)
    recorder.open(ProxyId("default", "ghost"), "cp-1").response_sent(CLUSTER)
    recorder.open(ProxyId("no-such-mesh", "web"), "cp-1").response_sent(CLUSTER)
    with caplog.at_level(logging.INFO):
        await recorder.flush()
    assert (await manager.list(r.DATAPLANE_INSIGHT)).total == 0
    assert recorder.pending == 0
    assert not [rec for rec in caplog.records if rec.levelno >= logging.WARNING]


async def test_dataplane_deleted_while_connected(manager: ResourceManager) -> None:
    recorder = InsightRecorder(manager)
    status = recorder.open(WEB, "cp-1")
    await recorder.flush()
    await manager.delete(r.DATAPLANE, "web", "default")  # takes its insight with it
    status.response_sent(LISTENER)
    status.close()
    await recorder.flush()
    assert (await manager.list(r.DATAPLANE_INSIGHT)).total == 0
    # registered again: the next change of a live stream is recorded again
    (dp,) = load_resources(DP.format(mesh="default", name="web"))
    await manager.create(dp)
    again = recorder.open(WEB, "cp-1")
    await recorder.flush()
    assert [s.id for s in (await insight(manager)).spec.subscriptions] == [again.id]


async def test_concurrent_writer_is_merged_not_overwritten(
    manager: ResourceManager, store: RacingStore
) -> None:
    mine = InsightRecorder(manager)
    theirs = InsightRecorder(manager)  # another control plane instance
    a = mine.open(WEB, "cp-1")
    await mine.flush()
    b = theirs.open(WEB, "cp-2")
    store.before_update = theirs.flush  # they write between our read and our update
    a.response_sent(CLUSTER)
    await mine.flush()
    subs = {s.id: s for s in (await insight(manager)).spec.subscriptions}
    assert set(subs) == {a.id, b.id}
    assert subs[a.id].status.total.responses_sent == 1
    assert subs[b.id].control_plane_instance_id == "cp-2"


async def test_run_flushes_periodically_and_once_more_when_stopped(
    manager: ResourceManager,
) -> None:
    recorder = InsightRecorder(manager, flush_interval=0.02)
    async with anyio.create_task_group() as tg:
        await tg.start(recorder.run)
        status = recorder.open(WEB, "cp-1")
        with anyio.fail_after(5):
            while True:
                try:
                    await insight(manager)
                    break
                except Exception:
                    await anyio.sleep(0.01)
        status.response_sent(CLUSTER)
        status.close()
        tg.cancel_scope.cancel()  # the final flush still records the disconnect
    (sub,) = (await insight(manager)).spec.subscriptions
    assert sub.disconnect_time is not None
    assert sub.status.total.responses_sent == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"flush_interval": 0}, "flush_interval"),
        ({"subscription_limit": -1}, "SubscriptionLimit"),
    ],
)
def test_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InsightRecorder(ResourceManager(MemoryStore()), **kwargs)  # type: ignore[arg-type]
