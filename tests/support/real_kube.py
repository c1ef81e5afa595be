"""Running the Kubernetes store tests against a real cluster instead of the fake API server.

    KUMA_TEST_KUBECONFIG=~/.kube/kind-config pytest tests/store -k kubernetes

With `KUMA_TEST_KUBECONFIG` set, `kube_target()` yields a `RealCluster` for the kubeconfig's
current context instead of a fresh in-process fake. It installs Kuma's CRDs (server-side apply),
creates the namespaces the tests use, and **deletes every Kuma object in them, every Mesh and
Zone, and every Kuma Secret in kuma-system** before each test, so the tests start from an empty
store as they do on the fake. Point it only at a disposable cluster (kind, k3d, minikube).

Tests that need what only the fake can do (issue ServiceAccount tokens, drop or compact watches,
create Pods with a status) keep using `fake_kube()` directly.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import httpx

from kuma.k8s import crds

__all__ = ["KUBECONFIG_ENV", "KubeTarget", "RealCluster", "kube_target"]

KUBECONFIG_ENV = "KUMA_TEST_KUBECONFIG"
SYSTEM_NAMESPACE = "kuma-system"
KUMA_SECRET_TYPE = "system.kuma.io/secret"


class KubeTarget(Protocol):
    def write_kubeconfig(self, path: Path | str, *, namespace: str = "default") -> Path: ...


class RealCluster:
    """The cluster of a kubeconfig's current context, prepared for the store tests."""

    def __init__(self, kubeconfig: str, namespaces: tuple[str, ...]) -> None:
        from lightkube.config.client_adapter import Client, ConnectionParams
        from lightkube.config.kubeconfig import KubeConfig

        self.kubeconfig = kubeconfig
        self.namespaces = tuple(dict.fromkeys((*namespaces, SYSTEM_NAMESPACE)))
        config = KubeConfig.from_file(kubeconfig).get()
        self.http: httpx.Client = Client(config, ConnectionParams())

    def write_kubeconfig(self, path: Path | str, *, namespace: str = "default") -> Path:
        """A copy of the cluster's kubeconfig (its current context decides the namespace)."""
        path = Path(path)
        shutil.copyfile(os.path.expanduser(self.kubeconfig), path)
        return path

    def _ok(self, response: httpx.Response, *allowed: int) -> None:
        if response.status_code >= 300 and response.status_code not in allowed:
            raise AssertionError(
                f"{response.request.method} {response.request.url}: "
                f"{response.status_code} {response.text[:300]}"
            )

    def prepare(self) -> None:
        for crd in crds.all_crds():
            manifest = crds.crd_manifest(crd)
            self._ok(
                self.http.patch(
                    f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd.name}",
                    params={"fieldManager": "kuma-py-tests", "force": "true"},
                    json=manifest,
                    headers={"Content-Type": "application/apply-patch+yaml"},
                )
            )
        for ns in self.namespaces:
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns},
            }
            self._ok(self.http.post("/api/v1/namespaces", json=body), 409)
        self.wipe()

    def wipe(self) -> None:
        """Delete every Kuma object the tests could have left (see the module docstring)."""
        for crd in crds.all_crds():
            scopes = self.namespaces if crd.namespaced else (None,)
            for ns in scopes:
                self._ok(self.http.delete(crd.path(ns)), 404)
        self._ok(
            self.http.delete(
                f"/api/v1/namespaces/{SYSTEM_NAMESPACE}/secrets",
                params={"fieldSelector": f"type={KUMA_SECRET_TYPE}"},
            ),
            404,
        )

    def close(self) -> None:
        self.http.close()


@contextmanager
def kube_target(namespaces: tuple[str, ...]) -> Iterator[KubeTarget]:
    """The fake API server, or the real cluster of `KUMA_TEST_KUBECONFIG` when it is set."""
    kubeconfig = os.environ.get(KUBECONFIG_ENV)
    if not kubeconfig:
        from tests.support.fake_kube import fake_kube

        with fake_kube(namespaces=namespaces) as kube:
            yield kube
        return
    cluster = RealCluster(kubeconfig, namespaces)
    try:
        cluster.prepare()
        yield cluster
    finally:
        cluster.close()
