"""kuma-cp's webhooks reading the cluster through the Kubernetes API (the fake API server):
injection decided by a real Namespace object, the Mesh owner reference carrying the Mesh's uid,
and the injected Pod accepted by the API server once the patch is applied."""

from __future__ import annotations

import base64
import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.k8s.webhook_support import admission_env, review
from tests.support.procs import Ports, control_plane

fake_kube = pytest.importorskip(
    "tests.support.fake_kube", reason="the fake API server lands with the Kubernetes store"
)


def _patch(answer: dict[str, Any]) -> list[Any]:
    assert answer["allowed"] is True, answer
    assert answer["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(answer["patch"]))
    assert isinstance(ops, list)
    return ops


def test_webhooks_read_namespaces_and_meshes_from_the_api_server(tmp_path: Path) -> None:
    env, ca_file = admission_env(tmp_path)
    port = env["KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT"]
    trust = ssl.create_default_context(cafile=str(ca_file))
    with fake_kube.FakeKube() as kube:
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": "kuma-demo",
                    "annotations": {"kuma.io/sidecar-injection": "enabled"},
                },
            }
        )
        mesh = kube.create(
            {"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "default"}}
        )
        env["KUBECONFIG"] = str(kube.write_kubeconfig(tmp_path / "kubeconfig"))
        with (
            control_plane("run", ports=Ports(), **env) as cp,
            httpx.Client(base_url=f"https://localhost:{port}", verify=trust) as client,
        ):
            cp.wait_ready()
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": "kuma-demo", "labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx"}]},
            }
            body = review("Pod", pod, group="", version="v1", namespace="kuma-demo")
            answer = client.post("/inject-sidecar", json=body).json()["response"]
            injected = fake_kube.json_patch(pod, _patch(answer))
            created = kube.create(injected)
            assert created["metadata"]["annotations"]["kuma.io/sidecar-injected"] == "true"
            names = [c["name"] for c in created["spec"]["containers"]]
            assert names == ["web", "kuma-sidecar"]
            assert created["spec"]["initContainers"][0]["name"] == "kuma-init"

            # a namespace without the annotation: left alone
            other = {**pod, "metadata": {**pod["metadata"], "namespace": "default"}}
            body = review("Pod", other, group="", version="v1", namespace="default")
            answer = client.post("/inject-sidecar", json=body).json()["response"]
            assert answer["allowed"] is True
            assert "patch" not in answer

            route = {
                "apiVersion": "kuma.io/v1alpha1",
                "kind": "TrafficRoute",
                "mesh": "default",
                "metadata": {"name": "r1", "namespace": "kuma-demo"},
                "spec": {},
            }
            body = review("TrafficRoute", route, namespace="kuma-demo")
            answer = client.post("/owner-reference-kuma-io-v1alpha1", json=body).json()
            owned = fake_kube.json_patch(route, _patch(answer["response"]))
            assert owned["metadata"]["ownerReferences"] == [
                {
                    "apiVersion": "kuma.io/v1alpha1",
                    "kind": "Mesh",
                    "name": "default",
                    "uid": mesh["metadata"]["uid"],
                }
            ]
