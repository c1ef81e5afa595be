"""Names of the Envoy resources kuma-py generates (Kuma 0.7.3's names, kept exactly).

Operators grep `/config_dump` and Envoy's stats for these, and ProxyTemplate modifications match
on them, so they never change shape. Stat names derived from them are sanitised with
`sanitize_metric` (`localhost:8080` -> `localhost_8080`).
"""

from __future__ import annotations

import re

__all__ = [
    "ACCESS_LOG_SINK",
    "ENVOY_ADMIN_CLUSTER",
    "INBOUND_PASSTHROUGH",
    "OUTBOUND_PASSTHROUGH",
    "PROMETHEUS_LISTENER",
    "inbound_listener_name",
    "inbound_route_name",
    "local_cluster_name",
    "outbound_listener_name",
    "outbound_route_name",
    "sanitize_metric",
    "tracing_cluster_name",
]

OUTBOUND_PASSTHROUGH = "outbound:passthrough"
"""Transparent proxying: listener and ORIGINAL_DST cluster for traffic to non-mesh addresses."""
INBOUND_PASSTHROUGH = "inbound:passthrough"
"""Transparent proxying: listener and ORIGINAL_DST cluster for inbound traffic to other ports."""
ENVOY_ADMIN_CLUSTER = "kuma:envoy:admin"
ACCESS_LOG_SINK = "access_log_sink"
"""The cluster (defined by the bootstrap) of kuma-dp's access log server: TCP traffic logs."""
PROMETHEUS_LISTENER = "kuma:metrics:prometheus"

_ILLEGAL = re.compile(r"[^a-zA-Z_\-0-9]")


def sanitize_metric(name: str) -> str:
    """Replace every character outside `[a-zA-Z0-9_-]` with `_` (StatsD/Prometheus safe)."""
    return _ILLEGAL.sub("_", name)


def local_cluster_name(port: int) -> str:
    """The STATIC cluster pointing at the workload behind an inbound: `localhost:<port>`."""
    return f"localhost:{port}"


def inbound_listener_name(address: str, port: int) -> str:
    return f"inbound:{address}:{port}"


def outbound_listener_name(address: str, port: int) -> str:
    return f"outbound:{address}:{port}"


def inbound_route_name(service: str) -> str:
    return f"inbound:{service}"


def outbound_route_name(service: str) -> str:
    return f"outbound:{service}"


def tracing_cluster_name(backend: str) -> str:
    return f"tracing:{backend}"
