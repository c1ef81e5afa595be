"""kuma-cp in Kubernetes mode serves the webhooks over HTTPS on the admission server port."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx

from tests.k8s.webhook_support import admission_env, review
from tests.support.fake_kube import fake_kube
from tests.support.procs import Ports, control_plane, free_port


def test_kuma_cp_serves_the_webhooks_over_https(tmp_path: Path) -> None:
    env, ca_file = admission_env(tmp_path)
    port = env["KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT"]
    with (
        fake_kube(namespaces=("default", "kuma-system")) as kube,
        control_plane(
            "run",
            ports=Ports(),
            KUBECONFIG=str(kube.write_kubeconfig(tmp_path / "kubeconfig")),
            HOME=str(tmp_path),
            **env,
        ) as cp,
    ):
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
            # the injector reads the pod's namespace from the API server, and says when it can't
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}}
            r = client.post(
                "/inject-sidecar", json=review("Pod", pod, group="", version="v1", namespace="d")
            )
            answer = r.json()["response"]
            assert answer["allowed"] is False
            assert answer["status"]["message"] == (
                'could not retrieve namespace for pod: namespaces "d" not found'
            )


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


def test_the_installed_certificate_serves_the_webhooks_trusted_by_the_ca_bundle(
    tmp_path: Path,
) -> None:
    """`kumactl install control-plane` generates the admission server's pair and the webhooks'
    caBundle; kuma-cp serving that pair is trusted by a client holding only the caBundle."""
    import base64

    import yaml
    from click.testing import CliRunner

    from kuma.cli import build_root

    result = CliRunner().invoke(
        build_root(),
        ["--config-file", str(tmp_path / "kumactl"), "install", "control-plane"],
        prog_name="kumactl",
    )
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.output) if d]
    secret = next(d for d in docs if d["metadata"]["name"] == "kuma-admission-server-tls-cert")
    webhooks = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")
    cert_dir = tmp_path / "tls-cert"
    cert_dir.mkdir()
    for key in ("tls.crt", "tls.key"):
        (cert_dir / key).write_bytes(base64.b64decode(secret["data"][key]))
    ca_bundle = base64.b64decode(webhooks["webhooks"][0]["clientConfig"]["caBundle"])
    port = free_port()
    env = {
        "KUMA_ENVIRONMENT": "kubernetes",
        "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT": str(port),
        "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR": str(cert_dir),
    }
    trust = ssl.create_default_context(cadata=ca_bundle.decode())
    with (
        fake_kube(namespaces=("default", "kuma-system")) as kube,
        control_plane(
            "run",
            ports=Ports(),
            KUBECONFIG=str(kube.write_kubeconfig(tmp_path / "kubeconfig")),
            HOME=str(tmp_path),
            **env,
        ) as cp,
    ):
        cp.wait_ready()
        with httpx.Client(base_url=f"https://localhost:{port}", verify=trust) as client:
            mesh = {"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "m"}}
            r = client.post("/validate-kuma-io-v1alpha1", json=review("Mesh", mesh))
            assert r.json()["response"]["allowed"] is True
