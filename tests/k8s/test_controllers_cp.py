"""kuma-cp with `environment: kubernetes` runs the Pod controller against the cluster's API server
(here the in-process fake one, reached through a kubeconfig like a real cluster), and with the
Kubernetes store its REST API shows the Dataplanes the controller made."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.k8s.test_controllers import seed
from tests.k8s.webhook_support import admission_env
from tests.support.fake_kube import FakeKube, fake_kube
from tests.support.procs import control_plane, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with fake_kube(namespaces=("default", "kuma-system")) as k:
        yield k


def kubernetes_env(tmp_path: Path, kubeconfig: Path) -> dict[str, str]:
    admission, _ = admission_env(tmp_path)  # Kubernetes mode serves the webhooks over HTTPS
    return {
        **admission,
        "KUMA_STORE_TYPE": "kubernetes",
        "KUBECONFIG": str(kubeconfig),
        "HOME": str(tmp_path),  # no ~/.kube/config to fall back on
    }


def test_meshed_pod_dataplanes_are_listed_by_the_rest_api(kube: FakeKube, tmp_path: Path) -> None:
    env = kubernetes_env(tmp_path, kube.write_kubeconfig(tmp_path / "kubeconfig"))
    with control_plane("run", **env) as cp, httpx.Client(timeout=5) as http:
        cp.wait_ready()
        server, client = seed(kube)
        names = {f"{p['metadata']['name']}.kuma-test": p for p in (server, client)}

        def listed() -> dict[str, Any] | None:
            items = http.get(f"{cp.api}/meshes/default/dataplanes").json()["items"]
            by_name = {i["name"]: i for i in items}
            if set(by_name) != set(names):
                return None
            # converged: the client has its outbound to the echo server
            client_dp = by_name[f"{client['metadata']['name']}.kuma-test"]
            return by_name if client_dp["networking"].get("outbound") else None

        dps = wait_until(listed, 15, "both Dataplanes in GET /meshes/default/dataplanes")
        server_dp = dps[f"{server['metadata']['name']}.kuma-test"]
        client_dp = dps[f"{client['metadata']['name']}.kuma-test"]
        assert server_dp["type"] == "Dataplane"
        assert server_dp["mesh"] == "default"
        [inbound] = server_dp["networking"]["inbound"]
        assert inbound["tags"]["kuma.io/service"] == "echo-server_kuma-test_svc_80"
        assert inbound["tags"]["kuma.io/protocol"] == "http"
        [inbound] = client_dp["networking"]["inbound"]
        assert inbound["tags"]["kuma.io/service"] == "echo-client_kuma-test_svc"
        assert client_dp["networking"]["outbound"] == [
            {
                "address": "10.96.0.80",
                "port": 80,
                "tags": {"kuma.io/service": "echo-server_kuma-test_svc_80"},
            }
        ]
        for pod in (server, client):  # the CRs carry the controller reference to their pod
            cr = kube.get("dataplanes", pod["metadata"]["name"], "kuma-test")
            assert cr is not None
            assert cr["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]

        kube.delete("pods", client["metadata"]["name"], "kuma-test")
        wait_until(
            lambda: (
                [i["name"] for i in http.get(f"{cp.api}/meshes/default/dataplanes").json()["items"]]
                == [f"{server['metadata']['name']}.kuma-test"]
            ),
            15,
            "the deleted pod's Dataplane gone from the REST API",
        )
        assert cp.stop() == 0
        assert "pod controller started" in cp.output()


def test_kuma_cp_without_a_kubernetes_api_server_exits_1(tmp_path: Path) -> None:
    env = kubernetes_env(tmp_path, tmp_path / "missing")
    env["KUMA_STORE_TYPE"] = "memory"  # the controllers' own check, not the store's
    with control_plane("run", **env) as cp:
        rc = cp.proc.wait(timeout=30)
        out = cp.output()
    assert rc == 1, out
    assert "kubernetes needs a Kubernetes API server" in out
