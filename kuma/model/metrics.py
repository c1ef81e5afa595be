"""Where a dataplane's Envoy serves its Prometheus stats (Kuma's `GetPrometheusEndpoint`).

    mesh_endpoint = mesh_prometheus(mesh)          # None: the mesh collects no metrics
    endpoint = dataplane_prometheus(mesh_endpoint, dataplane)

The mesh's enabled backend, when it is of type `prometheus`, gives port, path, tags and
`skipMTLS`; what it leaves unset gets Kuma's defaults (5670, `/metrics`,
`kuma.io/service: dataplane-metrics`), which the resource manager normally stored already. The
dataplane's own `metrics`, when it is a `prometheus` backend too, overrides field by field: a
non-zero port or non-empty path replaces the mesh's, tags are merged (the dataplane's win), an
explicit `skipMTLS` replaces the mesh's. A dataplane's own `metrics` alone turns nothing on.

The Envoy listener (`kuma.xds.generators.prometheus`) and the monitoring assignments
(`kuma.mads`) both read it from here, so the address MADS publishes is the one Envoy serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kuma.model import codec
from kuma.model.resource import Resource
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = [
    "DEFAULT_PATH",
    "DEFAULT_PORT",
    "DEFAULT_TAGS",
    "METRICS_TYPE_PROMETHEUS",
    "PrometheusEndpoint",
    "dataplane_prometheus",
    "mesh_prometheus",
]

METRICS_TYPE_PROMETHEUS = "prometheus"
DEFAULT_PORT = 5670
DEFAULT_PATH = "/metrics"
DEFAULT_TAGS: Mapping[str, str] = {"kuma.io/service": "dataplane-metrics"}


@dataclass(frozen=True, slots=True)
class PrometheusEndpoint:
    """Where and how a dataplane's Envoy stats are exposed (the merged backend `conf`)."""

    port: int
    path: str
    tags: Mapping[str, str]
    """The Prometheus "inbound"'s tags: TrafficPermissions select the endpoint by them."""
    skip_mtls: bool


def _decode(conf: Any, path: str) -> mesh_pb.PrometheusMetricsBackendConfig:
    data = conf.to_dict() if conf is not None else {}
    return codec.decode(mesh_pb.PrometheusMetricsBackendConfig, data, path, ignore_unknown=True)


def mesh_prometheus(mesh: Resource) -> PrometheusEndpoint | None:
    """The mesh's enabled prometheus backend with defaults filled in, None when metrics are off or
    the enabled backend is not `prometheus`. ValidationError (path
    `metrics.backends[i].conf`) when its `conf` does not read as a Prometheus config."""
    metrics = mesh.spec.metrics
    if metrics is None or not metrics.enabled_backend:
        return None
    for i, backend in enumerate(metrics.backends):
        if backend.name != metrics.enabled_backend:
            continue
        if backend.type != METRICS_TYPE_PROMETHEUS:
            return None
        cfg = _decode(backend.conf, f"metrics.backends[{i}].conf")
        return PrometheusEndpoint(
            cfg.port or DEFAULT_PORT,
            cfg.path or DEFAULT_PATH,
            dict(cfg.tags) if cfg.tags else DEFAULT_TAGS,
            bool(cfg.skip_mtls),
        )
    return None


def dataplane_prometheus(
    mesh_endpoint: PrometheusEndpoint, dataplane: Resource
) -> PrometheusEndpoint:
    """`mesh_endpoint` with the dataplane's own prometheus `metrics` on top. ValidationError
    (path `metrics.conf`) when that `conf` does not read as a Prometheus config."""
    override = dataplane.spec.metrics
    if override is None or override.type != METRICS_TYPE_PROMETHEUS:
        return mesh_endpoint
    own = _decode(override.conf, "metrics.conf")
    return PrometheusEndpoint(
        own.port or mesh_endpoint.port,
        own.path or mesh_endpoint.path,
        {**mesh_endpoint.tags, **own.tags} if own.tags else mesh_endpoint.tags,
        mesh_endpoint.skip_mtls if own.skip_mtls is None else own.skip_mtls,
    )
