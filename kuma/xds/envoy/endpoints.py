"""ClusterLoadAssignments: a STATIC cluster's single endpoint, and a service's EDS endpoints."""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.endpoint.v3 import endpoint_pb2

from kuma.xds.core import Endpoint
from kuma.xds.envoy.common import endpoint_metadata, set_socket_address

__all__ = ["cluster_load_assignment", "static_load_assignment"]


def static_load_assignment(
    cluster_name: str, address: str, port: int
) -> endpoint_pb2.ClusterLoadAssignment:
    """One endpoint, no weight or metadata (a `localhost:<port>` cluster's workload)."""
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name)
    lb_endpoint = cla.endpoints.add().lb_endpoints.add()
    set_socket_address(lb_endpoint.endpoint.address, address, port)
    return cla


def cluster_load_assignment(
    cluster_name: str, endpoints: Iterable[Endpoint]
) -> endpoint_pb2.ClusterLoadAssignment:
    """Every endpoint of a service in one locality, in the given order, each with its weight
    and its non-service tags as `envoy.lb` / `envoy.transport_socket_match` metadata."""
    cla = endpoint_pb2.ClusterLoadAssignment(cluster_name=cluster_name)
    locality = cla.endpoints.add()
    for ep in endpoints:
        lb_endpoint = locality.lb_endpoints.add()
        set_socket_address(lb_endpoint.endpoint.address, ep.target, ep.port)
        lb_endpoint.load_balancing_weight.value = ep.weight
        endpoint_metadata(ep.tags, lb_endpoint.metadata)
    return cla
