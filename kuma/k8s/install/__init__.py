"""`kumactl install ...`: Kubernetes manifests built as dicts, printed as multi-document YAML."""

from kuma.k8s.install.control_plane import ControlPlaneArgs, InstallError, control_plane_manifests
from kuma.k8s.install.metrics import MetricsArgs, metrics_manifests
from kuma.k8s.install.render import dump_documents, sort_by_kind
from kuma.k8s.install.tracing import TracingArgs, tracing_manifests

__all__ = [
    "ControlPlaneArgs",
    "InstallError",
    "MetricsArgs",
    "TracingArgs",
    "control_plane_manifests",
    "dump_documents",
    "metrics_manifests",
    "sort_by_kind",
    "tracing_manifests",
]
