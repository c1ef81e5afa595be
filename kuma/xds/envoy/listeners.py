"""Listener and filter chain builders (Kuma's `pkg/xds/envoy/listeners`, in Envoy's v3 API).

    listener = (
        listener_builder()
        .configure(
            outbound_listener("outbound:127.0.0.1:18080", "127.0.0.1", 18080),
            filter_chain(filter_chain_builder().configure(tcp_proxy("backend", subsets))),
            transparent_proxying(networking.transparent_proxying),
        )
        .build()
    )

Filter chain configurers work on a `FilterChainDraft`: the network filters are kept as plain
messages until `build()` packs them into `typed_config`, so a later configurer (routes, gRPC
stats, and later RBAC, fault injection, tracing, access logs) can amend an earlier one's
HttpConnectionManager or TcpProxy in place instead of unpacking and repacking it.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.core.v3 import base_pb2, config_source_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.rbac.v3 import rbac_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.config.trace.v3 import zipkin_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2
from envoy.extensions.access_loggers.grpc.v3 import als_pb2
from envoy.extensions.filters.common.fault.v3 import fault_pb2 as common_fault_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.grpc_stats.v3 import config_pb2 as grpc_stats_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2 as network_rbac_pb2
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.type.v3 import percent_pb2

from kuma.model.selectors import MATCH_ALL, SERVICE_TAG
from kuma.xds.envoy.accesslog import AccessLogFormat, parse_format
from kuma.xds.envoy.common import (
    TAGS_HEADER,
    Builder,
    ClusterSubset,
    Configurer,
    lb_metadata,
    pack,
)
from kuma.xds.envoy.routes import (
    common_route_configuration,
    common_virtual_host,
    default_route,
    reset_tags_header,
    route_configuration_builder,
    tags_header,
    virtual_host,
    virtual_host_builder,
)
from kuma.xds.envoy.tls import service_spiffe_id
from kuma.xds.names import (
    ACCESS_LOG_SINK,
    inbound_route_name,
    outbound_route_name,
    sanitize_metric,
    tracing_cluster_name,
)

__all__ = [
    "FAULT",
    "FILE_ACCESS_LOG",
    "GRPC_RETRY_ON_ALL",
    "GRPC_STATS",
    "HTTP_CONNECTION_MANAGER",
    "HTTP_GRPC_ACCESS_LOG",
    "HTTP_RETRY_ON_DEFAULT",
    "HTTP_RETRY_ON_STATUS_CODES",
    "NETWORK_RBAC",
    "ROUTER",
    "TCP_GRPC_ACCESS_LOG",
    "TCP_PROXY",
    "ZIPKIN",
    "FilterChainConfigurer",
    "FilterChainDraft",
    "ListenerConfigurer",
    "TrafficDirection",
    "access_log",
    "bandwidth_to_kbps",
    "fault_injection",
    "fault_injection_regex",
    "filter_chain",
    "filter_chain_builder",
    "fractional_percent",
    "grpc_stats",
    "http_access_log",
    "http_connection_manager",
    "http_inbound_route",
    "http_outbound_route",
    "inbound_listener",
    "listener_builder",
    "max_connect_attempts",
    "network_access_log",
    "network_rbac",
    "original_dst_forwarder",
    "outbound_listener",
    "retry",
    "server_side_mtls",
    "tcp_proxy",
    "timeout",
    "tracing",
    "transparent_proxying",
    "zipkin_collector",
]

# Canonical v3 filter names.
TCP_PROXY = "envoy.filters.network.tcp_proxy"
HTTP_CONNECTION_MANAGER = "envoy.filters.network.http_connection_manager"
ROUTER = "envoy.filters.http.router"
GRPC_STATS = "envoy.filters.http.grpc_stats"
FAULT = "envoy.filters.http.fault"
NETWORK_RBAC = "envoy.filters.network.rbac"
FILE_ACCESS_LOG = "envoy.access_loggers.file"
HTTP_GRPC_ACCESS_LOG = "envoy.access_loggers.http_grpc"
TCP_GRPC_ACCESS_LOG = "envoy.access_loggers.tcp_grpc"
ZIPKIN = "envoy.tracers.zipkin"

_ROUTER_CONFIG = pack(router_pb2.Router())
_GRPC_STATS_CONFIG = pack(
    grpc_stats_pb2.FilterConfig(emit_filter_state=True, stats_for_all_methods={"value": True})
)

Listener = listener_pb2.Listener
ListenerConfigurer = Configurer[listener_pb2.Listener]


class FilterChainDraft:
    """A filter chain under construction: `chain` (match, transport socket, ...) plus the
    ordered network filters as `(name, config message)` pairs."""

    __slots__ = ("chain", "filters")

    def __init__(self) -> None:
        self.chain = listener_components_pb2.FilterChain()
        self.filters: list[tuple[str, Any]] = []

    def add_filter(self, name: str, config: Any, *, first: bool = False) -> None:
        if first:
            self.filters.insert(0, (name, config))
        else:
            self.filters.append((name, config))

    def find(self, name: str) -> Any | None:
        for filter_name, config in self.filters:
            if filter_name == name:
                return config
        return None

    def http_connection_manager(self) -> hcm_pb2.HttpConnectionManager:
        """The chain's HttpConnectionManager; configure one before asking for it."""
        hcm = self.find(HTTP_CONNECTION_MANAGER)
        if hcm is None:
            raise ValueError("the filter chain has no HttpConnectionManager to configure")
        return hcm

    def tcp_proxy(self) -> tcp_proxy_pb2.TcpProxy:
        """The chain's TcpProxy; configure one before asking for it."""
        proxy = self.find(TCP_PROXY)
        if proxy is None:
            raise ValueError("the filter chain has no TcpProxy to configure")
        return proxy

    def to_proto(self) -> listener_components_pb2.FilterChain:
        for name, config in self.filters:
            network_filter = self.chain.filters.add()
            network_filter.name = name
            network_filter.typed_config.Pack(config)
        return self.chain


