"""Control-plane metrics: store latency, API requests, resource counts, cp_info, SDS counters."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from kuma.api import build_api_app
from kuma.api.settings import ApiSettings
from kuma.cp.metrics import ResourceCounter, register_cp_info
from kuma.errors import ResourceNotFoundError
from kuma.manager import ResourceManager
from kuma.model import registry as types
from kuma.model.resource import Resource, ResourceMeta
from kuma.store.memory import MemoryStore
from kuma.store.metered import MeteredStore

pytestmark = pytest.mark.anyio


def mesh(name: str) -> Resource:
    return Resource(types.MESH, ResourceMeta(name=name), types.MESH.new_spec())


def sample(metrics: CollectorRegistry, name: str, **labels: str) -> float | None:
    return metrics.get_sample_value(name, labels)


async def test_store_operations_are_timed_by_operation_and_type() -> None:
    metrics = CollectorRegistry()
    store = MeteredStore(MemoryStore(), metrics)
    await store.create(mesh("m1"))
    await store.get(types.MESH, "m1")
    await store.list(types.DATAPLANE)
    with pytest.raises(ResourceNotFoundError):
        await store.get(types.MESH, "missing")
    await store.delete(types.MESH, "m1")

    assert sample(metrics, "store_count", operation="create", resource_type="Mesh") == 1
    assert sample(metrics, "store_count", operation="get", resource_type="Mesh") == 2  # failed too
    assert sample(metrics, "store_count", operation="list", resource_type="Dataplane") == 1
    assert sample(metrics, "store_count", operation="delete", resource_type="Mesh") == 1
    assert sample(metrics, "store_sum", operation="create", resource_type="Mesh") > 0


async def test_api_requests_are_counted_by_route_template_code_and_method() -> None:
    metrics = CollectorRegistry()
    manager = ResourceManager(MemoryStore())
    await manager.ensure_default_mesh()
    app = build_api_app(manager, ApiSettings(version="t", hostname="h"), metrics=metrics)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://cp"
    ) as client:
        assert (await client.get("/meshes/default")).status_code == 200
        assert (await client.get("/meshes/nope")).status_code == 404
        assert (await client.get("/no/such/path/at/all")).status_code == 404

    duration = "api_server_http_request_duration_seconds_count"
    assert sample(metrics, duration, code="200", handler="/meshes/{name}", method="GET") == 1
    assert sample(metrics, duration, code="404", handler="/meshes/{name}", method="GET") == 1
    assert sample(metrics, duration, code="404", handler="unmatched", method="GET") == 1
    size = sample(
        metrics,
        "api_server_http_response_size_bytes_sum",
        code="200",
        handler="/meshes/{name}",
        method="GET",
    )
    assert size is not None
    assert size > 0
    assert sample(metrics, "api_server_http_requests_inflight") == 0


async def until(check: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not check():  # noqa: ASYNC110 - the gauge has no event to wait on
            await anyio.sleep(0.01)


async def test_resource_counts_follow_store_changes() -> None:
    metrics = CollectorRegistry()
    manager = ResourceManager(MemoryStore())
    counter = ResourceCounter(manager, metrics, min_interval=0.01)
    async with anyio.create_task_group() as tg:
        await tg.start(counter.run)
        assert sample(metrics, "resources_count", resource_type="Mesh") == 0
        await manager.create(mesh("a"))
        await manager.create(mesh("b"))
        await until(lambda: sample(metrics, "resources_count", resource_type="Mesh") == 2)
        await manager.delete(types.MESH, "a")
        await until(lambda: sample(metrics, "resources_count", resource_type="Mesh") == 1)
        tg.cancel_scope.cancel()


def test_cp_info_names_the_instance_and_version() -> None:
    from kuma.version import __version__

    metrics = CollectorRegistry()
    register_cp_info(metrics, "host-1")
    assert (
        sample(metrics, "cp_info", instance_id="host-1", product="kuma-py", version=__version__)
        == 1
    )
    assert b"# TYPE cp_info gauge" in generate_latest(metrics)
