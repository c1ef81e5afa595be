"""kuma-cp with `store.type: kubernetes` on the fake API server (a real kuma-cp process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from kuma.api.app import K8S_READ_ONLY_MESSAGE
from tests.k8s.webhook_support import admission_env
from tests.support.fake_kube import fake_kube
from tests.support.procs import control_plane, wait_until

pytestmark = pytest.mark.e2e


def mesh_count(diagnostics: str) -> float | None:
    text = httpx.get(f"{diagnostics}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "resources_count" and sample.labels == {"resource_type": "Mesh"}:
                return sample.value
    return None


def test_kuma_cp_serves_kubernetes_resources_read_only(tmp_path: Path) -> None:
    with fake_kube(namespaces=("default", "kuma-system")) as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        admission, _ = admission_env(tmp_path)
        with control_plane(
            "run",
            KUBECONFIG=str(kubeconfig),
            KUMA_STORE_TYPE="kubernetes",
            **admission,
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
                # kuma-cp follows the API server's watches: its change-driven metrics see it
                wait_until(
                    lambda: mesh_count(cp.diagnostics) == 2,
                    10,
                    "resources_count{Mesh} == 2 from the watch events",
                )
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
            kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "system.kuma.io/secret",
                    "metadata": {
                        "name": "db-password",
                        "namespace": "kuma-system",
                        "labels": {"kuma.io/mesh": "default"},
                    },
                    "data": {"value": "czNjcjN0"},
                }
            )
            got_secret = httpx.get(f"{admin}/meshes/default/secrets/db-password", timeout=5)
            assert got_secret.status_code == 200
            assert got_secret.json()["data"] == "czNjcjN0"
            assert (
                httpx.get(f"{admin}/meshes/from-kubectl/secrets/db-password", timeout=5).status_code
                == 404
            )
            assert cp.stop() == 0


@pytest.mark.anyio
async def test_mads_follows_kubectl_changes_with_kubernetes_labels(tmp_path: Path) -> None:
    """Dataplanes applied with kubectl reach Prometheus' monitoring assignments through the
    store's watches, labelled with their Kubernetes name and namespace."""
    from tests.mads.harness import MadsClient, ack, assignments_of

    def dataplane(name: str, address: str) -> dict[str, Any]:
        return {
            "apiVersion": "kuma.io/v1alpha1",
            "kind": "Dataplane",
            "mesh": "default",
            "metadata": {"name": name, "namespace": "kuma-demo"},
            "spec": {
                "networking": {
                    "address": address,
                    "inbound": [{"port": 8080, "tags": {"kuma.io/service": "backend"}}],
                }
            },
        }

    with fake_kube(namespaces=("default", "kuma-system", "kuma-demo")) as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        admission, _ = admission_env(tmp_path)
        with control_plane(
            "run",
            KUBECONFIG=str(kubeconfig),
            KUMA_STORE_TYPE="kubernetes",
            **admission,
        ) as cp:
            await anyio.to_thread.run_sync(cp.wait_ready)
            metrics = {"enabledBackend": "p", "backends": [{"name": "p", "type": "prometheus"}]}
            kube.patch("meshes", "default", {"spec": {"metrics": metrics}})
            kube.create(dataplane("backend-01", "10.0.0.1"))
            async with MadsClient(cp.ports.mads) as client:
                response = await client.subscribe()
                while "/meshes/default/dataplanes/backend-01.kuma-demo" not in assignments_of(
                    response
                ):
                    await client.send(ack(response))
                    response = await client.recv()
                assignment = assignments_of(response)[
                    "/meshes/default/dataplanes/backend-01.kuma-demo"
                ]
                assert assignment.labels["k8s_kuma_io_name"] == "backend-01"
                assert assignment.labels["k8s_kuma_io_namespace"] == "kuma-demo"
                assert assignment.labels["instance"] == "backend-01.kuma-demo"
                await client.send(ack(response))

                kube.delete("dataplanes", "backend-01", "kuma-demo")
                gone = await client.recv()
                assert assignments_of(gone) == {}
            assert await anyio.to_thread.run_sync(cp.stop) == 0