FilterChainConfigurer = Configurer[FilterChainDraft]


def listener_builder() -> Builder[listener_pb2.Listener]:
    return Builder(Listener)


def filter_chain_builder() -> Builder[FilterChainDraft]:
    return Builder(FilterChainDraft)


# -- listener configurers -----------------------------------------------------------------------


def _listener(
    name: str, address: str, port: int, direction: int
) -> Configurer[listener_pb2.Listener]:
    def configure(listener: listener_pb2.Listener) -> None:
        listener.name = name
        listener.traffic_direction = direction
        socket = listener.address.socket_address
        socket.address = address
        socket.port_value = port

    return configure


def inbound_listener(name: str, address: str, port: int) -> ListenerConfigurer:
    return _listener(name, address, port, base_pb2.INBOUND)


def outbound_listener(name: str, address: str, port: int) -> ListenerConfigurer:
    return _listener(name, address, port, base_pb2.OUTBOUND)


def filter_chain(builder: Builder[FilterChainDraft]) -> ListenerConfigurer:
    def configure(listener: listener_pb2.Listener) -> None:
        listener.filter_chains.append(builder.build().to_proto())

    return configure


def transparent_proxying(tp: Any | None) -> ListenerConfigurer | None:
    """With both redirect ports set, iptables sends traffic to the passthrough listeners, which
    hand each connection to the listener of its original destination: such listeners must not
    bind their own sockets (v2's `deprecated_v1.bind_to_port: false`, v3's `bind_to_port`)."""
    if tp is None or not (tp.redirect_port_outbound and tp.redirect_port_inbound):
        return None
    return _no_bind


def _no_bind(listener: listener_pb2.Listener) -> None:
    listener.bind_to_port.value = False


def original_dst_forwarder(listener: listener_pb2.Listener) -> None:
    """Hand accepted connections to the listener matching their original destination."""
    listener.use_original_dst.value = True


# -- filter chain configurers ------------------------------------------------------------------


def tcp_proxy(stat_name: str, subsets: Sequence[ClusterSubset]) -> FilterChainConfigurer:
    """TcpProxy to one cluster (plus a metadata match for a tagged subset), or weighted
    clusters each with its own metadata match."""

    def configure(draft: FilterChainDraft) -> None:
        proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=sanitize_metric(stat_name))
        if len(subsets) == 1:
            proxy.cluster = subsets[0].cluster
            lb_metadata(subsets[0].tags, proxy.metadata_match)
        else:
            for subset in subsets:
                weighted = proxy.weighted_clusters.clusters.add()
                weighted.name = subset.cluster
                weighted.weight = subset.weight
                lb_metadata(subset.tags, weighted.metadata_match)
        draft.add_filter(TCP_PROXY, proxy)

    return configure


