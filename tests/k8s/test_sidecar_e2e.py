"""Issue 7 item 5: kuma-cp in Kubernetes mode serves xDS to injected sidecars as in Universal mode.

The fake API server plays the cluster; kuma-cp runs for real (Kubernetes store and environment);
the Pod controller turns two injected Pods into Dataplanes; each "sidecar" is a real `kuma-dp run`
with real Envoy, started with the environment Kuma's injector gives the kuma-sidecar container and
the pod's ServiceAccount token (issued by the fake API server, reviewed by kuma-cp through a
TokenReview). No kubelet or iptables run here, so each pod gets its own loopback address:

    test --> 127.0.0.4:<svc> (the echo Service's ClusterIP: client Envoy's outbound listener)
         --> 127.0.0.2:<echo> (echo pod IP: server Envoy's inbound listener)
         --> 127.0.0.1:<echo> (the workload, kuma-tcp-echo; the inbound's localhost cluster)

Every pod's Dataplane has an outbound for every service of the mesh, so the server's Envoy binds
the ClusterIP listener too (Envoy's listeners use SO_REUSEPORT: the kernel spreads connections
over both); the test keeps connecting until the client's Envoy has carried one.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from grpclib.const import Status
from grpclib.exceptions import GRPCError

from kuma.xds.core import CLUSTER
from tests.k8s.test_controllers_cp import kubernetes_env
from tests.support.fake_kube import FakeKube, fake_kube
from tests.support.procs import (
    ControlPlane,
    Process,
    base_env,
    control_plane,
    echo_server,
    free_port,
    spawn,
    wait_until,
)
from tests.xds.server.harness import AdsClient, node_request

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

NS = "kuma-sidecars"
SERVER_IP, CLIENT_IP, CLUSTER_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
CONVERGE = 20.0
INJECTED = {"kuma.io/mesh": "default", "kuma.io/sidecar-injected": "true"}


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with fake_kube(namespaces=("default", "kuma-system")) as k:
        yield k


def pod(name: str, app: str, ip: str, port: int) -> dict[str, Any]:
    """A running Pod as admitted by the injector (without transparent proxying: no iptables)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"app": app},
            "annotations": dict(INJECTED),
        },
        "spec": {
            "serviceAccountName": "default",
            "containers": [
                {"name": app, "image": "kuma-py", "ports": [{"containerPort": port}]},
                {"name": "kuma-sidecar", "image": "kuma-py"},
            ],
        },
        "status": {"phase": "Running", "podIP": ip},
    }


def sidecar(
    stack: ExitStack, cp: ControlPlane, name: str, token: str, token_file: Path
) -> tuple[Process, int]:
    """`kuma-dp run` as the injected kuma-sidecar container runs it; returns it and its admin
    port. `token_file` stands in for the mounted ServiceAccount token."""
    token_file.write_text(token)
    admin = free_port()
    env = base_env(
        KUMA_CONTROL_PLANE_API_SERVER_URL=cp.api,
        KUMA_DATAPLANE_MESH="default",
        KUMA_DATAPLANE_NAME=f"{name}.{NS}",
        KUMA_DATAPLANE_ADMIN_PORT=str(admin),
        KUMA_DATAPLANE_RUNTIME_TOKEN_PATH=str(token_file),
    )
    proc = stack.enter_context(spawn([sys.executable, "-m", "kuma.dp", "run"], env))
    return proc, admin


def envoy_ready(proc: Process, admin: int) -> bool:
    assert proc.alive(), f"kuma-dp exited with {proc.proc.returncode}:\n{proc.output()}"
    return httpx.get(f"http://127.0.0.1:{admin}/ready", timeout=1).status_code == 200


def listeners(admin: int) -> set[str]:
    dump = httpx.get(f"http://127.0.0.1:{admin}/config_dump", timeout=5).json()
    return {
        item["name"]
        for section in dump["configs"]
        for item in section.get("dynamic_listeners", [])
        if "active_state" in item
    }


def counter(admin: int, name: str) -> int:
    stats = httpx.get(f"http://127.0.0.1:{admin}/stats?format=json", timeout=5).json()
    return next((int(s["value"]) for s in stats["stats"] if s.get("name") == name), 0)


def echo_via(address: str, port: int, payload: bytes) -> bytes:
    with socket.create_connection((address, port), timeout=3) as conn:
        conn.sendall(payload)
        received = b""
        while len(received) < len(payload):
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


async def ads_refusal(port: int, node_id: str, token: str) -> GRPCError:
    async with AdsClient(port, metadata={"authorization": token}) as client:
        await client.send(node_request(CLUSTER, node_id=node_id))
        with pytest.raises(GRPCError) as info:
            await client.recv(within=10)
    return info.value


