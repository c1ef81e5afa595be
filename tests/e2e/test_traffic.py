"""Traffic through real Envoys: kuma-cp + kuma-dp + Envoy + kuma-tcp-echo on loopback.

web app --> web's Envoy outbound (127.0.0.1:<out>) --EDS--> backend's Envoy inbound
        --> localhost cluster --> kuma-tcp-echo
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.procs import (
    ControlPlane,
    Ports,
    base_env,
    control_plane,
    echo_server,
    free_port,
    kuma_dp,
    postgres_env,
    send_and_receive,
    wait_until,
)

pytestmark = pytest.mark.e2e

CONVERGE = 30.0  # seconds allowed for config to reach Envoy


def dataplane(name: str, inbound: int, service_port: int, service: str, **extra: Any) -> dict:
    tags = {"kuma.io/service": service, **extra.pop("tags", {})}
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": inbound, "servicePort": service_port, "tags": tags}],
            "outbound": extra.pop("outbound", []),
        },
    }


def put(cp: ControlPlane, doc: dict) -> None:
    path = f"/meshes/{doc['mesh']}/dataplanes/{doc['name']}"
    response = httpx.put(cp.api + path, json=doc, timeout=10)
    assert response.status_code in (200, 201), response.text


def delete(cp: ControlPlane, name: str) -> None:
    response = httpx.delete(f"{cp.api}/meshes/default/dataplanes/{name}", timeout=10)
    assert response.status_code == 200, response.text


def cluster_hosts(admin_port: int, cluster: str) -> list[str]:
    """`ip:port` of every host Envoy has for `cluster` (from /clusters)."""
    data = httpx.get(f"http://127.0.0.1:{admin_port}/clusters?format=json", timeout=5).json()
    for status in data.get("cluster_statuses", []):
        if status["name"] == cluster:
            return sorted(
                f"{h['address']['socket_address']['address']}:"
                f"{h['address']['socket_address']['port_value']}"
                for h in status.get("host_statuses", [])
            )
    return []


def config_dump_names(admin_port: int) -> dict[str, set[str]]:
    dump = httpx.get(f"http://127.0.0.1:{admin_port}/config_dump", timeout=5).json()
    names: dict[str, set[str]] = {"listeners": set(), "clusters": set()}
    for section in dump["configs"]:
        for item in section.get("dynamic_listeners", []):
            names["listeners"].add(item["name"])
        for item in section.get("dynamic_active_clusters", []):
            names["clusters"].add(item["cluster"]["name"])
    return names


def echo_works(port: int, payload: bytes = b"hello through the mesh\n") -> bool:
    return send_and_receive(port, payload) == payload


def http_works(port: int) -> bool:
    response = httpx.get(f"http://127.0.0.1:{port}/hello", timeout=3)
    return response.status_code == 200 and response.text.startswith("GET /hello HTTP/1.1")


@dataclass
class Mesh:
    """A control plane and the processes a test starts around it (stopped at the end)."""

    cp: ControlPlane
    stack: ExitStack
    admin: dict[str, int] = field(default_factory=dict)
    dps: dict[str, Any] = field(default_factory=dict)

    def echo(self) -> int:
        port = free_port()
        self.stack.enter_context(echo_server(port))
        return port

    def start_dp(self, name: str) -> int:
        admin = free_port()
        self.admin[name] = admin
        self.dps[name] = self.stack.enter_context(kuma_dp(self.cp, name, admin_port=admin))
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200,
            CONVERGE,
            f"Envoy of {name} to be ready",
        )
        return admin


@pytest.fixture
def mesh() -> Iterator[Mesh]:
    with ExitStack() as stack:
        cp = stack.enter_context(control_plane("run"))
        cp.wait_ready()
        yield Mesh(cp, stack)


def test_tcp_and_http_traffic_flow_through_envoy(mesh: Mesh) -> None:
    cp = mesh.cp
    tcp_backend_in, http_backend_in = free_port(), free_port()
    tcp_out, http_out = free_port(), free_port()
    put(cp, dataplane("backend-1", tcp_backend_in, mesh.echo(), "backend"))
    put(
        cp,
        dataplane("api-1", http_backend_in, mesh.echo(), "api", tags={"kuma.io/protocol": "http"}),
    )
    put(
        cp,
        dataplane(
            "web-1",
            free_port(),
            free_port(),
            "web",
            outbound=[
                {"port": tcp_out, "tags": {"kuma.io/service": "backend"}},
                {"port": http_out, "tags": {"kuma.io/service": "api"}},
            ],
        ),
    )
    web_admin = mesh.start_dp("web-1")
    mesh.start_dp("backend-1")
    mesh.start_dp("api-1")

    wait_until(lambda: echo_works(tcp_out), CONVERGE, "TCP bytes echoed through web -> backend")
    payload = bytes(range(256)) * 64
    assert send_and_receive(tcp_out, payload) == payload
    wait_until(lambda: http_works(http_out), CONVERGE, "HTTP request answered through web -> api")

    names = config_dump_names(web_admin)
    assert {
        f"outbound:127.0.0.1:{tcp_out}",
        f"outbound:127.0.0.1:{http_out}",
    } <= names["listeners"]
    assert any(n.startswith("inbound:127.0.0.1:") for n in names["listeners"])
    assert {"backend", "api"} <= names["clusters"]
    assert any(n.startswith("localhost:") for n in names["clusters"])
    assert cluster_hosts(web_admin, "backend") == [f"127.0.0.1:{tcp_backend_in}"]

    # the control plane's own metrics moved with all of that
    wait_until(
        lambda: metric(cp, "resources_count", resource_type="Dataplane") == 3,
        CONVERGE,
        "resources_count of dataplanes",
    )
    assert metric(cp, "xds_streams_active") == 3
    assert metric(cp, "xds_requests_received", type_url=LDS, confirmation="ACK") >= 3
    assert metric(cp, "xds_generation_count") >= 3
    assert metric(cp, "store_count", operation="create", resource_type="Dataplane") >= 3
    assert (
        metric(
            cp,
            "api_server_http_request_duration_seconds_count",
            code="201",
            handler="/meshes/{mesh}/dataplanes/{name}",
            method="PUT",
        )
        == 3
    )


LDS = "type.googleapis.com/envoy.config.listener.v3.Listener"


def metric(cp: ControlPlane, name: str, **labels: str) -> float:
    """One sample of kuma-cp's `/metrics` (0 when absent)."""
    text = httpx.get(f"{cp.diagnostics}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def kumactl_inspect(cp: ControlPlane, tmp_config: str) -> str:
    env = base_env()
    run = [sys.executable, "-m", "kuma.cli", "--config-file", tmp_config]
    subprocess.run(
        [
            *run,
            "config",
            "control-planes",
            "add",
            "--overwrite",
            "--name",
            "e2e",
            "--address",
            cp.api,
        ],
        env=env,
        check=True,
        capture_output=True,
        timeout=30,
    )
    result = subprocess.run(
        [*run, "inspect", "dataplanes"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def seconds(duration: str) -> float:
    """A protobuf JSON Duration ("17s", "1.5s") in seconds."""
    assert duration.endswith("s"), duration
    return float(duration[:-1])


def status_of(table: str, name: str) -> str:
    for line in table.splitlines():
        cells = line.split()
        if len(cells) > 1 and cells[1] == name:
            return "Online" if "Online" in cells else "Offline"
    return "missing"


def test_endpoints_follow_dataplanes_and_inspect_shows_status(mesh: Mesh, tmp_path: Any) -> None:
    cp = mesh.cp
    out = free_port()
    b1_in, b2_in = free_port(), free_port()
    put(cp, dataplane("backend-1", b1_in, mesh.echo(), "backend"))
    put(
        cp,
        dataplane(
            "web-1",
            free_port(),
            free_port(),
            "web",
            outbound=[{"port": out, "tags": {"kuma.io/service": "backend"}}],
        ),
    )
    web_admin = mesh.start_dp("web-1")
    mesh.start_dp("backend-1")
    wait_until(lambda: echo_works(out), CONVERGE, "traffic web -> backend-1")
    envoy_pid_before = httpx.get(f"http://127.0.0.1:{web_admin}/server_info", timeout=5).json()

    # a second backend instance joins: its endpoint reaches web's Envoy without a restart
    put(cp, dataplane("backend-2", b2_in, mesh.echo(), "backend"))
    mesh.start_dp("backend-2")
    expected = sorted([f"127.0.0.1:{b1_in}", f"127.0.0.1:{b2_in}"])
    wait_until(lambda: cluster_hosts(web_admin, "backend") == expected, CONVERGE, "2 endpoints")
    for _ in range(10):
        assert echo_works(out)
    config = str(tmp_path / "kumactl.yaml")
    table = wait_until(
        lambda: (
            (t := kumactl_inspect(cp, config))
            and status_of(t, "backend-2") == "Online"
            and status_of(t, "web-1") == "Online"
            and t
        ),
        CONVERGE,
        "inspect to show backend-2 and web-1 Online",
    )
    assert table.splitlines()[0].split()[:4] == ["MESH", "NAME", "TAGS", "STATUS"]

    # backend-2's kuma-dp stops: Offline
    assert mesh.dps["backend-2"].stop() in (0, 143)
    wait_until(
        lambda: status_of(kumactl_inspect(cp, config), "backend-2") == "Offline",
        CONVERGE,
        "backend-2 Offline after its kuma-dp stopped",
    )

    # deleting backend-2 removes its endpoint; web's Envoy was never restarted
    delete(cp, "backend-2")
    wait_until(
        lambda: cluster_hosts(web_admin, "backend") == [f"127.0.0.1:{b1_in}"],
        CONVERGE,
        "backend-2's endpoint removed",
    )
    envoy_pid_after = httpx.get(f"http://127.0.0.1:{web_admin}/server_info", timeout=5).json()
    # uptimes are protobuf Durations ("17s"): a restarted Envoy would report a smaller one
    assert seconds(envoy_pid_after["uptime_all_epochs"]) >= seconds(
        envoy_pid_before["uptime_all_epochs"]
    )
    assert echo_works(out)


@pytest.mark.parametrize("store", ["memory", "postgres"])
def test_traffic_survives_a_control_plane_restart(
    store: str, request: pytest.FixtureRequest
) -> None:
    """Envoys keep serving while kuma-cp is away and resume updates when it returns.

    On PostgreSQL everything survives the restart, tokens included. On the memory store the
    restarted control plane knows nothing (a new token signing key too, so tokens are off for
    that variant): reconnecting Envoys are not wiped, and the dataplanes are applied again.
    """
    if store == "postgres":
        env = postgres_env(request.getfixturevalue("postgres_db"))
        migrate = subprocess.run(
            [sys.executable, "-m", "kuma.cp", "migrate", "up"],
            env=base_env(**env),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert migrate.returncode == 0, migrate.stderr
    else:
        env = {"KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED": "false"}
    ports = Ports()
    with ExitStack() as stack:
        cp = stack.enter_context(control_plane("run", ports=ports, **env))
        cp.wait_ready()
        mesh = Mesh(cp, stack)
        out = free_port()
        b1_in, b2_in = free_port(), free_port()
        docs = [
            dataplane("backend-1", b1_in, mesh.echo(), "backend"),
            dataplane(
                "web-1",
                free_port(),
                free_port(),
                "web",
                outbound=[{"port": out, "tags": {"kuma.io/service": "backend"}}],
            ),
        ]
        for doc in docs:
            put(cp, doc)
        web_admin = mesh.start_dp("web-1")
        mesh.start_dp("backend-1")
        wait_until(lambda: echo_works(out), CONVERGE, "traffic before the restart")

        # the control plane goes away: Envoys keep their last config
        assert cp.stop() == 0
        for _ in range(5):
            assert echo_works(out)

        # it comes back on the same ports
        cp2 = stack.enter_context(control_plane("run", ports=ports, **env))
        cp2.wait_ready()
        mesh.cp = cp2
        listing = httpx.get(f"{cp2.api}/meshes/default/dataplanes", timeout=5).json()
        if store == "memory":
            assert listing["total"] == 0  # nothing registered any more...
            assert echo_works(out)  # ...and the reconnecting Envoys were not wiped
            for doc in docs:
                put(cp2, doc)
        else:
            assert listing["total"] == 2
        put(cp2, dataplane("backend-2", b2_in, mesh.echo(), "backend"))
        mesh.start_dp("backend-2")
        expected = sorted([f"127.0.0.1:{b1_in}", f"127.0.0.1:{b2_in}"])
        wait_until(
            lambda: cluster_hosts(web_admin, "backend") == expected,
            CONVERGE,
            "web's Envoy to reconnect and receive the new endpoint",
        )
        for _ in range(10):
            assert echo_works(out)
