"""Builders and configurers for Envoy v3 resources (listeners, clusters, routes, endpoints).

Each builder runs small configurers in order on a fresh message, like Kuma's
`pkg/xds/envoy`: generators compose them, and later policies (RBAC, health checks, circuit
breakers, fault injection, access logs, tracing, mTLS) are more configurers. Messages are the
upb-backed classes of PyPI `xds-protos`. Never `from envoy import ...` at the top level: two
wheels share the `envoy` package.
"""

from kuma.xds.envoy.common import Builder, ClusterSubset

__all__ = ["Builder", "ClusterSubset"]
