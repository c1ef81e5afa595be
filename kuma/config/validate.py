"""Kuma 0.7.3's configuration rules (each section's `Validate()`), reported per key.

Which sections are checked depends on the mode, as in Kuma: the xDS, bootstrap, SDS, MADS,
runtime and metrics sections in standalone and remote mode, KDS server settings in global mode,
the remote-zone settings in remote mode; the admin server, store, API server and DNS server
always. kuma-py is stricter than Kuma in a few places where Kuma would only fail later (at
bind or connect time): every port must be in [0, 65535], `store.postgres.connectionTimeout`
must be positive, CORS entries must be valid regular expressions.
"""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

from kuma.config.errors import ConfigProblem
from kuma.config.model import KumaCpConfig, Section


def _q(text: str) -> str:
    """A double-quoted string for messages, like Go's %q."""
    return json.dumps(text, ensure_ascii=False)


__all__ = [
    "ENVIRONMENTS",
    "MODES",
    "POSTGRES_TLS_MODES",
    "STORE_TYPES",
    "validate_config",
]

MODES = ("standalone", "remote", "global")
ENVIRONMENTS = ("kubernetes", "universal")
STORE_TYPES = ("postgres", "kubernetes", "memory")
POSTGRES_TLS_MODES = (
    "disable",
    "verifyNone",
    "verifyCa",
    "verifyFull",
    # libpq's names, as the defaults file of Kuma 0.7.3 documents them
    "require",
    "verify-ca",
    "verify-full",
)
_NEEDS_CA = ("verifyCa", "verifyFull", "verify-ca", "verify-full")

# Kubernetes resource.Quantity: a signed decimal number with an optional exponent or suffix.
_QUANTITY = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+|[numkMGTPE]|[KMGTPE]i)?$")
# govalidator.IsDNSName
_DNS_NAME = re.compile(
    r"^([a-zA-Z0-9_]{1}[a-zA-Z0-9_-]{0,62}){1}(\.[a-zA-Z0-9_]{1}[a-zA-Z0-9_-]{0,62})*[\._]?$"
)


class _Checks:
    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []

    def add(self, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(key, message))

    def port(self, key: str, value: int) -> None:
        if not 0 <= value <= 65535:
            self.add(key, f"must be in the range [0, 65535], got {value}")

    def positive(self, key: str, value: timedelta | int) -> None:
        if (value <= timedelta(0)) if isinstance(value, timedelta) else (value <= 0):
            self.add(key, "must be positive")

    def not_empty(self, key: str, value: str) -> None:
        if not value:
            self.add(key, "must not be empty")

    def tls_pair(self, prefix: str, cert: str, key: str, cert_name: str = "tlsCertFile") -> None:
        key_name = "tlsKeyFile"
        if not cert and key:
            self.add(f"{prefix}.{cert_name}", f"cannot be empty if {key_name} has been set")
        if not key and cert:
            self.add(f"{prefix}.{key_name}", f"cannot be empty if {cert_name} has been set")


def _one_of(values: tuple[str, ...]) -> str:
    return ", ".join(values)


def validate_config(cfg: KumaCpConfig) -> list[ConfigProblem]:
    """Every rule `cfg` breaks, as (key, message) problems; empty when valid."""
    c = _Checks()
    if cfg.mode not in MODES:
        c.add("mode", f"invalid mode {_q(cfg.mode)}. Available modes: {_one_of(MODES)}")
    if cfg.environment not in ENVIRONMENTS:
        c.add(
            "environment",
            f"invalid environment {_q(cfg.environment)}: must be either kubernetes or universal",
        )
    if cfg.mode in ("standalone", "remote"):
        _xds_server(c, cfg)
        _bootstrap_server(c, cfg)
        _sds_server(c, cfg)
        _mads_server(c, cfg)
        _runtime(c, cfg)
        _metrics(c, cfg)
    if cfg.mode == "global":
        _kds_server(c, cfg)
    if cfg.mode == "remote":
        _remote(c, cfg)
    _admin_server(c, cfg)
    _store(c, cfg)
    _api_server(c, cfg)
    _dns_server(c, cfg)
    return c.problems


def _xds_server(c: _Checks, cfg: KumaCpConfig) -> None:
    x = cfg.xds_server
    c.port("xdsServer.grpcPort", x.grpc_port)
    c.port("xdsServer.diagnosticsPort", x.diagnostics_port)
    c.positive(
        "xdsServer.dataplaneConfigurationRefreshInterval",
        x.dataplane_configuration_refresh_interval,
    )
    c.positive("xdsServer.dataplaneStatusFlushInterval", x.dataplane_status_flush_interval)
    c.tls_pair("xdsServer", x.tls_cert_file, x.tls_key_file)


