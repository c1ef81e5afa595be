"""kuma-cp with `environment: kubernetes` runs the Pod controller against the cluster's API server
(here the in-process fake one, reached through a kubeconfig like a real cluster)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.k8s.test_controllers import seed
from tests.support.fake_kube import FakeKube, fake_kube
from tests.support.procs import control_plane, wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with fake_kube() as k:
        yield k


def kubernetes_env(kube: FakeKube, tmp_path: Path) -> dict[str, str]:
    return {
        "KUMA_ENVIRONMENT": "kubernetes",
        "KUBECONFIG": str(kube.write_kubeconfig(tmp_path / "kubeconfig")),
        "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR": str(tmp_path),
        "HOME": str(tmp_path),
    }


def test_kuma_cp_turns_meshed_pods_into_dataplane_crs(kube: FakeKube, tmp_path: Path) -> None:
    with control_plane("run", **kubernetes_env(kube, tmp_path)) as cp:
        cp.wait_ready()
        server, client = seed(kube)
        for pod in (server, client):
            name = pod["metadata"]["name"]
            dp = wait_until(
                lambda name=name: kube.get("dataplanes", name, "kuma-test"),
                10,
                f"Dataplane {name}",
            )
            assert dp["metadata"]["ownerReferences"][0]["uid"] == pod["metadata"]["uid"]
        assert cp.stop() == 0
        assert "pod controller started" in cp.output()


def test_kuma_cp_without_a_kubernetes_api_server_exits_1(tmp_path: Path) -> None:
    env = {
        "KUMA_ENVIRONMENT": "kubernetes",
        "KUBECONFIG": str(tmp_path / "missing"),
        "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR": str(tmp_path),
        "HOME": str(tmp_path),
    }
    with control_plane("run", **env) as cp:
        rc = cp.proc.wait(timeout=30)
        out = cp.output()
    assert rc == 1, out
    assert "environment" in out
    assert "kubernetes needs a Kubernetes API server" in out
