"""kuma-cp in Kubernetes mode serves the webhooks over HTTPS on the admission server port."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from tests.k8s.webhook_support import admission_env, review
from tests.support.procs import Ports, control_plane, free_port


def test_kuma_cp_serves_the_webhooks_over_https(tmp_path: Path) -> None:
    env, ca_file = admission_env(tmp_path)
    port = env["KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT"]
    env["KUBECONFIG"] = str(tmp_path / "no-kubeconfig")
    with control_plane("run", ports=Ports(), **env) as cp:
        cp.wait_ready()
        with httpx.Client(
            base_url=f"https://localhost:{port}",
            verify=ssl.create_default_context(cafile=str(ca_file)),
        ) as client:
            bad_route = {
                "apiVersion": "kuma.io/v1alpha1",
                "kind": "TrafficRoute",
                "mesh": "default",
                "metadata": {"name": "r1", "namespace": "kuma-demo"},
                "spec": {"sources": [{"match": {"kuma.io/service": "*"}}]},
            }
            r = client.post(
                "/validate-kuma-io-v1alpha1",
                json=review("TrafficRoute", bad_route, namespace="kuma-demo"),
            )
            assert r.status_code == 200
            answer = r.json()["response"]
            assert answer["allowed"] is False
            assert answer["status"]["message"] == (
                "spec.destinations: must have at least one element; "
                "spec.conf: must have at least one element"
            )
            # no Kubernetes API configured: the injector cannot read the namespace, and says so
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
            r = client.post(
                "/inject-sidecar", json=review("Pod", pod, group="", version="v1", namespace="d")
            )
            answer = r.json()["response"]
            assert answer["allowed"] is False
            assert answer["status"]["code"] == 500
            assert "no Kubernetes API configuration" in answer["status"]["message"]


def test_a_cert_dir_without_certificates_stops_kuma_cp(tmp_path: Path) -> None:
    env = {
        "KUMA_ENVIRONMENT": "kubernetes",
        "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT": str(free_port()),
        "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR": str(tmp_path),
    }
    with control_plane("run", ports=Ports(), **env) as cp:
        rc = cp.proc.wait(timeout=30)
        out = cp.output()
    assert rc == 1
    assert "runtime.kubernetes.admissionServer.certDir" in out
    assert "tls.crt" in out
