"""Monitoring assignments: one per dataplane of a mesh with Prometheus metrics enabled.

    assignment = assignment_for(mesh, dataplane)   # None: the mesh does not collect metrics

An assignment is shaped the way Prometheus' custom-sd adapter (and so `kuma-prometheus-sd`)
expects a target group: exactly one target carrying only `__address__`, every other label on the
assignment itself:

    name: /meshes/default/dataplanes/backend-01
    targets: [{labels: {__address__: "192.168.0.2:5670"}}]
    labels:
      kuma_io_service: backend        # each tag, sanitised, with its first value ...
      kuma_io_services: ",backend,"   # ... and a plural label with every value, comma-wrapped
      k8s_kuma_io_name: ...           # name extensions (Kubernetes only), sanitised
      __scheme__: http                # then the mandatory labels, which win any clash
      __metrics_path__: /metrics
      job: backend                    # the dataplane's identifying service
      instance: backend-01
      mesh: default
      dataplane: backend-01

The port and path come from the mesh's enabled `prometheus` backend, overridden field by field by
the dataplane's own `metrics` when that is a `prometheus` backend too (Kuma's
`GetPrometheusEndpoint`, in `kuma.model.metrics`, shared with the Envoy listener).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import structlog

from kuma.errors import ValidationError
from kuma.model.metrics import PrometheusEndpoint, dataplane_prometheus, mesh_prometheus
from kuma.model.resource import Resource
from kuma.model.selectors import SERVICE_UNKNOWN, dataplane_tags
from kuma.pb.kuma.observability.v1alpha1 import MonitoringAssignment, MonitoringAssignmentTarget

__all__ = [
    "MONITORING_ASSIGNMENT_TYPE",
    "PrometheusEndpoint",
    "assignment_for",
    "assignment_name",
    "mesh_prometheus",
    "sanitize_label_name",
]

MONITORING_ASSIGNMENT_TYPE = "type.googleapis.com/kuma.observability.v1alpha1.MonitoringAssignment"
"""Type URL of MADS resources (and of the requests asking for them)."""

_PROMETHEUS = "prometheus"
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")

log = structlog.get_logger("kuma.mads")


def sanitize_label_name(name: str) -> str:
    """Every character outside `[a-zA-Z0-9_]` becomes `_` (Prometheus' SanitizeLabelName)."""
    return _INVALID_LABEL_CHARS.sub("_", name)


def assignment_name(dataplane: Resource) -> str:
    return f"/meshes/{dataplane.meta.mesh}/dataplanes/{dataplane.meta.name}"


def _host_port(address: str, port: int) -> str:
    # Go's net.JoinHostPort: IPv6 literals in brackets
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _labels(
    dataplane: Resource, endpoint: PrometheusEndpoint, name_extensions: Mapping[str, str]
) -> dict[str, str]:
    labels: dict[str, str] = {}
    tags = dataplane_tags(dataplane.spec)  # sorted keys, sorted distinct values
    for key, values in tags.items():
        labels[sanitize_label_name(key)] = values[0] if values else ""
        # a user-defined plural tag (`services`) comes later in sorted order and wins
        labels[sanitize_label_name(key + "s")] = "," + ",".join(values) + ","
    for key in sorted(name_extensions):
        labels[sanitize_label_name(key)] = name_extensions[key]
    services = tags.get("kuma.io/service")
    labels["__scheme__"] = "http"
    labels["__metrics_path__"] = endpoint.path
    labels["job"] = services[0] if services else SERVICE_UNKNOWN
    labels["instance"] = dataplane.meta.name
    labels["mesh"] = dataplane.meta.mesh
    labels["dataplane"] = dataplane.meta.name
    return labels


def assignment_for(
    mesh_config: PrometheusEndpoint | None,
    dataplane: Resource,
    name_extensions: Mapping[str, str] | None = None,
) -> MonitoringAssignment | None:
    """The dataplane's assignment, or None when its mesh has no Prometheus backend enabled or its
    own metrics config is unreadable (logged; other dataplanes are not affected).

    `mesh_config` is `mesh_prometheus(mesh)` of the dataplane's mesh. `name_extensions` are the
    store's extra identity of the resource (`k8s.kuma.io/name`, `k8s.kuma.io/namespace` on
    Kubernetes; none on Universal).
    """
    if mesh_config is None:
        return None
    try:
        endpoint = dataplane_prometheus(mesh_config, dataplane)
    except ValidationError as e:
        log.info(
            "dataplane left out of monitoring assignments: unreadable metrics config",
            mesh=dataplane.meta.mesh,
            dataplane=dataplane.meta.name,
            error=str(e),
        )
        return None
    networking = dataplane.spec.networking
    address = networking.address if networking is not None else ""
    labels = _labels(dataplane, endpoint, name_extensions or {})
    return MonitoringAssignment(
        name=assignment_name(dataplane),
        targets=[
            MonitoringAssignmentTarget(labels={"__address__": _host_port(address, endpoint.port)})
        ],
        # sorted: the serialised bytes (and so the version) do not depend on insertion order
        labels=dict(sorted(labels.items())),
    )
