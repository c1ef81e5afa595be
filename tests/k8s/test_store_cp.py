"""kuma-cp with `store.type: kubernetes` on the fake API server (a real kuma-cp process)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kuma.api.app import K8S_READ_ONLY_MESSAGE
from tests.support.fake_kube import fake_kube
from tests.support.procs import control_plane, wait_until

pytestmark = pytest.mark.e2e


def test_kuma_cp_serves_kubernetes_resources_read_only(tmp_path: Path) -> None:
    with fake_kube(namespaces=("default", "kuma-system")) as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        certs = tmp_path / "certs"
        certs.mkdir()
        with control_plane(
            "run",
            KUBECONFIG=str(kubeconfig),
            KUMA_ENVIRONMENT="kubernetes",
            KUMA_STORE_TYPE="kubernetes",
            KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR=str(certs),
        ) as cp:
            cp.wait_ready()
            # the default mesh was created as a Mesh custom resource
            assert kube.get("meshes", "default") is not None
            # an object applied with kubectl shows up in the REST API
            kube.create(
                {
                    "apiVersion": "kuma.io/v1alpha1",
                    "kind": "Mesh",
                    "metadata": {"name": "from-kubectl"},
                    "spec": {
                        "mtls": {
                            "enabledBackend": "ca-1",
                            "backends": [{"name": "ca-1", "type": "builtin"}],
                        }
                    },
                }
            )
            kube.create(
                {
                    "apiVersion": "kuma.io/v1alpha1",
                    "kind": "TrafficRoute",
                    "mesh": "default",
                    "metadata": {"name": "route", "namespace": "default"},
                    "spec": {
                        "sources": [{"match": {"kuma.io/service": "*"}}],
                        "destinations": [{"match": {"kuma.io/service": "*"}}],
                        "conf": {
                            "split": [{"weight": 100, "destination": {"kuma.io/service": "*"}}]
                        },
                    },
                }
            )
            with httpx.Client(base_url=cp.api, timeout=5) as api:

                def meshes() -> list[str] | None:
                    names = [m["name"] for m in api.get("/meshes").json()["items"]]
                    return names if "from-kubectl" in names else None

                assert wait_until(meshes, 10, "Mesh from kubectl in GET /meshes") == [
                    "default",
                    "from-kubectl",
                ]
                got = api.get("/meshes/from-kubectl").json()
                assert got["mtls"]["enabledBackend"] == "ca-1"
                route = api.get("/meshes/default/traffic-routes/route.default")
                assert route.status_code == 200
                assert route.json()["name"] == "route.default"

                # read-only: Kuma's message for PUT and DELETE
                put = api.put("/meshes/other", json={"type": "Mesh", "name": "other"})
                assert put.status_code == 405
                assert put.text == K8S_READ_ONLY_MESSAGE
                delete = api.delete("/meshes/from-kubectl")
                assert delete.status_code == 405
                assert delete.text == K8S_READ_ONLY_MESSAGE
            admin = f"http://127.0.0.1:{cp.ports.admin}"
            secret = httpx.put(
                f"{admin}/meshes/default/secrets/s",
                json={"type": "Secret", "mesh": "default", "name": "s", "data": "YQ=="},
                timeout=5,
            )
            assert secret.status_code == 405
            assert secret.text == K8S_READ_ONLY_MESSAGE
            assert kube.get("meshes", "from-kubectl") is not None
            assert kube.get("meshes", "other") is None
            # Kuma's Secrets are core v1 Secrets in the system namespace
            secrets = kube.objects("secrets", "kuma-system")
            assert secrets
            assert {s["type"] for s in secrets} == {"system.kuma.io/secret"}
            assert cp.stop() == 0
