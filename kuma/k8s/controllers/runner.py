"""kuma-cp's Kubernetes controllers, as one long-running task (`environment: kubernetes`)."""

from __future__ import annotations

import anyio
import anyio.abc
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ConfigError as KubeConfigError

from kuma.config import ConfigError, ConfigProblem, KumaCpConfig
from kuma.k8s.controllers.pod import PodController

__all__ = ["kube_client", "run_controllers"]


def kube_client() -> AsyncClient:
    """A client for the cluster kuma-cp runs in: in-cluster service account, else `KUBECONFIG`,
    else `~/.kube/config` (the order controller-runtime and lightkube use)."""
    try:
        config = KubeConfig.from_env()
    except (KubeConfigError, OSError) as e:
        raise ConfigError(
            "Unsupported configuration",
            [
                ConfigProblem(
                    "environment",
                    "kubernetes needs a Kubernetes API server: run in a cluster or set KUBECONFIG "
                    f"({e})",
                )
            ],
        ) from e
    return AsyncClient(config, field_manager="kuma-cp")


async def run_controllers(
    cfg: KumaCpConfig,
    *,
    client: AsyncClient | None = None,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Run the Pod controller until cancelled; started once its caches are in sync.

    `client` defaults to `kube_client()` (closed on exit); a remote control plane tags inbounds
    with its zone (`multicluster.remote.zone`).
    """
    zone = cfg.multicluster.remote.zone if cfg.mode == "remote" else ""
    own = client is None
    kube = client if client is not None else kube_client()
    try:
        await PodController(kube, zone=zone).run(task_status=task_status)
    finally:
        if own:
            with anyio.CancelScope(shield=True):
                await kube.close()