def http_connection_manager(stat_name: str) -> FilterChainConfigurer:
    """HttpConnectionManager (codec AUTO) with the router filter; routes come from another
    configurer."""

    def configure(draft: FilterChainDraft) -> None:
        hcm = hcm_pb2.HttpConnectionManager(stat_prefix=sanitize_metric(stat_name))
        router = hcm.http_filters.add()
        router.name = ROUTER
        router.typed_config.CopyFrom(_ROUTER_CONFIG)
        draft.add_filter(HTTP_CONNECTION_MANAGER, hcm)

    return configure


def _prepend_http_filter(hcm: hcm_pb2.HttpConnectionManager, name: str, typed_config: Any) -> None:
    existing = [hcm_pb2.HttpFilter() for _ in hcm.http_filters]
    for copy, original in zip(existing, hcm.http_filters, strict=True):
        copy.CopyFrom(original)
    del hcm.http_filters[:]
    first = hcm.http_filters.add()
    first.name = name
    first.typed_config.CopyFrom(typed_config)
    hcm.http_filters.extend(existing)


def grpc_stats(draft: FilterChainDraft) -> None:
    """gRPC per-method stats, placed before the other HTTP filters."""
    _prepend_http_filter(draft.http_connection_manager(), GRPC_STATS, _GRPC_STATS_CONFIG)


def _set_route_config(draft: FilterChainDraft, rc: route_pb2.RouteConfiguration) -> None:
    draft.http_connection_manager().route_config.CopyFrom(rc)


def http_inbound_route(service: str, cluster: ClusterSubset) -> FilterChainConfigurer:
    """Inline route config `inbound:<service>`: everything to the local cluster, with
    `x-kuma-tags` removed."""

    def configure(draft: FilterChainDraft) -> None:
        rc = (
            route_configuration_builder()
            .configure(
                common_route_configuration(inbound_route_name(service)),
                reset_tags_header,
                virtual_host(
                    virtual_host_builder().configure(
                        common_virtual_host(service), default_route([cluster])
                    )
                ),
            )
            .build()
        )
        _set_route_config(draft, rc)

    return configure


def http_outbound_route(
    service: str,
    subsets: Iterable[ClusterSubset],
    source_tags: Mapping[str, Sequence[str]],
    request_timeout: dt.timedelta | None = None,
) -> FilterChainConfigurer:
    """Inline route config `outbound:<service>`: everything to the route's subsets, with the
    source dataplane's tags added as `x-kuma-tags`. `request_timeout` (a Timeout policy's
    `http.requestTimeout`; zero disables Envoy's default 15 s) sets the route's timeout."""
    subsets = list(subsets)

    def configure(draft: FilterChainDraft) -> None:
        rc = (
            route_configuration_builder()
            .configure(
                common_route_configuration(outbound_route_name(service)),
                tags_header(source_tags),
                virtual_host(
                    virtual_host_builder().configure(
                        common_virtual_host(service), default_route(subsets, request_timeout)
                    )
                ),
            )
            .build()
        )
        _set_route_config(draft, rc)

    return configure


# -- mTLS and TrafficPermission -----------------------------------------------------------------


def server_side_mtls(socket: base_pb2.TransportSocket | None) -> FilterChainConfigurer | None:
    """Terminate the mesh's mTLS on this chain (see `kuma.xds.envoy.tls`); None: mTLS off."""
    if socket is None:
        return None

    def configure(draft: FilterChainDraft) -> None:
        draft.chain.transport_socket.CopyFrom(socket)

    return configure


def network_rbac(
    stat_name: str, enabled: bool, mesh: str, permission: Any | None
) -> FilterChainConfigurer | None:
    """TrafficPermission as Envoy's network RBAC filter, placed first in the chain.

    Only with mTLS (`enabled`): the peer's identity is its certificate's URI SAN. The policy
    allows every source of `permission` (`*`: anyone of the mesh; else the principal
    `spiffe://<mesh>/<source service>`); without a permission, `rules: {}` denies everything.
    """
    if not enabled:
        return None
    config = network_rbac_pb2.RBAC(stat_prefix=f"{sanitize_metric(stat_name)}.")
    config.rules.SetInParent()
    if permission is not None:
        config.rules.action = rbac_pb2.RBAC.ALLOW
        policy = config.rules.policies[permission.meta.name]
        policy.permissions.add(any=True)
        for source in permission.spec.sources:
            service = source.match.get(SERVICE_TAG, "")
            if service == MATCH_ALL:
                policy.principals.add(any=True)
            else:
                principal = policy.principals.add()
                principal.authenticated.principal_name.exact = service_spiffe_id(
                    permission.meta.mesh or mesh, service
                )

    def configure(draft: FilterChainDraft) -> None:
        draft.add_filter(NETWORK_RBAC, config, first=True)

    return configure


