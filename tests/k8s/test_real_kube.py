"""The real-cluster target of the store tests (KUMA_TEST_KUBECONFIG), driven against the fake API
server through a kubeconfig only, as it would drive a real cluster."""

from __future__ import annotations

from pathlib import Path

from tests.support.fake_kube import fake_kube
from tests.support.real_kube import RealCluster


def test_prepare_installs_crds_and_namespaces_and_wipes_kuma_objects(tmp_path: Path) -> None:
    with fake_kube(namespaces=("default",)) as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        cluster = RealCluster(str(kubeconfig), ("default", "m1"))
        try:
            cluster.prepare()
            assert kube.get("CustomResourceDefinition", "trafficroutes.kuma.io") is not None
            assert kube.get("Namespace", "m1") is not None
            assert kube.get("Namespace", "kuma-system") is not None

            kube.create(
                {"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "m1"}}
            )
            kube.create(
                {
                    "apiVersion": "kuma.io/v1alpha1",
                    "kind": "TrafficRoute",
                    "mesh": "m1",
                    "metadata": {"name": "r", "namespace": "m1"},
                    "spec": {},
                }
            )
            kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "system.kuma.io/secret",
                    "metadata": {"name": "s", "namespace": "kuma-system"},
                }
            )
            kube.create(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": "Opaque",
                    "metadata": {"name": "keep-me", "namespace": "kuma-system"},
                }
            )
            cluster.prepare()  # again: idempotent, and empties what the tests use
            assert kube.objects("Mesh") == []
            assert kube.objects("TrafficRoute") == []
            assert [o["metadata"]["name"] for o in kube.objects("Secret", "kuma-system")] == [
                "keep-me"
            ]
            assert (tmp_path / "copy").exists() is False
            copied = cluster.write_kubeconfig(tmp_path / "copy")
            assert copied.read_text() == kubeconfig.read_text()
        finally:
            cluster.close()
