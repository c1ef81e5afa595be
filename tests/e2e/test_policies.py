"""Policies in action: kuma-cp + kuma-dp + real Envoys + kuma-tcp-echo on loopback, policies
applied with kumactl, effects observed as the applications (and Envoy's admin API) see them.

    app --> web's Envoy outbound 127.0.0.1:<out> --> backend's Envoy inbound --> echo app

Service names carry a random suffix: kuma-dp's access log socket is named after the
dataplane, and other test runs may share this host.
"""

from __future__ import annotations

import json
import socketserver
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support.procs import (
    ControlPlane,
    base_env,
    control_plane,
    echo_server,
    free_port,
    kuma_dp,
    send_and_receive,
    wait_until,
)

pytestmark = pytest.mark.e2e

CONVERGE = 30.0  # seconds allowed for config to reach Envoy
DRAIN_TIME = "2s"
HTTP = {"kuma.io/protocol": "http"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def dataplane_doc(
    name: str,
    inbound: int,
    app: int,
    tags: dict[str, str],
    outbound: list[tuple[int, str]] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {
            "address": "127.0.0.1",
            "inbound": [{"port": inbound, "servicePort": app, "tags": tags}],
            "outbound": [{"port": p, "tags": {"kuma.io/service": s}} for p, s in outbound],
        },
    }


@dataclass
class Mesh:
    """A control plane, kumactl pointed at it, and the processes a test starts around it."""

    cp: ControlPlane
    stack: ExitStack
    home: Path
    admin: dict[str, int] = field(default_factory=dict)
    dps: dict[str, Any] = field(default_factory=dict)

    def kumactl(self, *args: str, input: str | None = None) -> str:
        config = self.home / "kumactl.config"
        result = subprocess.run(
            [sys.executable, "-m", "kuma.cli", "--config-file", str(config), *args],
            input=input,
            capture_output=True,
            text=True,
            env=base_env(),
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, f"kumactl {' '.join(args)}: {result.stdout}{result.stderr}"
        return result.stdout

    def apply(self, *docs: dict[str, Any]) -> None:
        self.kumactl("apply", "-f", "-", input=yaml.safe_dump_all(docs))

    def delete(self, kind: str, name: str) -> None:
        self.kumactl("delete", kind, name)

    def echo(self) -> int:
        port = free_port()
        self.stack.enter_context(echo_server(port))
        return port

    def start_dp(self, name: str) -> int:
        admin = free_port()
        self.admin[name] = admin
        # Listener updates reach connections opened before them only when those drain: a
        # short drain time lets long-lived HTTP/2 connections between Envoys pick up changes.
        self.dps[name] = self.stack.enter_context(
            kuma_dp(self.cp, name, admin_port=admin, KUMA_DATAPLANE_DRAIN_TIME=DRAIN_TIME)
        )
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200,
            CONVERGE,
            f"Envoy of {name} to be ready",
        )
        return admin

    def service(self, name: str, tags: dict[str, str], outbound: list[tuple[int, str]] = ()) -> str:  # type: ignore[assignment]
        """A dataplane `name` in front of a fresh echo app, started."""
        self.apply(dataplane_doc(name, free_port(), self.echo(), tags, outbound))
        self.start_dp(name)
        return name


@pytest.fixture
def mesh(tmp_path: Path) -> Iterator[Mesh]:
    with ExitStack() as stack:
        cp = stack.enter_context(control_plane("run"))
        cp.wait_ready()
        m = Mesh(cp, stack, tmp_path)
        m.kumactl("config", "control-planes", "add", "--name", "test", "--address", cp.api)
        yield m


def policy(
    kind: str, name: str, source: dict[str, str], destination: dict[str, str], **spec: Any
) -> dict[str, Any]:
    return {
        "type": kind,
        "mesh": "default",
        "name": name,
        "sources": [{"match": source}],
        "destinations": [{"match": destination}],
        **spec,
    }


def admin_json(admin: int, path: str) -> Any:
    response = httpx.get(f"http://127.0.0.1:{admin}{path}", timeout=5)
    response.raise_for_status()
    return response.json()


def host_stats(admin: int, cluster: str) -> dict[int, dict[str, Any]]:
    """Per host (by port) of `cluster`: its stats and health flags, from Envoy's /clusters."""
    data = admin_json(admin, "/clusters?format=json")
    hosts: dict[int, dict[str, Any]] = {}
    for status in data.get("cluster_statuses", []):
        if status["name"] != cluster:
            continue
        for h in status.get("host_statuses", []):
            port = h["address"]["socket_address"]["port_value"]
            stats = {s["name"]: int(s.get("value", 0)) for s in h.get("stats", [])}
            hosts[port] = {"stats": stats, "health": h.get("health_status", {})}
    return hosts


def outbound_filters(admin: int, port: int) -> list[dict[str, Any]]:
    dump = admin_json(admin, "/config_dump")
    for section in dump["configs"]:
        for item in section.get("dynamic_listeners", []):
            active = item.get("active_state", {}).get("listener", {})
            if item["name"] == f"outbound:127.0.0.1:{port}":
                filters: list[dict[str, Any]] = active["filter_chains"][0]["filters"]
                return filters
    return []


def get(port: int, path: str = "/") -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=5)