# -- FaultInjection ----------------------------------------------------------------------------


def fractional_percent(percentage: float | None) -> percent_pb2.FractionalPercent:
    """A percentage (0-100) with the coarsest exact denominator: hundred, ten thousand or
    million (rounded). Kuma 0.7.3 multiplied by 10,000 for TEN_THOUSAND, which turned 50.5 into
    5050%; kuma-py writes 5050 / 10,000."""
    value = percentage or 0.0
    fp = percent_pb2.FractionalPercent
    if math.floor(value) == value:
        return fp(numerator=int(value), denominator=fp.HUNDRED)
    hundredths = value * 100
    if abs(hundredths - round(hundredths)) < 1e-9:
        return fp(numerator=round(hundredths), denominator=fp.TEN_THOUSAND)
    return fp(numerator=round(value * 10_000), denominator=fp.MILLION)


REGEX_MAX_PROGRAM_SIZE = 500
"""Kuma's limit for the `x-kuma-tags` regexes of fault injection."""

_BANDWIDTH = re.compile(r"(\d*)\s?([gmk]?bps)")
_KBPS_FACTOR = {"kbps": 1, "mbps": 1000, "gbps": 1_000_000}


def bandwidth_to_kbps(limit: str) -> int:
    """`50 mbps` -> 50000 (Kuma's units: kbps, mbps, gbps)."""
    m = _BANDWIDTH.search(limit)
    if m is None or not m.group(1) or m.group(2) not in _KBPS_FACTOR:
        raise ValueError(f"invalid bandwidth {limit!r}: expected e.g. 512kbps, 50mbps, 1gbps")
    return int(m.group(1)) * _KBPS_FACTOR[m.group(2)]


def _matching_regex(selector: Mapping[str, str]) -> str:
    expr = ""
    for key in sorted(selector):
        value = selector[key]
        value_expr = "" if value == MATCH_ALL else f"[^&]*{value}[,&]"
        expr += f"&{key}=" + value_expr.replace(".", "\\.") + ".*"
    return ".*" + expr


def fault_injection_regex(sources: Sequence[Mapping[str, str]]) -> str:
    """The `x-kuma-tags` regex matching requests from any of `sources` (Kuma's)."""
    parts = [_matching_regex(s) for s in sources]
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0]
    return "(" + "|".join(parts) + ")"


def fault_injection(
    conf: Any | None, sources: Sequence[Mapping[str, str]]
) -> FilterChainConfigurer | None:
    """Envoy's HTTP fault filter from a FaultInjection (first among the HTTP filters), applied
    only to requests whose `x-kuma-tags` header (set by the source's outbound) matches one of
    the policy's sources."""
    if conf is None:
        return None
    fault = fault_pb2.HTTPFault()
    if conf.delay is not None:
        if conf.delay.value is not None:
            fault.delay.fixed_delay.FromTimedelta(conf.delay.value)
        fault.delay.percentage.CopyFrom(fractional_percent(conf.delay.percentage))
    if conf.abort is not None:
        fault.abort.http_status = conf.abort.http_status or 0
        fault.abort.percentage.CopyFrom(fractional_percent(conf.abort.percentage))
    if conf.response_bandwidth is not None:
        rate: common_fault_pb2.FaultRateLimit = fault.response_rate_limit
        rate.fixed_limit.limit_kbps = bandwidth_to_kbps(conf.response_bandwidth.limit or "")
        rate.percentage.CopyFrom(fractional_percent(conf.response_bandwidth.percentage))
    header = fault.headers.add(name=TAGS_HEADER)
    regex = header.string_match.safe_regex
    regex.regex = fault_injection_regex(sources)
    # Several sources make a regex bigger than RE2's default program size limit (100).
    regex.google_re2.max_program_size.value = REGEX_MAX_PROGRAM_SIZE
    packed = pack(fault)

    def configure(draft: FilterChainDraft) -> None:
        _prepend_http_filter(draft.http_connection_manager(), FAULT, packed)

    return configure


# -- TrafficTrace -------------------------------------------------------------------------------


def zipkin_collector(conf: Mapping[str, Any]) -> tuple[str, int, str]:
    """`(host, port, path)` of a zipkin backend's `conf.url` (port defaults by scheme)."""
    url = str(conf.get("url", ""))
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"invalid URL of Zipkin: {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid URL of Zipkin: {url!r}") from None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return parts.hostname, port, parts.path or "/"


