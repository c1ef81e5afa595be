"""Traffic through real Envoys running generated config (static bootstrap, no ADS).

Two dataplanes on loopback, each with its own Envoy: `web` has outbounds to `backend-tcp` and
`backend-http`; `backend` has inbounds for both in front of a TCP echo server and an HTTP
server. Bytes go web outbound -> backend inbound -> application and back, over the EDS
clusters (given to Envoy as STATIC clusters with their generated load assignments).
"""

from __future__ import annotations

import json
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from google.protobuf import json_format

from kuma.model.rest import resource_from_dict
from kuma.xds.core import CLUSTER, ENDPOINT, LISTENER, ResourceSet
from kuma.xds.generators import SharedResources, generate
from kuma.xds.topology import build_proxy
from tests.support.procs import free_port
from tests.xds.generators.harness import mesh_context
from tests.xds.generators.test_envoy_validate import envoy_binary

pytestmark = pytest.mark.e2e


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _Headers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def apps() -> Iterator[tuple[int, int]]:
    echo = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    echo.daemon_threads = True
    web = ThreadingHTTPServer(("127.0.0.1", 0), _Headers)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (echo, web)]
    for t in threads:
        t.start()
    try:
        yield echo.server_address[1], web.server_address[1]
    finally:
        for s in (echo, web):
            s.shutdown()
            s.server_close()


def static_bootstrap(resources: ResourceSet, node: str) -> str:
    config = bootstrap_pb2.Bootstrap()
    config.node.id = node
    config.node.cluster = node
    loads = {r.name: r.message for r in resources.of_type(ENDPOINT)}
    for r in resources.of_type(LISTENER):
        config.static_resources.listeners.append(r.message)
    for r in resources.of_type(CLUSTER):
        cluster = cluster_pb2.Cluster.FromString(r.payload)
        if cluster.type == cluster_pb2.Cluster.EDS:
            cluster.ClearField("eds_cluster_config")
            cluster.type = cluster_pb2.Cluster.STATIC
            cluster.load_assignment.CopyFrom(loads[cluster.name])
        config.static_resources.clusters.append(cluster)
    return json_format.MessageToJson(config)


def wait_listening(port: int, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, "envoy exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def test_tcp_and_http_through_two_envoys(apps: tuple[int, int], tmp_path: Path) -> None:
    echo_port, http_port = apps
    in_tcp, in_http, out_tcp, out_http, web_in = (free_port() for _ in range(5))
    docs = [
        {
            "type": "Dataplane",
            "mesh": "default",
            "name": "backend-1",
            "networking": {
                "address": "127.0.0.1",
                "inbound": [
                    {
                        "port": in_tcp,
                        "servicePort": echo_port,
                        "tags": {"kuma.io/service": "backend-tcp"},
                    },
                    {
                        "port": in_http,
                        "servicePort": http_port,
                        "tags": {"kuma.io/service": "backend-http", "kuma.io/protocol": "http"},
                    },
                ],
            },
        },
        {
            "type": "Dataplane",
            "mesh": "default",
            "name": "web-1",
            "networking": {
                "address": "127.0.0.1",
                "inbound": [{"port": web_in, "servicePort": 1, "tags": {"kuma.io/service": "web"}}],
                "outbound": [
                    {"port": out_tcp, "tags": {"kuma.io/service": "backend-tcp"}},
                    {"port": out_http, "tags": {"kuma.io/service": "backend-http"}},
                ],
            },
        },
    ]
    ctx = mesh_context([resource_from_dict(d) for d in docs])
    shared = SharedResources("default")
    processes = []
    logs = []
    try:
        for name in ("backend-1", "web-1"):
            config = tmp_path / f"{name}.json"
            resources = generate(ctx, build_proxy(ctx, ctx.dataplanes[name]), shared)
            config.write_text(static_bootstrap(resources, f"default.{name}"))
            logs.append((tmp_path / f"{name}.log").open("wb"))
            processes.append(
                subprocess.Popen(
                    [
                        envoy_binary(),
                        "-c",
                        str(config),
                        "--disable-hot-restart",
                        "--log-level",
                        "warn",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=logs[-1],
                )
            )
        deadline = time.monotonic() + 20
        for port, process in (
            (in_tcp, processes[0]),
            (out_tcp, processes[1]),
            (out_http, processes[1]),
        ):
            wait_listening(port, process, deadline)

        with socket.create_connection(("127.0.0.1", out_tcp), timeout=5) as conn:
            conn.sendall(b"hello mesh")
            received = b""
            while len(received) < len(b"hello mesh"):
                chunk = conn.recv(1024)
                assert chunk, "connection closed early"
                received += chunk
        assert received == b"hello mesh"

        response = httpx.get(f"http://127.0.0.1:{out_http}/anything", timeout=5)
        assert response.status_code == 200
        headers = response.json()
        # web's outbound added x-kuma-tags; backend's inbound removed it before the app
        assert "x-kuma-tags" not in headers
        assert "x-envoy-expected-rq-timeout-ms" in headers  # it did go through Envoy's router
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        for log in logs:
            log.close()
