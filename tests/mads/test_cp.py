"""kuma-cp as a real process: a MADS client on the port the catalog advertises gets the
assignments, and REST writes are pushed to it (memory and PostgreSQL stores)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import httpx
import pytest

from tests.support.procs import ControlPlane, control_plane, postgres_env

from .harness import MadsClient, ack, assignments_of

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]

METRICS = {
    "type": "Mesh",
    "name": "default",
    "metrics": {
        "enabledBackend": "prometheus-1",
        "backends": [{"name": "prometheus-1", "type": "prometheus"}],
    },
}


def _dataplane(name: str, address: str, service: str) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "name": name,
        "mesh": "default",
        "networking": {
            "address": address,
            "inbound": [{"port": 10001, "servicePort": 8080, "tags": {"kuma.io/service": service}}],
        },
    }


async def _put(api: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
    response = await api.put(path, json=body)
    assert response.status_code in (200, 201), response.text


async def _assignments_follow_rest_writes(cp: ControlPlane) -> None:
    await anyio.to_thread.run_sync(cp.wait_ready)
    async with httpx.AsyncClient(base_url=cp.api, timeout=5) as api:
        catalog = (await api.get("/catalog")).json()
        url = catalog["apis"]["monitoringAssignment"]["url"]
        assert url == f"grpc://localhost:{cp.ports.mads}"

        async with MadsClient(cp.ports.mads) as client:
            first = await client.subscribe()
            assert assignments_of(first) == {}  # the default mesh collects no metrics
            await client.send(ack(first))

            await _put(
                api,
                "/meshes/default/dataplanes/backend-01",
                _dataplane("backend-01", "10.0.0.1", "backend"),
            )
            assert await client.nothing_within(0.3)  # still nothing to monitor

            await _put(api, "/meshes/default", METRICS)
            enabled = await client.recv()
            (assignment,) = assignments_of(enabled).values()
            assert assignment.name == "/meshes/default/dataplanes/backend-01"
            # the mesh defaults: port 5670, path /metrics
            assert [dict(t.labels) for t in assignment.targets] == [
                {"__address__": "10.0.0.1:5670"}
            ]
            assert assignment.labels["__metrics_path__"] == "/metrics"
            assert assignment.labels["job"] == "backend"
            assert enabled.control_plane.identifier  # kuma-cp names itself
            await client.send(ack(enabled))

            await _put(
                api, "/meshes/default/dataplanes/web-01", _dataplane("web-01", "10.0.0.2", "web")
            )
            added = await client.recv()
            assert sorted(assignments_of(added)) == [
                "/meshes/default/dataplanes/backend-01",
                "/meshes/default/dataplanes/web-01",
            ]
            await client.send(ack(added))

            assert (await api.delete("/meshes/default/dataplanes/backend-01")).status_code == 200
            deleted = await client.recv()
            assert sorted(assignments_of(deleted)) == ["/meshes/default/dataplanes/web-01"]
            # kuma-cp stops cleanly with the stream still open
            assert await anyio.to_thread.run_sync(cp.stop) == 0


async def test_kuma_cp_serves_mads_on_its_port() -> None:
    with control_plane("run") as cp:
        await _assignments_follow_rest_writes(cp)


@pytest.mark.postgres
async def test_kuma_cp_serves_mads_from_postgres(postgres_db: str) -> None:
    from kuma.store.postgres import migrate_up

    await migrate_up(postgres_db)
    with control_plane("run", **postgres_env(postgres_db)) as cp:
        await _assignments_follow_rest_writes(cp)