# -- without mTLS ---------------------------------------------------------------------------


def test_traffic_route_splits_requests_90_10(mesh: Mesh) -> None:
    backend, web_svc = unique("backend"), unique("web")
    out = free_port()
    inbound = {"v1": free_port(), "v2": free_port()}
    for version, port in inbound.items():
        tags = {"kuma.io/service": backend, "version": version, **HTTP}
        mesh.apply(dataplane_doc(f"{backend}-{version}", port, mesh.echo(), tags))
        mesh.start_dp(f"{backend}-{version}")
    mesh.service(web_svc, {"kuma.io/service": web_svc, **HTTP}, [(out, backend)])
    web_admin = mesh.admin[web_svc]
    wait_until(lambda: get(out).status_code == 200, CONVERGE, "web to reach backend")

    mesh.apply(
        policy(
            "TrafficRoute",
            "split",
            {"kuma.io/service": web_svc},
            {"kuma.io/service": backend},
            conf=[
                {"weight": 90, "destination": {"kuma.io/service": backend, "version": "v1"}},
                {"weight": 10, "destination": {"kuma.io/service": backend, "version": "v2"}},
            ],
        )
    )

    def split_applied() -> bool:
        filters = outbound_filters(web_admin, out)
        return "weighted_clusters" in json.dumps(filters)

    wait_until(split_applied, CONVERGE, "the 90/10 route in web's Envoy")
    httpx.post(f"http://127.0.0.1:{web_admin}/reset_counters", timeout=5).raise_for_status()
    statuses = [get(out, f"/req-{i}").status_code for i in range(200)]
    assert statuses == [200] * 200
    hosts = host_stats(web_admin, backend)
    v1 = hosts[inbound["v1"]]["stats"].get("rq_total", 0)
    v2 = hosts[inbound["v2"]]["stats"].get("rq_total", 0)
    assert v1 + v2 == 200
    # 90% of 200 is 180 (binomial standard deviation ~4.2): 160..196 fails once in ~10^5 runs
    assert 160 <= v1 <= 196, (v1, v2)


def test_fault_injection_abort_returns_the_configured_status(mesh: Mesh) -> None:
    backend, web_svc = unique("backend"), unique("web")
    out = free_port()
    mesh.service(backend, {"kuma.io/service": backend, **HTTP})
    mesh.service(web_svc, {"kuma.io/service": web_svc, **HTTP}, [(out, backend)])
    wait_until(lambda: get(out).status_code == 200, CONVERGE, "web to reach backend")

    mesh.apply(
        policy(
            "FaultInjection",
            "teapot",
            {"kuma.io/service": web_svc, **HTTP},
            {"kuma.io/service": backend, **HTTP},
            conf={"abort": {"percentage": 100, "httpStatus": 418}},
        )
    )
    # every request, once connections from before the change have drained
    wait_until(
        lambda: [get(out).status_code for _ in range(5)] == [418] * 5,
        CONVERGE,
        "the injected 418 on every request",
    )
    mesh.delete("fault-injection", "teapot")
    wait_until(
        lambda: [get(out).status_code for _ in range(5)] == [200] * 5,
        CONVERGE,
        "no fault once deleted",
    )