def _bootstrap_server(c: _Checks, cfg: KumaCpConfig) -> None:
    b = cfg.bootstrap_server
    c.port("bootstrapServer.port", b.port)
    p = b.params
    if not p.admin_address:
        c.add("bootstrapServer.params.adminAddress", "must not be empty")
    else:
        try:
            ipaddress.ip_address(p.admin_address)
        except ValueError:
            c.add(
                "bootstrapServer.params.adminAddress",
                f"must be a valid IP address, got {_q(p.admin_address)}",
            )
    c.port("bootstrapServer.params.adminPort", p.admin_port)
    c.not_empty("bootstrapServer.params.adminAccessLogPath", p.admin_access_log_path)
    c.port("bootstrapServer.params.xdsPort", p.xds_port)
    if p.xds_connect_timeout <= timedelta(0):
        # Kuma accepts 0, but Envoy rejects a cluster whose connect_timeout is not positive
        c.add("bootstrapServer.params.xdsConnectTimeout", "must be positive")


def _sds_server(c: _Checks, cfg: KumaCpConfig) -> None:
    s = cfg.sds_server
    c.port("sdsServer.grpcPort", s.grpc_port)
    c.tls_pair("sdsServer", s.tls_cert_file, s.tls_key_file)


def _mads_server(c: _Checks, cfg: KumaCpConfig) -> None:
    m = cfg.monitoring_assignment_server
    c.port("monitoringAssignmentServer.grpcPort", m.grpc_port)
    c.positive(
        "monitoringAssignmentServer.assignmentRefreshInterval", m.assignment_refresh_interval
    )


def _runtime(c: _Checks, cfg: KumaCpConfig) -> None:
    if cfg.environment == "universal":
        c.positive(
            "runtime.universal.dataplaneCleanupAge", cfg.runtime.universal.dataplane_cleanup_age
        )
        return
    if cfg.environment != "kubernetes":
        return
    k = cfg.runtime.kubernetes
    pre = "runtime.kubernetes"
    c.port(f"{pre}.admissionServer.port", k.admission_server.port)
    c.not_empty(f"{pre}.admissionServer.certDir", k.admission_server.cert_dir)
    sc = k.injector.sidecar_container
    spre = f"{pre}.injector.sidecarContainer"
    c.not_empty(f"{spre}.image", sc.image)
    c.port(f"{spre}.redirectPortInbound", sc.redirect_port_inbound)
    c.port(f"{spre}.redirectPortOutbound", sc.redirect_port_outbound)
    c.port(f"{spre}.adminPort", sc.admin_port)
    c.positive(f"{spre}.drainTime", sc.drain_time)
    probes: list[tuple[str, Section]] = [
        ("readinessProbe", sc.readiness_probe),
        ("livenessProbe", sc.liveness_probe),
    ]
    for probe_key, probe in probes:
        for name, field in type(probe).model_fields.items():
            value = getattr(probe, name)
            if value < 1:
                c.add(f"{spre}.{probe_key}.{field.alias}", "must be >= 1")
    for kind, res in (("requests", sc.resources.requests), ("limits", sc.resources.limits)):
        for name, value in (("cpu", res.cpu), ("memory", res.memory)):
            if not _QUANTITY.match(value):
                c.add(
                    f"{spre}.resources.{kind}.{name}",
                    f"{_q(value)} is not a valid Kubernetes quantity",
                )
    c.not_empty(f"{pre}.injector.initContainer.image", k.injector.init_container.image)
    traffic = k.injector.sidecar_traffic
    for key, ports in (
        ("excludeInboundPorts", traffic.exclude_inbound_ports),
        ("excludeOutboundPorts", traffic.exclude_outbound_ports),
    ):
        for i, port in enumerate(ports):
            c.port(f"{pre}.injector.sidecarTraffic.{key}[{i}]", port)


def _metrics(c: _Checks, cfg: KumaCpConfig) -> None:
    for name, section in (("dataplane", cfg.metrics.dataplane), ("zone", cfg.metrics.zone)):
        if section.subscription_limit < 0:
            c.add(f"metrics.{name}.subscriptionLimit", "must be positive or equal 0")


def _kds_server(c: _Checks, cfg: KumaCpConfig) -> None:
    k = cfg.multicluster.global_.kds
    c.port("multicluster.global.kds.grpcPort", k.grpc_port)
    c.positive("multicluster.global.kds.refreshInterval", k.refresh_interval)
    c.tls_pair("multicluster.global.kds", k.tls_cert_file, k.tls_key_file)


