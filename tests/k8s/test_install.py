"""`kumactl install control-plane | metrics | tracing`: golden manifests, each document a
well-formed Kubernetes object (checked against the Kubernetes API models lightkube ships, and
by `kubectl kustomize`, both offline)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from lightkube import codecs

from tests.cli.conftest import KumactlRunner

TESTDATA = Path(__file__).parent / "testdata" / "install"
UPDATE = os.environ.get("UPDATE_GOLDEN_FILES", "").lower() == "true"


@pytest.fixture
def kumactl(tmp_path: Path) -> KumactlRunner:
    return KumactlRunner(tmp_path / "kumactl" / "config")


PINNED = [
    "--control-plane-version",
    "0.0.1",
    "--admission-server-tls-cert",
    "AdmissionCert",
    "--admission-server-tls-key",
    "AdmissionKey",
    "--sds-tls-cert",
    "SdsCert",
    "--sds-tls-key",
    "SdsKey",
    "--kds-tls-cert",
    "KdsCert",
    "--kds-tls-key",
    "KdsKey",
]

CASES = [
    ("control-plane", "defaults", PINNED),
    (
        "control-plane",
        "overrides",
        [
            *PINNED,
            "--namespace",
            "kuma",
            "--image-pull-policy",
            "Never",
            "--control-plane-version",
            "greatest",
            "--control-plane-image",
            "kuma-ci/kuma-cp",
            "--control-plane-service-name",
            "kuma-ctrl-plane",
            "--injector-failure-policy",
            "Fail",
            "--dataplane-image",
            "kuma-ci/kuma-dp",
            "--dataplane-init-image",
            "kuma-ci/kuma-init",
            "--mode",
            "remote",
            "--kds-global-address",
            "grpcs://192.168.0.1:5685",
            "--zone",
            "zone-1",
            "--use-node-port",
            "--env-var",
            "kuma_api_server_cors_allowed_domains=.*",
        ],
    ),
    ("control-plane", "cni-enabled", [*PINNED, "--cni-enabled"]),
    ("control-plane", "global", [*PINNED, "--mode", "global", "--use-node-port"]),
    (
        "control-plane",
        "registries",
        [
            *PINNED,
            "--control-plane-registry",
            "registry.local:5000",
            "--control-plane-repository",
            "kuma-py-cp",
            "--dataplane-registry",
            "registry.local:5000",
            "--dataplane-repository",
            "kuma-py-dp",
            "--dataplane-init-repository",
            "kuma-py-init",
        ],
    ),
    ("metrics", "defaults", ["--kuma-prometheus-sd-version", "0.0.1"]),
    (
        "metrics",
        "overrides",
        [
            "--namespace",
            "kuma",
            "--kuma-prometheus-sd-image",
            "kuma-ci/kuma-prometheus-sd",
            "--kuma-prometheus-sd-version",
            "greatest",
            "--kuma-cp-address",
            "http://kuma.local:5681",
        ],
    ),
    ("tracing", "defaults", []),
    ("tracing", "overrides", ["--namespace", "kuma"]),
]


def install(kumactl: KumactlRunner, what: str, *args: str) -> str:
    result = kumactl("install", what, *args)
    assert result.exit_code == 0, result.output
    return result.output


def documents(text: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert all(isinstance(d, dict) for d in docs)
    return docs


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def assert_kubernetes_objects(docs: list[dict[str, Any]]) -> None:
    """Every document is an object of a Kubernetes API kind, with only fields of that kind:
    lightkube's models (generated from the Kubernetes OpenAPI schema) load it, enforcing
    required fields and types, and give back exactly what went in (an unknown or misplaced
    field would be dropped)."""
    for doc in docs:
        name = f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}"
        obj = codecs.from_dict(doc)
        assert _strip_none(obj.to_dict()) == doc, f"{name} has fields Kubernetes does not know"


@pytest.mark.parametrize(("what", "case", "args"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_install_golden(kumactl: KumactlRunner, what: str, case: str, args: list[str]) -> None:
    out = install(kumactl, what, *args)
    golden = TESTDATA / f"install-{what}.{case}.golden.yaml"
    if UPDATE:
        golden.write_text(out)
    assert golden.exists(), f"missing {golden} (UPDATE_GOLDEN_FILES=true writes it)"
    assert out == golden.read_text()
    docs = documents(out)
    assert out.count("---\n") == len(docs)
    assert_kubernetes_objects(docs)


def test_control_plane_objects(kumactl: KumactlRunner) -> None:
    docs = documents(install(kumactl, "control-plane", *PINNED))
    kinds = [d["kind"] for d in docs]
    # Helm's install order: namespace first, workloads after what they use, webhooks last
    assert kinds[0] == "Namespace"
    assert kinds.index("CustomResourceDefinition") < kinds.index("Deployment")
    assert kinds[-2:] == ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    crd_names = {d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"}
    assert {"meshes.kuma.io", "trafficroutes.kuma.io", "dataplanes.kuma.io"} <= crd_names
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["KUMA_ENVIRONMENT"] == "kubernetes"
    assert env["KUMA_STORE_TYPE"] == "kubernetes"
    assert env["KUMA_API_SERVER_READ_ONLY"] == "true"
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert config["environment"] == "kubernetes"
    assert config["store"]["type"] == "kubernetes"
    mutating = next(d for d in docs if d["kind"] == "MutatingWebhookConfiguration")
    hooks = {h["clientConfig"]["service"]["path"]: h for h in mutating["webhooks"]}
    assert hooks["/inject-sidecar"]["failurePolicy"] == "Ignore"
    assert hooks["/default-kuma-io-v1alpha1-mesh"]["failurePolicy"] == "Fail"
    assert hooks["/owner-reference-kuma-io-v1alpha1"]["failurePolicy"] == "Fail"
    validating = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")
    policies = {
        h["clientConfig"]["service"]["path"]: h["failurePolicy"] for h in validating["webhooks"]
    }
    assert policies == {
        "/validate-kuma-io-v1alpha1": "Fail",
        "/validate-v1-service": "Ignore",
        "/validate-v1-secret": "Ignore",
    }
    for hook in [*mutating["webhooks"], *validating["webhooks"]]:
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == b"AdmissionCert"


def test_generated_admission_certificate_is_trusted_by_the_ca_bundle(
    kumactl: KumactlRunner,
) -> None:
    docs = documents(install(kumactl, "control-plane", "--namespace", "mesh-system"))
    secret = next(d for d in docs if d["metadata"]["name"] == "kuma-admission-server-tls-cert")
    cert_pem = base64.b64decode(secret["data"]["tls.crt"])
    assert b"PRIVATE KEY" in base64.b64decode(secret["data"]["tls.key"])
    mutating = next(d for d in docs if d["kind"] == "MutatingWebhookConfiguration")
    ca_pem = base64.b64decode(mutating["webhooks"][0]["clientConfig"]["caBundle"])
    cert = x509.load_pem_x509_certificate(cert_pem)
    ca = x509.load_pem_x509_certificate(ca_pem)
    cert.verify_directly_issued_by(ca)  # raises if the bundle does not vouch for the cert
    sans = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    assert "kuma-control-plane.mesh-system.svc" in sans.get_values_for_type(x509.DNSName)
    sds = next(d for d in docs if d["metadata"]["name"] == "kuma-sds-tls-cert")
    assert sds["data"]["tls.crt"] != secret["data"]["tls.crt"]  # each server its own pair


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "remote"], "--zone is mandatory with `remote` mode"),
        (["--mode", "remote", "--zone", "z"], "--kds-global-address is mandatory"),
        (
            ["--mode", "remote", "--zone", "z", "--kds-global-address", "http://g:5685"],
            "--kds-global-address should start with grpcs://",
        ),
        (
            ["--kds-global-address", "grpcs://g:5685"],
            "--kds-global-address can only be used when --mode=remote",
        ),
        (
            ["--admission-server-tls-cert", "C"],
            "both --admission-server-tls-cert and --admission-server-tls-key must be provided",
        ),
        (["--mode", "zone"], "invalid mode"),
    ],
)
def test_bad_flags_are_refused(kumactl: KumactlRunner, args: list[str], message: str) -> None:
    result = kumactl("install", "control-plane", *args)
    assert result.exit_code == 1
    assert message in result.output


def test_install_help_lists_the_commands(kumactl: KumactlRunner) -> None:
    out = kumactl("install", "--help").output
    for cmd in ("control-plane", "metrics", "tracing"):
        assert cmd in out


def test_metrics_scrape_dataplanes_through_kuma_prometheus_sd(kumactl: KumactlRunner) -> None:
    docs = documents(install(kumactl, "metrics"))
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    prom = yaml.safe_load(config_map["data"]["prometheus.yml"])
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "kuma-dataplanes")
    sd_file = job["file_sd_configs"][0]["files"][0]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    sd = next(
        c
        for c in deployment["spec"]["template"]["spec"]["containers"]
        if c["name"] == "kuma-prometheus-sd"
    )
    assert f"--output-file={sd_file}" in sd["args"]
    assert "--cp-address=http://kuma-control-plane.kuma-system:5681" in sd["args"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("what", ["control-plane", "metrics", "tracing"])
def test_kubectl_kustomize_accepts_the_manifests(
    kumactl: KumactlRunner, what: str, tmp_path: Path
) -> None:
    """kubectl without a cluster: `kustomize` loads every document as a resource (apiVersion,
    kind and name present, no two objects with the same identity)."""
    out = install(kumactl, what, "--cni-enabled") if what == "control-plane" else None
    out = out or install(kumactl, what)
    (tmp_path / "all.yaml").write_text(out)
    (tmp_path / "kustomization.yaml").write_text("resources:\n- all.yaml\n")
    result = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert len(documents(result.stdout)) == len(documents(out))
