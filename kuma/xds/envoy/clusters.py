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

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from kuma.model.selectors import SERVICE_TAG
from kuma.xds.envoy.common import Builder, Configurer, pack
from kuma.xds.envoy.endpoints import static_load_assignment
from kuma.xds.envoy.tls import (
    SdsLocation,
    sni_from_tags,
    tls_transport_socket,
    upstream_tls_context,
)
from kuma.xds.names import sanitize_metric

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "DEFAULT_POLICY_CONNECT_TIMEOUT",
    "HTTP_PROTOCOL_OPTIONS",
    "ClusterConfigurer",
    "alt_stat_name",
    "client_side_mtls",
    "cluster_builder",
    "connect_timeout",
    "dns_cluster",
    "eds_cluster",
    "health_check",
    "http2",
    "lb_subset",
    "outlier_detection",
    "passthrough_cluster",
    "static_cluster",
    "timeout",
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


def dns_cluster(name: str, host: str, port: int) -> ClusterConfigurer:
    """Type STRICT_DNS, round robin over what `host` resolves to (a tracing collector)."""

    def configure(cluster: cluster_pb2.Cluster) -> None:
        cluster.name = name
        cluster.type = Cluster.STRICT_DNS
        cluster.lb_policy = Cluster.ROUND_ROBIN
        cluster.load_assignment.CopyFrom(static_load_assignment(name, host, port))
        _defaults(cluster)

    return configure


def client_side_mtls(
    sds: SdsLocation | None, mesh: str, service: str, tag_sets: Sequence[Mapping[str, str]]
) -> ClusterConfigurer | None:
    """mTLS to the upstream Envoys of `service` (Kuma's ClientSideMTLS); None when mTLS is off.

    `tag_sets` are the distinct destination tags this proxy uses for the cluster. With one, the
    cluster's own transport socket carries the SNI `<service>{mesh=<mesh>,...}`; with several,
    each gets a `transport_socket_matches` entry (named by its SNI) matching endpoints by their
    `envoy.transport_socket_match` metadata, so the upstream sees which subset was meant.
    """
    if sds is None:
        return None
    distinct: list[Mapping[str, str]] = []
    seen: set[tuple[tuple[str, str], ...]] = set()
    for tags in tag_sets:
        key = tuple(sorted(tags.items()))
        if key not in seen:
            seen.add(key)
            distinct.append(tags)

    def socket(sni: str) -> Any:
        return tls_transport_socket(upstream_tls_context(sds, mesh, service, sni))

    def configure(cluster: cluster_pb2.Cluster) -> None:
        if not distinct:
            cluster.transport_socket.CopyFrom(socket(""))
        elif len(distinct) == 1:
            cluster.transport_socket.CopyFrom(socket(sni_from_tags({**distinct[0], "mesh": mesh})))
        else:
            for tags in distinct:
                sni = sni_from_tags({**tags, "mesh": mesh})
                match = cluster.transport_socket_matches.add(name=sni)
                for key, value in sorted(tags.items()):
                    if key != SERVICE_TAG:
                        match.match.fields[key].string_value = value
                match.transport_socket.CopyFrom(socket(sni))

    return configure


def health_check(conf: Any | None) -> ClusterConfigurer | None:
    """Active TCP health checks (connect only) from a HealthCheck's `conf`."""
    if conf is None:
        return None

    def configure(cluster: cluster_pb2.Cluster) -> None:
        check = cluster.health_checks.add()
        if conf.interval is not None:
            check.interval.FromTimedelta(conf.interval)
        if conf.timeout is not None:
            check.timeout.FromTimedelta(conf.timeout)
        check.unhealthy_threshold.value = conf.unhealthy_threshold
        check.healthy_threshold.value = conf.healthy_threshold
        check.tcp_health_check.SetInParent()

    return configure