def test_injected_sidecars_get_config_and_carry_traffic(kube: FakeKube, tmp_path: Path) -> None:
    env = kubernetes_env(tmp_path, kube.write_kubeconfig(tmp_path / "kubeconfig"))
    echo_port, svc_port, client_port = free_port(), free_port(), free_port()
    server_name, client_name = "echo-server-6f8d7-x2kqp", "echo-client-5c9b4-m7wzr"
    with ExitStack() as stack, httpx.Client(timeout=5) as http:
        cp = stack.enter_context(control_plane("run", **env))
        cp.wait_ready()
        stack.enter_context(echo_server(echo_port))
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "echo", "namespace": NS},
                "spec": {
                    "clusterIP": CLUSTER_IP,
                    "selector": {"app": "echo"},
                    "ports": [{"name": "tcp", "port": svc_port, "targetPort": echo_port}],
                },
            }
        )
        kube.create(pod(server_name, "echo", SERVER_IP, echo_port))
        service = f"echo_{NS}_svc_{svc_port}"

        def dataplane(name: str) -> Any:
            items = http.get(f"{cp.api}/meshes/default/dataplanes").json()["items"]
            return next((i for i in items if i["name"] == f"{name}.{NS}"), None)

        wait_until(lambda: dataplane(server_name), CONVERGE, "the echo pod's Dataplane")
        token = kube.issue_service_account_token(NS, "default")
        server_dp, server_admin = sidecar(stack, cp, server_name, token, tmp_path / "server")
        # a sidecar may start before the Pod controller has written its Dataplane: the token
        # passes, the missing Dataplane is not a refusal, and kuma-dp retries its bootstrap
        client_dp, client_admin = sidecar(stack, cp, client_name, token, tmp_path / "client")
        wait_until(
            lambda: "Dataplane for proxy" in cp.output(), CONVERGE, "a bootstrap before the pod"
        )
        kube.create(pod(client_name, "client", CLIENT_IP, client_port))
        wait_until(
            lambda: (dataplane(client_name) or {}).get("networking", {}).get("outbound"),
            CONVERGE,
            "the client pod's Dataplane with its outbound",
        )
        for proc, admin in ((server_dp, server_admin), (client_dp, client_admin)):
            wait_until(lambda p=proc, a=admin: envoy_ready(p, a), CONVERGE, "Envoy ready")
        inbound = f"inbound:{SERVER_IP}:{echo_port}"
        outbound = f"outbound:{CLUSTER_IP}:{svc_port}"
        wait_until(lambda: inbound in listeners(server_admin), CONVERGE, inbound)
        wait_until(lambda: outbound in listeners(client_admin), CONVERGE, outbound)

        # bytes go client Envoy (outbound) -> server Envoy (inbound) -> echo
        outbound_cx = f"listener.{CLUSTER_IP}_{svc_port}.downstream_cx_total"
        inbound_cx = f"listener.{SERVER_IP}_{echo_port}.downstream_cx_total"

        def through_both_envoys() -> bool:
            payload = b"hello from a meshed pod\n"
            assert echo_via(CLUSTER_IP, svc_port, payload) == payload
            return counter(client_admin, outbound_cx) > 0

        wait_until(through_both_envoys, CONVERGE, "an echo carried by the client's Envoy")
        assert counter(client_admin, f"cluster.{service}.upstream_cx_total") > 0
        assert counter(server_admin, inbound_cx) > 0

        # kuma-cp records both sidecars' ADS subscriptions (DataplaneInsight CRs), as on Universal
        def online(name: str) -> bool:
            url = f"{cp.api}/meshes/default/dataplanes+insights/{name}.{NS}"
            insight = http.get(url).json().get("dataplaneInsight") or {}
            return any(s.get("connectTime") for s in insight.get("subscriptions") or [])

        wait_until(lambda: online(server_name) and online(client_name), CONVERGE, "insights")
        assert kube.get("dataplaneinsights", client_name, NS) is not None
        assert "failed to flush Dataplane status" not in cp.output()

        # Kubernetes mode has no dataplane tokens: no signing key, no POST /tokens (Kuma 0.7.3)
        assert [s for s in kube.objects("secrets") if "signing-key" in s["metadata"]["name"]] == []
        tokens = http.post(f"http://127.0.0.1:{cp.ports.admin}/tokens", json={"name": "x"})
        assert tokens.status_code == 404

        # a token of another namespace: refused at bootstrap (kuma-dp gives up) and on ADS
        foreign = kube.issue_service_account_token("default", "default")
        intruder, _ = sidecar(stack, cp, client_name, foreign, tmp_path / "foreign")
        code = intruder.proc.wait(timeout=CONVERGE)
        assert code != 0
        refusal = (
            f'authentication failed: token belongs to a namespace ("default") different from '
            f'proxyId ("{NS}")'
        )
        assert refusal in intruder.output()
        assert "bootstrap refused: invalid dataplane token" in cp.output()
        error = anyio.run(ads_refusal, cp.ports.xds, f"default.{client_name}.{NS}", foreign)
        assert error.status is Status.UNAUTHENTICATED
        assert refusal in str(error.message)
        # the pods' own sidecars are unaffected
        assert client_dp.alive()
        assert server_dp.alive()
        assert echo_via(CLUSTER_IP, svc_port, b"still meshed\n") == b"still meshed\n"
