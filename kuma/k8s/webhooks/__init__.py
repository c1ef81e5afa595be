"""Kuma's admission webhooks (sidecar injection, Mesh defaults, owner references, validation)."""

from kuma.k8s.webhooks.app import ManagerMeshChecks, MeshChecks, build_webhook_app
from kuma.k8s.webhooks.injector import InjectionError, SidecarInjector
from kuma.k8s.webhooks.lookup import ClusterLookup, DictLookup, LightkubeLookup, LookupError_
from kuma.k8s.webhooks.server import (
    LazyLightkubeLookup,
    WebhookTls,
    injector_from_config,
    webhook_tls,
)

__all__ = [
    "ClusterLookup",
    "DictLookup",
    "InjectionError",
    "LazyLightkubeLookup",
    "LightkubeLookup",
    "LookupError_",
    "ManagerMeshChecks",
    "MeshChecks",
    "SidecarInjector",
    "WebhookTls",
    "build_webhook_app",
    "injector_from_config",
    "webhook_tls",
]
