"""kuma-prometheus-sd against a real kuma-cp: the file follows the mesh's dataplanes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import ControlPlane, control_plane, wait_until
from tests.support.prometheus import kuma_prometheus_sd, read_targets

pytestmark = pytest.mark.e2e

CONVERGE = 20.0

MESH = {
    "type": "Mesh",
    "name": "default",
    "metrics": {
        "enabledBackend": "prom-1",
        "backends": [{"name": "prom-1", "type": "prometheus", "conf": {"port": 5670}}],
    },
}


def dataplane(name: str, address: str, service: str, **spec: Any) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {
            "address": address,
            "inbound": [{"port": 10001, "servicePort": 8080, "tags": {"kuma.io/service": service}}],
        },
        **spec,
    }


def put(cp: ControlPlane, path: str, doc: dict[str, Any]) -> None:
    response = httpx.put(cp.api + path, json=doc, timeout=10)
    assert response.status_code in (200, 201), response.text


@pytest.fixture
def cp() -> Iterator[ControlPlane]:
    with control_plane("run") as cp:  # MADS on a free port too (Ports.mads)
        cp.wait_ready()
        yield cp


def test_file_follows_dataplanes(cp: ControlPlane, tmp_path: Path) -> None:
    put(cp, "/meshes/default", MESH)
    put(cp, "/meshes/default/dataplanes/backend-01", dataplane("backend-01", "10.0.0.1", "backend"))
    web = dataplane(
        "web-01", "10.0.0.2", "web", metrics={"type": "prometheus", "conf": {"port": 9102}}
    )
    put(cp, "/meshes/default/dataplanes/web-01", web)
    out = tmp_path / "prom" / "kuma.file_sd.json"  # the directory is created

    with kuma_prometheus_sd(cp.api, out) as sd:
        targets = wait_until(
            lambda: (t := read_targets(out)) and len(t) == 2 and t, CONVERGE, "two targets"
        )
        assert targets["10.0.0.1:5670"] == {
            "__metrics_path__": "/metrics",
            "__scheme__": "http",
            "dataplane": "backend-01",
            "instance": "backend-01",
            "job": "backend",
            "kuma_io_service": "backend",
            "kuma_io_services": ",backend,",
            "mesh": "default",
        }
        assert targets["10.0.0.2:9102"]["dataplane"] == "web-01"  # the dataplane's own port

        response = httpx.delete(f"{cp.api}/meshes/default/dataplanes/web-01", timeout=10)
        assert response.status_code == 200
        wait_until(lambda: read_targets(out).keys() == {"10.0.0.1:5670"}, CONVERGE, "web gone")

        # metrics off for the mesh: nothing left to scrape
        put(cp, "/meshes/default", {"type": "Mesh", "name": "default"})
        wait_until(lambda: read_targets(out) == {}, CONVERGE, "an empty target list")
        assert sd.alive()
        assert sorted(p.name for p in out.parent.iterdir()) == ["kuma.file_sd.json"]
        assert "error" not in sd.output(), sd.output()
        assert sd.stop() == 0  # SIGTERM: a clean exit