def _zipkin_version(conf: Mapping[str, Any]) -> int:
    version = zipkin_pb2.ZipkinConfig
    if conf.get("apiVersion") == "httpProto":
        return int(version.HTTP_PROTO)
    # Envoy's v3 API dropped zipkin's v1 JSON (`httpJsonV1`, `/api/v1/spans`): v2 JSON it is.
    return int(version.HTTP_JSON)


def tracing(backend: Any | None) -> FilterChainConfigurer | None:
    """Tracing on the HttpConnectionManager from a mesh tracing backend (zipkin), reporting to
    cluster `tracing:<backend name>`."""
    if backend is None:
        return None
    tracing_config = hcm_pb2.HttpConnectionManager.Tracing()
    if backend.sampling is not None:
        tracing_config.overall_sampling.value = backend.sampling
    if backend.type == "zipkin":
        conf = backend.conf.to_dict() if backend.conf is not None else {}
        _, _, path = zipkin_collector(conf)
        zipkin = zipkin_pb2.ZipkinConfig(
            collector_cluster=tracing_cluster_name(backend.name),
            collector_endpoint=path,
            collector_endpoint_version=_zipkin_version(conf),
        )
        zipkin.trace_id_128bit = bool(conf.get("traceId128bit", False))
        tracing_config.provider.name = ZIPKIN
        tracing_config.provider.typed_config.Pack(zipkin)

    def configure(draft: FilterChainDraft) -> None:
        draft.http_connection_manager().tracing.CopyFrom(tracing_config)

    return configure


# -- TrafficLog ---------------------------------------------------------------------------------


class TrafficDirection:
    OUTBOUND = "OUTBOUND"
    INBOUND = "INBOUND"
    UNSPECIFIED = "UNSPECIFIED"


@functools.lru_cache(maxsize=512)
def _parsed(text: str) -> AccessLogFormat:
    return parse_format(text)


def access_log(
    backend: Any,
    default_format: str,
    variables: Mapping[str, str],
    *,
    http: bool,
) -> accesslog_pb2.AccessLog:
    """An Envoy AccessLog for a mesh logging backend (`file` or `tcp`).

    The format (the backend's, else `default_format`, always ending with a newline) has Kuma's
    placeholders bound from `variables`. A file backend is Envoy's file logger; a TCP backend
    goes through Envoy's gRPC access logger to the `access_log_sink` cluster (kuma-dp's access
    log server), which gets `<address>;<format>` as the log name and sends the rendered lines
    to the address. Raises ValueError (AccessLogFormatError) for a bad format.
    """
    # Kuma appends a newline to the backend's format, and to its defaults, which already end
    # with one (so each default entry was followed by an empty line); kuma-py writes one.
    text = backend.format + "\n" if backend.format else default_format
    fmt = _parsed(text).interpolate(variables)
    conf = backend.conf.to_dict() if backend.conf is not None else {}
    log = accesslog_pb2.AccessLog()
    if backend.type == "file":
        file_log = file_pb2.FileAccessLog(path=str(conf.get("path", "")))
        file_log.log_format.text_format_source.inline_string = str(fmt)
        log.name = FILE_ACCESS_LOG
        log.typed_config.Pack(file_log)
        return log
    if backend.type != "tcp":
        raise ValueError(f"unknown logging backend type {backend.type!r}")
    common = als_pb2.CommonGrpcAccessLogConfig(
        log_name=f"{conf.get('address', '')};{fmt}",
        transport_api_version=config_source_pb2.V3,
    )
    common.grpc_service.envoy_grpc.cluster_name = ACCESS_LOG_SINK
    common.filter_state_objects_to_log.extend(fmt.filter_state_keys)
    if http:
        http_config = als_pb2.HttpGrpcAccessLogConfig(common_config=common)
        http_config.additional_request_headers_to_log.extend(fmt.request_headers)
        http_config.additional_response_headers_to_log.extend(fmt.response_headers)
        http_config.additional_response_trailers_to_log.extend(fmt.response_trailers)
        log.name = HTTP_GRPC_ACCESS_LOG
        log.typed_config.Pack(http_config)
    else:
        log.name = TCP_GRPC_ACCESS_LOG
        log.typed_config.Pack(als_pb2.TcpGrpcAccessLogConfig(common_config=common))
    return log