def outlier_detection(conf: Any | None) -> ClusterConfigurer | None:
    """Outlier detection from a CircuitBreaker's `conf` (Kuma's OutlierDetectionConfigurer):
    each detector that is configured is enforced at 100%, each that is not at 0%."""
    if conf is None:
        return None

    def configure(cluster: cluster_pb2.Cluster) -> None:
        od = cluster.outlier_detection
        od.SetInParent()
        if conf.interval is not None:
            od.interval.FromTimedelta(conf.interval)
        if conf.base_ejection_time is not None:
            od.base_ejection_time.FromTimedelta(conf.base_ejection_time)
        if conf.max_ejection_percent is not None:
            od.max_ejection_percent.value = conf.max_ejection_percent
        od.split_external_local_origin_errors = conf.split_external_and_local_errors
        detectors = conf.detectors
        # each consecutive-errors detector: its threshold, and enforced (100 %) only when given
        for detector, consecutive, enforcing in (
            (
                detectors.total_errors if detectors else None,
                od.consecutive_5xx,
                od.enforcing_consecutive_5xx,
            ),
            (
                detectors.gateway_errors if detectors else None,
                od.consecutive_gateway_failure,
                od.enforcing_consecutive_gateway_failure,
            ),
            (
                detectors.local_errors if detectors else None,
                od.consecutive_local_origin_failure,
                od.enforcing_consecutive_local_origin_failure,
            ),
        ):
            if detector is not None and detector.consecutive is not None:
                consecutive.value = detector.consecutive
            enforcing.value = 100 if detector is not None else 0
        stdev = detectors.standard_deviation if detectors else None
        if stdev is not None:
            if stdev.request_volume is not None:
                od.success_rate_request_volume.value = stdev.request_volume
            if stdev.minimum_hosts is not None:
                od.success_rate_minimum_hosts.value = stdev.minimum_hosts
            if stdev.factor is not None:
                od.success_rate_stdev_factor.value = int(stdev.factor * 1000)
            od.enforcing_success_rate.value = 100
            # takes effect only with split_external_local_origin_errors
            od.enforcing_local_origin_success_rate.value = 100
        else:
            od.enforcing_success_rate.value = 0
        failure = detectors.failure if detectors else None
        if failure is not None:
            if failure.request_volume is not None:
                od.failure_percentage_request_volume.value = failure.request_volume
            if failure.minimum_hosts is not None:
                od.failure_percentage_minimum_hosts.value = failure.minimum_hosts
            if failure.threshold is not None:
                od.failure_percentage_threshold.value = failure.threshold
            od.enforcing_failure_percentage.value = 100
            od.enforcing_failure_percentage_local_origin.value = 100
        else:
            od.enforcing_failure_percentage.value = 0

    return configure


DEFAULT_POLICY_CONNECT_TIMEOUT = dt.timedelta(seconds=10)
"""Connect timeout of a cluster under a Timeout policy that sets none (Kuma 1.1)."""


def _update_http_options(cluster: cluster_pb2.Cluster) -> Any:
    options = http_protocol_options_pb2.HttpProtocolOptions()
    if HTTP_PROTOCOL_OPTIONS in cluster.typed_extension_protocol_options:
        cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].Unpack(options)
    return options


def timeout(protocol: str, conf: Any | None) -> ClusterConfigurer | None:
    """A Timeout policy's cluster side (Kuma 1.1): the connect timeout (10s when the policy
    sets none), the upstream idle timeout for http/http2 and max stream duration for grpc.

    In v3 the HTTP options live in `typed_extension_protocol_options` (merged with the
    HTTP/2 setting), not in the deprecated `common_http_protocol_options` field.
    """
    if conf is None:
        return None

    def configure(cluster: cluster_pb2.Cluster) -> None:
        cluster.connect_timeout.FromTimedelta(
            conf.connect_timeout
            if conf.connect_timeout is not None
            else DEFAULT_POLICY_CONNECT_TIMEOUT
        )
        if protocol in ("http", "http2"):
            idle = conf.http.idle_timeout if conf.http is not None else None
            options = _update_http_options(cluster)
            options.common_http_protocol_options.idle_timeout.FromTimedelta(idle or dt.timedelta())
            if not options.HasField("explicit_http_config"):
                options.use_downstream_protocol_config.SetInParent()
            cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].Pack(options)
        elif protocol == "grpc":
            duration = conf.grpc.max_stream_duration if conf.grpc is not None else None
            if duration:
                options = _update_http_options(cluster)
                options.common_http_protocol_options.max_stream_duration.FromTimedelta(duration)
                if not options.HasField("explicit_http_config"):
                    options.use_downstream_protocol_config.SetInParent()
                cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].Pack(options)

    return configure
