"""Cluster builder and configurers (Kuma's `pkg/xds/envoy/clusters`, in Envoy's v3 API).

    cluster = (
        cluster_builder()
        .configure(eds_cluster("backend"), lb_subset([("version",)]), http2())
        .build()
    )

The `*_cluster` configurers also set Kuma's defaults every generated cluster has: a 5s connect
timeout and, when the name is not a valid stat name, a sanitised `alt_stat_name`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from kuma.xds.envoy.common import Builder, Configurer, pack
from kuma.xds.envoy.endpoints import static_load_assignment
from kuma.xds.names import sanitize_metric

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "HTTP_PROTOCOL_OPTIONS",
    "ClusterConfigurer",
    "alt_stat_name",
    "cluster_builder",
    "connect_timeout",
    "eds_cluster",
    "http2",
    "lb_subset",
    "passthrough_cluster",
    "static_cluster",
    "upstream_bind_config",
]

Cluster = cluster_pb2.Cluster
ClusterConfigurer = Configurer[cluster_pb2.Cluster]

CONNECT_TIMEOUT_SECONDS = 5
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
"""Key of `typed_extension_protocol_options` holding a cluster's upstream HTTP options (v3's
replacement for v2's `http2_protocol_options` field)."""

_HTTP2_OPTIONS = pack(
    http_protocol_options_pb2.HttpProtocolOptions(
        explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig(
            http2_protocol_options={}
        )
    )
)


def cluster_builder() -> Builder[cluster_pb2.Cluster]:
    return Builder(Cluster)


def alt_stat_name(cluster: cluster_pb2.Cluster) -> None:
    """Stats under a sanitised name when the cluster's name is not one (`localhost:8080`)."""
    sanitized = sanitize_metric(cluster.name)
    if sanitized != cluster.name:
        cluster.alt_stat_name = sanitized


def connect_timeout(seconds: int = CONNECT_TIMEOUT_SECONDS) -> ClusterConfigurer:
    def configure(cluster: cluster_pb2.Cluster) -> None:
        cluster.connect_timeout.seconds = seconds

    return configure


def _defaults(cluster: cluster_pb2.Cluster) -> None:
    alt_stat_name(cluster)
    cluster.connect_timeout.seconds = CONNECT_TIMEOUT_SECONDS


def eds_cluster(name: str) -> ClusterConfigurer:
    """Type EDS, endpoints over ADS (Envoy's v3 resource API)."""

    def configure(cluster: cluster_pb2.Cluster) -> None:
        cluster.name = name
        cluster.type = Cluster.EDS
        eds_config = cluster.eds_cluster_config.eds_config
        eds_config.ads.SetInParent()
        eds_config.resource_api_version = config_source_pb2.V3
        _defaults(cluster)

    return configure


def static_cluster(name: str, address: str, port: int) -> ClusterConfigurer:
    """Type STATIC with one endpoint at `address:port`."""

    def configure(cluster: cluster_pb2.Cluster) -> None:
        cluster.name = name
        cluster.type = Cluster.STATIC
        cluster.load_assignment.CopyFrom(static_load_assignment(name, address, port))
        _defaults(cluster)

    return configure


def passthrough_cluster(name: str) -> ClusterConfigurer:
    """Type ORIGINAL_DST: forwards to the connection's original destination."""

    def configure(cluster: cluster_pb2.Cluster) -> None:
        cluster.name = name
        cluster.type = Cluster.ORIGINAL_DST
        cluster.lb_policy = Cluster.CLUSTER_PROVIDED
        _defaults(cluster)

    return configure


def upstream_bind_config(address: str, port: int) -> ClusterConfigurer:
    def configure(cluster: cluster_pb2.Cluster) -> None:
        source = cluster.upstream_bind_config.source_address
        source.address = address
        source.port_value = port

    return configure


def http2(cluster: cluster_pb2.Cluster) -> None:
    """Speak HTTP/2 to the upstream (explicit HTTP/2 in `HttpProtocolOptions`)."""
    cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].CopyFrom(_HTTP2_OPTIONS)


def lb_subset(key_sets: Iterable[Sequence[str]]) -> ClusterConfigurer | None:
    """Subset load balancing over endpoint metadata, one selector per distinct key set.

    Needed whenever a route picks endpoints by tags besides `kuma.io/service` (a TrafficRoute
    splitting by `version`, or an outbound with extra tags). A request that names no subset
    may use any endpoint; one naming a subset that has no endpoints fails (no fallback).
    Returns None (nothing to configure) when every key set is empty.
    """
    selectors = [list(keys) for keys in key_sets if keys]
    if not selectors:
        return None

    def configure(cluster: cluster_pb2.Cluster) -> None:
        config = cluster.lb_subset_config
        config.fallback_policy = Cluster.LbSubsetConfig.ANY_ENDPOINT
        for keys in selectors:
            selector = config.subset_selectors.add()
            selector.keys.extend(keys)
            selector.fallback_policy = Cluster.LbSubsetConfig.LbSubsetSelector.NO_FALLBACK

    return configure
