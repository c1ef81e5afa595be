"""Defaults the manager fills in before a resource is stored (Kuma's Default() methods)."""

from __future__ import annotations

from typing import Any

from kuma.errors import ValidationError
from kuma.model import codec
from kuma.model.metrics import DEFAULT_PATH, DEFAULT_PORT, DEFAULT_TAGS, METRICS_TYPE_PROMETHEUS
from kuma.pb.google import protobuf as pb_google
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["apply_mesh_defaults"]

PROMETHEUS_DEFAULT_PORT = DEFAULT_PORT
PROMETHEUS_DEFAULT_PATH = DEFAULT_PATH
PROMETHEUS_DEFAULT_TAGS = DEFAULT_TAGS


def apply_mesh_defaults(spec: Any) -> None:
    """Fill each prometheus metrics backend's port, path and tags when unset (in place)."""
    metrics = spec.metrics
    if metrics is None:
        return
    for i, backend in enumerate(metrics.backends):
        if backend.type != METRICS_TYPE_PROMETHEUS:
            continue
        conf = backend.conf.to_dict() if backend.conf is not None else {}
        try:
            cfg = codec.decode(
                mesh_pb.PrometheusMetricsBackendConfig,
                conf,
                f"metrics.backends[{i}].conf",
                ignore_unknown=True,
            )
        except ValidationError:
            continue  # the validator reports it
        cfg.port = cfg.port or PROMETHEUS_DEFAULT_PORT
        cfg.path = cfg.path or PROMETHEUS_DEFAULT_PATH
        if not cfg.tags:
            cfg.tags = dict(PROMETHEUS_DEFAULT_TAGS)
        backend.conf = pb_google.Struct.from_dict(codec.encode(cfg))
