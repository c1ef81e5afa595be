"""The Kubernetes store: Kuma resources as `kuma.io/v1alpha1` custom resources (see store.py)."""

from kuma.store.kubernetes.names import core_name, k8s_name
from kuma.store.kubernetes.store import (
    DEFAULT_SYSTEM_NAMESPACE,
    MESH_LABEL,
    SECRET_TYPE,
    KubernetesStore,
)

__all__ = [
    "DEFAULT_SYSTEM_NAMESPACE",
    "MESH_LABEL",
    "SECRET_TYPE",
    "KubernetesStore",
    "core_name",
    "k8s_name",
]