def _remote(c: _Checks, cfg: KumaCpConfig) -> None:
    r = cfg.multicluster.remote
    if not r.zone:
        c.add("multicluster.remote.zone", "is mandatory in remote mode")
    elif len(r.zone) > 255 or not _DNS_NAME.match(r.zone):
        c.add("multicluster.remote.zone", f"wrong zone name {_q(r.zone)}: must be a DNS name")
    if not r.global_address:
        c.add("multicluster.remote.globalAddress", "is mandatory in remote mode")
        return
    try:
        scheme = urlsplit(r.global_address).scheme
    except ValueError as e:
        c.add("multicluster.remote.globalAddress", f"unable to parse: {e}")
        return
    if scheme not in ("grpc", "grpcs"):
        c.add(
            "multicluster.remote.globalAddress",
            f"unsupported scheme {_q(scheme)}. Use one of grpc, grpcs",
        )
    elif scheme == "grpcs" and r.kds.root_ca_file:
        key = "multicluster.remote.kds.rootCaFile"
        try:
            with open(r.kds.root_ca_file, "rb") as f:
                pem = f.read()
        except OSError as e:
            c.add(key, f"could not read certificate {r.kds.root_ca_file}: {e.strerror}")
            return
        from cryptography import x509

        try:
            x509.load_pem_x509_certificates(pem)
        except ValueError:
            c.add(key, "failed to parse root certificate")


def _admin_server(c: _Checks, cfg: KumaCpConfig) -> None:
    a = cfg.admin_server
    c.port("adminServer.local.port", a.local.port)
    p = a.public
    c.port("adminServer.public.port", p.port)
    if p.enabled:
        for key, value in (
            ("tlsCertFile", p.tls_cert_file),
            ("tlsKeyFile", p.tls_key_file),
            ("interface", p.interface),
        ):
            if not value:
                c.add(f"adminServer.public.{key}", "cannot be empty if server is enabled")


def _store(c: _Checks, cfg: KumaCpConfig) -> None:
    s = cfg.store
    if s.type not in STORE_TYPES:
        c.add(
            "store.type",
            f"invalid store type {_q(s.type)}: must be either postgres, kubernetes or memory",
        )
    elif s.type == "kubernetes":
        c.not_empty("store.kubernetes.systemNamespace", s.kubernetes.system_namespace)
    elif s.type == "postgres":
        p = s.postgres
        pre = "store.postgres"
        c.not_empty(f"{pre}.host", p.host)
        c.port(f"{pre}.port", p.port)
        c.not_empty(f"{pre}.user", p.user)
        c.not_empty(f"{pre}.password", p.password)
        c.not_empty(f"{pre}.dbName", p.db_name)
        c.positive(f"{pre}.connectionTimeout", p.connection_timeout)
        if p.max_open_connections < 0:
            c.add(f"{pre}.maxOpenConnections", "cannot be negative")
        tls = p.tls
        if tls.mode not in POSTGRES_TLS_MODES:
            c.add(
                f"{pre}.tls.mode",
                f"invalid mode {_q(tls.mode)}: must be one of {_one_of(POSTGRES_TLS_MODES)}",
            )
        elif tls.mode in _NEEDS_CA and not tls.ca_path:
            c.add(f"{pre}.tls.caPath", f"cannot be empty in mode {tls.mode}")
        if tls.cert_path and not tls.key_path:
            c.add(f"{pre}.tls.keyPath", "cannot be empty when certPath is provided")
        if tls.key_path and not tls.cert_path:
            c.add(f"{pre}.tls.certPath", "cannot be empty when keyPath is provided")


def _api_server(c: _Checks, cfg: KumaCpConfig) -> None:
    a = cfg.api_server
    c.port("apiServer.port", a.port)
    for i, pattern in enumerate(a.cors_allowed_domains):
        try:
            re.compile(pattern)
        except re.error as e:
            c.add(f"apiServer.corsAllowedDomains[{i}]", f"invalid regular expression: {e}")


def _dns_server(c: _Checks, cfg: KumaCpConfig) -> None:
    d = cfg.dns_server
    c.port("dnsServer.port", d.port)
    try:
        if "/" not in d.cidr:
            raise ValueError(d.cidr)
        ipaddress.ip_network(d.cidr, strict=False)
    except ValueError:
        c.add("dnsServer.CIDR", f"must be a valid CIDR, got {_q(d.cidr)}")