class Collector(socketserver.ThreadingTCPServer):
    """A TCP logging backend on loopback collecting every line it receives."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for raw in self.rfile:
                    with collector.lock:
                        collector.lines.append(raw.decode().rstrip("\n"))

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_traffic_log_file_and_tcp_backends(
    mesh: Mesh, collector: Collector, tmp_path: Path
) -> None:
    log_file = tmp_path / "access.log"
    mesh.apply(
        {
            "type": "Mesh",
            "name": "default",
            "logging": {
                "backends": [
                    {"name": "file", "type": "file", "conf": {"path": str(log_file)}},
                    {
                        "name": "logstash",
                        "type": "tcp",
                        "conf": {"address": f"127.0.0.1:{collector.port}"},
                    },
                ]
            },
        }
    )
    api, db, web_svc = unique("api"), unique("db"), unique("web")
    api_out, db_out = free_port(), free_port()
    mesh.service(api, {"kuma.io/service": api, **HTTP})
    mesh.service(db, {"kuma.io/service": db})
    mesh.service(web_svc, {"kuma.io/service": web_svc}, [(api_out, api), (db_out, db)])
    wait_until(lambda: get(api_out).status_code == 200, CONVERGE, "web to reach api")
    source = {"kuma.io/service": web_svc}
    mesh.apply(
        policy("TrafficLog", "to-api", source, {"kuma.io/service": api}, conf={"backend": "file"}),
        policy(
            "TrafficLog", "to-db", source, {"kuma.io/service": db}, conf={"backend": "logstash"}
        ),
    )

    def logged() -> bool:
        get(api_out, "/logged")
        send_and_receive(db_out, b"ping\n")
        text = log_file.read_text() if log_file.exists() else ""
        return "GET /logged HTTP/1.1" in text and any(db in line for line in collector.lines)

    wait_until(logged, CONVERGE, "traffic logs in the file and at the TCP backend")
    http_line = next(line for line in log_file.read_text().splitlines() if "/logged" in line)
    assert '] default "GET /logged HTTP/1.1" 200 ' in http_line
    assert f'"{web_svc}" "{api}" "127.0.0.1"' in http_line
    with collector.lock:
        tcp_line = next(line for line in collector.lines if db in line)
    assert f" default 127.0.0.1({web_svc})->127.0.0.1:" in tcp_line
    assert f"({db}) took " in tcp_line
    assert tcp_line.endswith(" bytes")
    assert "sent 5 bytes, received: 5 bytes" in "\n".join(collector.lines)


def test_health_check_stops_traffic_to_an_endpoint_that_died(mesh: Mesh) -> None:
    """An active TCP health check probes the endpoint (the backend's Envoy inbound): when that
    dataplane goes away (its Dataplane resource stays, so EDS still lists it), web's Envoy marks
    it unhealthy and sends every connection to the live one.

    Envoy checks a cluster that has seen no traffic only every `no_traffic_interval` (60 s by
    default, which Kuma leaves alone), so the test sends traffic before and while checking.
    """
    backend, web_svc = unique("backend"), unique("web")
    out = free_port()
    inbound = {}
    for i in (1, 2):
        inbound[i] = free_port()
        tags = {"kuma.io/service": backend}
        mesh.apply(dataplane_doc(f"{backend}-{i}", inbound[i], mesh.echo(), tags))
        mesh.start_dp(f"{backend}-{i}")
    mesh.service(web_svc, {"kuma.io/service": web_svc}, [(out, backend)])
    web_admin = mesh.admin[web_svc]
    wait_until(lambda: len(host_stats(web_admin, backend)) == 2, CONVERGE, "two backend hosts")
    payload = b"still alive?\n"

    def attempt() -> bool:
        try:
            return send_and_receive(out, payload) == payload
        except OSError:
            return False

    # traffic first: Envoy picks the check interval when it schedules the next check
    wait_until(attempt, CONVERGE, "web to reach backend")
    mesh.apply(
        policy(
            "HealthCheck",
            "fast",
            {"kuma.io/service": "*"},
            {"kuma.io/service": backend},
            conf={
                "interval": "1s",
                "timeout": "1s",
                "unhealthyThreshold": 1,
                "healthyThreshold": 1,
            },
        )
    )

    def health(i: int) -> dict[str, Any]:
        return host_stats(web_admin, backend).get(inbound[i], {}).get("health", {})

    def checked() -> bool:
        attempt()
        stats = admin_json(web_admin, "/stats?format=json&filter=health_check.success")["stats"]
        return any(s["value"] >= 4 for s in stats if s["name"].endswith("health_check.success"))

    wait_until(checked, CONVERGE, "the health check to run on both hosts")
    mesh.dps[f"{backend}-2"].stop()

    def ejected() -> bool:
        attempt()
        return bool(health(2).get("failed_active_health_check"))

    wait_until(ejected, CONVERGE, "the dead endpoint to fail its health check")
    assert [attempt() for _ in range(20)] == [True] * 20
    assert not health(1).get("failed_active_health_check")


# -- with mTLS -------------------------------------------------------------------------------

MTLS_MESH = {
    "type": "Mesh",
    "name": "default",
    "mtls": {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]},
}


def connects(port: int) -> bool:
    try:
        return send_and_receive(port, b"hello mtls\n", timeout=2) == b"hello mtls\n"
    except OSError:
        return False


def test_mtls_traffic_permission_allows_and_cuts(mesh: Mesh) -> None:
    mesh.apply(MTLS_MESH)
    backend, web_svc = unique("backend"), unique("web")
    out = free_port()
    mesh.service(backend, {"kuma.io/service": backend})
    mesh.service(web_svc, {"kuma.io/service": web_svc}, [(out, backend)])

    def certificates_loaded() -> bool:
        certs = admin_json(mesh.admin[web_svc], "/certs").get("certificates", [])
        return any(c.get("cert_chain") for c in certs)

    wait_until(certificates_loaded, CONVERGE, "web's Envoy to load its certificates over SDS")
    # no TrafficPermission: RBAC denies everything
    for _ in range(3):
        assert not connects(out)

    mesh.apply(
        policy(
            "TrafficPermission",
            "web-to-backend",
            {"kuma.io/service": web_svc},
            {"kuma.io/service": backend},
        )
    )
    wait_until(lambda: connects(out), CONVERGE, "web allowed to reach backend")

    mesh.delete("traffic-permission", "web-to-backend")
    wait_until(lambda: not connects(out), CONVERGE, "the next connection to be cut")


def test_mtls_certificates_carry_spiffe_ids(mesh: Mesh) -> None:
    mesh.apply(MTLS_MESH)
    web_svc = unique("web")
    mesh.service(web_svc, {"kuma.io/service": web_svc})
    admin = mesh.admin[web_svc]

    def certs() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = admin_json(admin, "/certs").get("certificates", [])
        return [c for c in found if c.get("cert_chain")]

    loaded = wait_until(certs, CONVERGE, "certificates from SDS")
    uris = {
        san["uri"]
        for c in loaded
        for cert in c["cert_chain"]
        for san in cert.get("subject_alt_names", [])
        if "uri" in san
    }
    assert f"spiffe://default/{web_svc}" in uris
    ca_uris = {
        san["uri"]
        for c in loaded
        for cert in c.get("ca_cert", [])
        for san in cert.get("subject_alt_names", [])
        if "uri" in san
    }
    assert "spiffe://default" in ca_uris


def test_every_policy_example_in_the_docs_is_accepted(mesh: Mesh) -> None:
    """docs/policies.md: each YAML example applies cleanly with kumactl."""
    docs = Path(__file__).parents[2] / "docs" / "policies.md"
    blocks = []
    lines = docs.read_text().splitlines()
    inside = False
    current: list[str] = []
    for line in lines:
        if line.strip() == "```yaml":
            inside, current = True, []
        elif line.strip() == "```" and inside:
            inside = False
            blocks.append("\n".join(current) + "\n")
        elif inside:
            current.append(line)
    assert len(blocks) >= 10
    for block in blocks:
        mesh.kumactl("apply", "-f", "-", input=block)
    kinds = {doc["type"] for block in blocks for doc in yaml.safe_load_all(block) if doc}
    assert kinds >= {
        "Mesh",
        "TrafficPermission",
        "TrafficRoute",
        "HealthCheck",
        "CircuitBreaker",
        "FaultInjection",
        "TrafficLog",
        "TrafficTrace",
        "ProxyTemplate",
        "Retry",
        "Timeout",
    }