def http_access_log(log: accesslog_pb2.AccessLog | None) -> FilterChainConfigurer | None:
    """Log every request of the chain's HttpConnectionManager with `log`."""
    if log is None:
        return None

    def configure(draft: FilterChainDraft) -> None:
        draft.http_connection_manager().access_log.append(log)

    return configure


def network_access_log(log: accesslog_pb2.AccessLog | None) -> FilterChainConfigurer | None:
    """Log every connection of the chain's TcpProxy with `log`."""
    if log is None:
        return None

    def configure(draft: FilterChainDraft) -> None:
        draft.tcp_proxy().access_log.append(log)

    return configure


# -- Retry and Timeout (Kuma 1.1) ---------------------------------------------------------------

HTTP_RETRY_ON_DEFAULT = "gateway-error,connect-failure,refused-stream"
HTTP_RETRY_ON_STATUS_CODES = "connect-failure,refused-stream,retriable-status-codes"
GRPC_RETRY_ON_ALL = (
    "cancelled,connect-failure,gateway-error,refused-stream,reset,resource-exhausted,unavailable"
)
_GRPC_RETRY_ON = ("cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable")


def _retry_policy(conf: Any, grpc: bool) -> route_components_pb2.RetryPolicy:
    policy = route_components_pb2.RetryPolicy(
        retry_on=GRPC_RETRY_ON_ALL if grpc else HTTP_RETRY_ON_DEFAULT
    )
    if conf.per_try_timeout is not None:
        policy.per_try_timeout.FromTimedelta(conf.per_try_timeout)
    if conf.num_retries is not None:
        policy.num_retries.value = conf.num_retries
    if conf.back_off is not None:
        if conf.back_off.base_interval is not None:
            policy.retry_back_off.base_interval.FromTimedelta(conf.back_off.base_interval)
        if conf.back_off.max_interval is not None:
            policy.retry_back_off.max_interval.FromTimedelta(conf.back_off.max_interval)
        policy.retry_back_off.SetInParent()
    if grpc:
        if conf.retry_on:
            policy.retry_on = ",".join(
                _GRPC_RETRY_ON[int(v)] if 0 <= int(v) < len(_GRPC_RETRY_ON) else str(v)
                for v in conf.retry_on
            )
    elif conf.retriable_status_codes:
        policy.retry_on = HTTP_RETRY_ON_STATUS_CODES
        policy.retriable_status_codes.extend(conf.retriable_status_codes)
    return policy


def retry(conf: Any | None, protocol: str) -> FilterChainConfigurer | None:
    """A Retry policy's `http` (for http outbounds) or `grpc` (for grpc outbounds) section as
    the retry policy of every virtual host of the outbound route (Kuma 1.1: http2 outbounds
    get none)."""
    if conf is None:
        return None
    section = conf.http if protocol == "http" else conf.grpc if protocol == "grpc" else None
    if section is None:
        return None
    policy = _retry_policy(section, grpc=protocol == "grpc")

    def configure(draft: FilterChainDraft) -> None:
        for vh in draft.http_connection_manager().route_config.virtual_hosts:
            vh.retry_policy.CopyFrom(policy)

    return configure


def max_connect_attempts(conf: Any | None) -> FilterChainConfigurer | None:
    """A Retry policy's `tcp.maxConnectAttempts` on the TcpProxy."""
    if conf is None or conf.tcp is None:
        return None
    attempts = conf.tcp.max_connect_attempts

    def configure(draft: FilterChainDraft) -> None:
        draft.tcp_proxy().max_connect_attempts.value = attempts

    return configure


def timeout(conf: Any | None, protocol: str) -> FilterChainConfigurer | None:
    """A Timeout policy's listener side (Kuma 1.1): tcp: the TcpProxy idle timeout;
    http/http2: no HttpConnectionManager idle timeout (the cluster's applies); grpc: the
    stream idle timeout. An unset duration is zero, which disables that timeout in Envoy."""
    if conf is None:
        return None

    def configure(draft: FilterChainDraft) -> None:
        if protocol in ("http", "http2"):
            hcm = draft.http_connection_manager()
            hcm.common_http_protocol_options.idle_timeout.FromTimedelta(dt.timedelta())
        elif protocol == "grpc":
            idle = conf.grpc.stream_idle_timeout if conf.grpc is not None else None
            draft.http_connection_manager().stream_idle_timeout.FromTimedelta(
                idle or dt.timedelta()
            )
        else:
            idle = conf.tcp.idle_timeout if conf.tcp is not None else None
            draft.tcp_proxy().idle_timeout.FromTimedelta(idle or dt.timedelta())

    return configure
