"""The kuma-cp configuration: one pydantic model per section of Kuma 0.7.3's config file.

Python attributes are snake_case (`config.store.postgres.db_name`); the YAML/JSON keys are
Kuma's camelCase (`store.postgres.dbName`), and every setting names its environment variable
explicitly (`KUMA_STORE_POSTGRES_DB_NAME`), Kuma's oddities included. `iter_settings()` walks
that metadata; the loader, the docs table and the tests are all driven by it.

Defaults here equal the packaged `kuma-cp.defaults.yaml` (a test holds them together).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from kuma.config.duration import format_duration

__all__ = [
    "SANITIZED_VALUE",
    "KumaCpConfig",
    "Section",
    "SettingInfo",
    "iter_settings",
    "leaf_kind",
]

SANITIZED_VALUE = "*****"
"""What `GET /config` shows instead of a secret (Kuma's `config.SanitizedValue`)."""

_SECONDS = timedelta(seconds=1)


def setting(
    default: Any,
    *,
    env: str,
    doc: str,
    alias: str | None = None,
    omit_empty: bool = False,
    secret: bool = False,
) -> Any:
    """A leaf setting: its default, its environment variable, and what it does."""
    extra: dict[str, Any] = {"env": env}
    if omit_empty:
        extra["omitEmpty"] = True  # Kuma's `yaml:",omitempty"`: left out of /config when empty
    if secret:
        extra["secret"] = True
    if isinstance(default, list | dict):
        return Field(
            default_factory=lambda: copy.deepcopy(default),
            alias=alias,
            description=doc,
            json_schema_extra=extra,
        )
    return Field(default, alias=alias, description=doc, json_schema_extra=extra)


def section(cls: type[Section], doc: str, *, alias: str | None = None) -> Any:
    """A nested section, defaulting to its own defaults."""
    return Field(default_factory=cls, alias=alias, description=doc)


class Section(BaseModel):
    """Base of every config section: camelCase keys, no unknown attributes."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
        validate_assignment=True,
    )


# -- store ------------------------------------------------------------------------------------


class PostgresTlsConfig(Section):
    mode: str = setting(
        "disable",
        env="KUMA_STORE_POSTGRES_TLS_MODE",
        doc="TLS to PostgreSQL: disable, verifyNone, verifyCa or verifyFull (libpq's "
        "require, verify-ca and verify-full are accepted as synonyms).",
    )
    cert_path: str = setting(
        "", env="KUMA_STORE_POSTGRES_TLS_CERT_PATH", doc="Client certificate (PEM)."
    )
    key_path: str = setting(
        "", env="KUMA_STORE_POSTGRES_TLS_KEY_PATH", doc="Key of the client certificate (PEM)."
    )
    ca_path: str = setting(
        "",
        env="KUMA_STORE_POSTGRES_TLS_CA_PATH",
        doc="CA that signed the server's certificate; required by verifyCa and verifyFull.",
    )


class PostgresStoreConfig(Section):
    host: str = setting("127.0.0.1", env="KUMA_STORE_POSTGRES_HOST", doc="Database host.")
    port: int = setting(15432, env="KUMA_STORE_POSTGRES_PORT", doc="Database port.")
    user: str = setting("kuma", env="KUMA_STORE_POSTGRES_USER", doc="Database user.")
    password: str = setting(
        "kuma",
        env="KUMA_STORE_POSTGRES_PASSWORD",
        doc="Password of the database user; GET /config masks it.",
        secret=True,
    )
    db_name: str = setting("kuma", env="KUMA_STORE_POSTGRES_DB_NAME", doc="Database name.")
    connection_timeout: int = setting(
        5,
        env="KUMA_STORE_POSTGRES_CONNECTION_TIMEOUT",
        doc="Seconds allowed for opening one connection.",
    )
    max_open_connections: int = setting(
        0,
        env="KUMA_STORE_POSTGRES_MAX_OPEN_CONNECTIONS",
        doc="Upper bound of the connection pool; 0 means kuma-py's default pool size (20).",
    )
    tls: PostgresTlsConfig = section(PostgresTlsConfig, "TLS to the database.")

    @property
    def connection_timeout_seconds(self) -> float:
        return float(self.connection_timeout)


class KubernetesStoreConfig(Section):
    system_namespace: str = setting(
        "kuma-system",
        env="KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE",
        doc="Namespace the control plane runs in.",
    )


class CacheStoreConfig(Section):
    enabled: bool = setting(
        True, env="KUMA_STORE_CACHE_ENABLED", doc="Cache read-only store queries."
    )
    expiration_time: timedelta = setting(
        _SECONDS,
        env="KUMA_STORE_CACHE_EXPIRATION_TIME",
        doc="How long a cached read stays valid.",
    )


class StoreConfig(Section):
    type: str = setting(
        "memory", env="KUMA_STORE_TYPE", doc="Where resources live: memory, postgres or kubernetes."
    )
    kubernetes: KubernetesStoreConfig = section(
        KubernetesStoreConfig, "Used when type is kubernetes."
    )
    postgres: PostgresStoreConfig = section(PostgresStoreConfig, "Used when type is postgres.")
    cache: CacheStoreConfig = section(CacheStoreConfig, "Read cache.")


# -- servers ------------------------------------------------------------------------------------


class BootstrapParamsConfig(Section):
    admin_address: str = setting(
        "127.0.0.1",
        env="KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ADDRESS",
        doc="IP address Envoy's admin interface listens on.",
    )
    admin_port: int = setting(
        0,
        env="KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_PORT",
        doc="Port of Envoy's admin interface; 0 turns it off unless kuma-dp picks one.",
    )
    admin_access_log_path: str = setting(
        "/dev/null",
        env="KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ACCESS_LOG_PATH",
        doc="Access log of Envoy's admin interface.",
    )
    xds_host: str = setting(
        "",
        env="KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST",
        doc="Host Envoy dials for xDS; empty means general.advertisedHostname.",
    )
    xds_port: int = setting(
        0,
        env="KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT",
        doc="Port Envoy dials for xDS; 0 means xdsServer.grpcPort.",
    )
    xds_connect_timeout: timedelta = setting(
        _SECONDS,
        env="KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_CONNECT_TIMEOUT",
        doc="Envoy's connect timeout to the xDS server.",
    )


class BootstrapServerConfig(Section):
    port: int = setting(
        5682, env="KUMA_BOOTSTRAP_SERVER_PORT", doc="Port of the bootstrap server (HTTP)."
    )
    params: BootstrapParamsConfig = section(
        BootstrapParamsConfig, "What goes into the Envoy bootstrap handed to kuma-dp."
    )


class SdsServerConfig(Section):
    grpc_port: int = setting(
        5677, env="KUMA_SDS_SERVER_GRPC_PORT", doc="Port of the SDS server (gRPC over TLS)."
    )
    tls_cert_file: str = setting(
        "",
        env="KUMA_SDS_SERVER_TLS_CERT_FILE",
        doc="Certificate of the SDS server (PEM); generated at start when empty.",
    )
    tls_key_file: str = setting(
        "", env="KUMA_SDS_SERVER_TLS_KEY_FILE", doc="Key of the SDS server certificate."
    )
    dataplane_configuration_refresh_interval: timedelta = setting(
        _SECONDS,
        env="KUMA_SDS_SERVER_DATAPLANE_CONFIGURATION_REFRESH_INTERVAL",
        doc="How often SDS secrets are recomputed for connected dataplanes.",
    )


class MonitoringAssignmentServerConfig(Section):
    grpc_port: int = setting(
        5676,
        env="KUMA_MONITORING_ASSIGNMENT_SERVER_GRPC_PORT",
        doc="Port of the Monitoring Assignment Discovery Service (gRPC).",
    )
    assignment_refresh_interval: timedelta = setting(
        _SECONDS,
        env="KUMA_MONITORING_ASSIGNMENT_SERVER_ASSIGNMENT_REFRESH_INTERVAL",
        doc="Pace of the full reload of monitoring assignments (at most once a minute); changes are pushed at once.",
    )


class DataplaneTokenApiConfig(Section):
    enabled: bool = setting(
        True,
        env="KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED",
        doc="Serve dataplane tokens and require them from kuma-dp.",
    )


class AdminServerApisConfig(Section):
    dataplane_token: DataplaneTokenApiConfig = section(
        DataplaneTokenApiConfig, "The dataplane token API."
    )


class LocalAdminServerConfig(Section):
    port: int = setting(
        5679,
        env="KUMA_ADMIN_SERVER_LOCAL_PORT",
        doc="Port of the admin server on 127.0.0.1 (secrets, tokens).",
    )


class PublicAdminServerConfig(Section):
    enabled: bool = setting(
        False,
        env="KUMA_ADMIN_SERVER_PUBLIC_ENABLED",
        doc="Also serve the admin API over HTTPS on a public interface.",
    )
    interface: str = setting(
        "", env="KUMA_ADMIN_SERVER_PUBLIC_INTERFACE", doc="Interface of the public listener."
    )
    port: int = setting(
        0,
        env="KUMA_ADMIN_SERVER_PUBLIC_PORT",
        doc="Port of the public listener; 0 means adminServer.local.port.",
    )
    tls_cert_file: str = setting(
        "", env="KUMA_ADMIN_SERVER_PUBLIC_TLS_CERT_FILE", doc="Server certificate (PEM)."
    )
    tls_key_file: str = setting(
        "", env="KUMA_ADMIN_SERVER_PUBLIC_TLS_KEY_FILE", doc="Server key (PEM)."
    )
    client_certs_dir: str = setting(
        "",
        env="KUMA_ADMIN_SERVER_PUBLIC_CLIENT_CERTS_DIR",
        doc="Directory of client certificates (*.pem) allowed to call the public listener.",
    )


class AdminServerConfig(Section):
    apis: AdminServerApisConfig = section(AdminServerApisConfig, "APIs of the admin server.")
    local: LocalAdminServerConfig = section(LocalAdminServerConfig, "The loopback listener.")
    public: PublicAdminServerConfig = section(PublicAdminServerConfig, "The public listener.")


class XdsServerConfig(Section):
    grpc_port: int = setting(
        5678, env="KUMA_XDS_SERVER_GRPC_PORT", doc="Port of the xDS (ADS) server (gRPC)."
    )
    diagnostics_port: int = setting(
        5680,
        env="KUMA_XDS_SERVER_DIAGNOSTICS_PORT",
        doc="Port of the diagnostics server (GET /ready, GET /healthy).",
    )
    dataplane_configuration_refresh_interval: timedelta = setting(
        _SECONDS,
        env="KUMA_XDS_SERVER_DATAPLANE_CONFIGURATION_REFRESH_INTERVAL",
        doc="How often Envoy configuration is recomputed for connected dataplanes.",
    )
    dataplane_status_flush_interval: timedelta = setting(
        _SECONDS,
        env="KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL",
        doc="How often dataplane status (DataplaneInsight) is written to the store.",
    )
    tls_cert_file: str = setting(
        "",
        env="KUMA_XDS_SERVER_TLS_CERT_FILE",
        doc="Certificate of the xDS server (PEM); plaintext when empty.",
    )
    tls_key_file: str = setting(
        "", env="KUMA_XDS_SERVER_TLS_KEY_FILE", doc="Key of the xDS server certificate."
    )


class BootstrapApiCatalogConfig(Section):
    url: str = setting(
        "",
        env="KUMA_API_SERVER_CATALOG_BOOTSTRAP_URL",
        doc="Bootstrap server URL published in /catalog; empty means "
        "http://<general.advertisedHostname>:<bootstrapServer.port>.",
    )


class MonitoringAssignmentApiCatalogConfig(Section):
    url: str = setting(
        "",
        env="KUMA_API_SERVER_CATALOG_MONITORING_ASSIGNMENT_URL",
        doc="MADS URL published in /catalog; empty means "
        "grpc://<general.advertisedHostname>:<monitoringAssignmentServer.grpcPort>.",
    )


class SdsApiCatalogConfig(Section):
    url: str = setting(
        "",
        env="KUMA_API_SERVER_CATALOG_SDS_URL",
        doc="SDS URL handed to dataplanes; empty means the xDS host on sdsServer.grpcPort.",
    )


class CatalogConfig(Section):
    bootstrap: BootstrapApiCatalogConfig = section(BootstrapApiCatalogConfig, "Bootstrap server.")
    monitoring_assignment: MonitoringAssignmentApiCatalogConfig = section(
        MonitoringAssignmentApiCatalogConfig, "Monitoring Assignment Discovery Service."
    )
    sds: SdsApiCatalogConfig = section(SdsApiCatalogConfig, "SDS server.")


class ApiServerConfig(Section):
    port: int = setting(5681, env="KUMA_API_SERVER_PORT", doc="Port of the REST API (HTTP).")
    read_only: bool = setting(
        False, env="KUMA_API_SERVER_READ_ONLY", doc="Refuse every write (PUT, DELETE)."
    )
    cors_allowed_domains: list[str] = setting(
        [".*"],
        env="KUMA_API_SERVER_CORS_ALLOWED_DOMAINS",
        doc="Regular expressions of the origins allowed by CORS (env: comma-separated).",
    )
    catalog: CatalogConfig = section(CatalogConfig, "Public URLs published by GET /catalog.")


# -- runtime ------------------------------------------------------------------------------------

_SC = "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_"


class AdmissionServerConfig(Section):
    address: str = setting(
        "",
        env="KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_ADDRESS",
        doc="Address of the admission webhook server.",
    )
    port: int = setting(
        5443,
        env="KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT",
        doc="Port of the admission webhook server.",
    )
    cert_dir: str = setting(
        "",
        env="KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR",
        doc="Directory holding tls.crt and tls.key for the webhook server.",
    )


class SidecarReadinessProbe(Section):
    initial_delay_seconds: int = setting(
        1, env=_SC + "READINESS_PROBE_INITIAL_DELAY_SECONDS", doc="Delay before the first probe."
    )
    timeout_seconds: int = setting(
        3, env=_SC + "READINESS_PROBE_TIMEOUT_SECONDS", doc="Probe timeout."
    )
    period_seconds: int = setting(
        5, env=_SC + "READINESS_PROBE_PERIOD_SECONDS", doc="Time between probes."
    )
    success_threshold: int = setting(
        1, env=_SC + "READINESS_PROBE_SUCCESS_THRESHOLD", doc="Successes that make it ready."
    )
    failure_threshold: int = setting(
        12, env=_SC + "READINESS_PROBE_FAILURE_THRESHOLD", doc="Failures that make it unready."
    )


class SidecarLivenessProbe(Section):
    initial_delay_seconds: int = setting(
        60, env=_SC + "LIVENESS_PROBE_INITIAL_DELAY_SECONDS", doc="Delay before the first probe."
    )
    timeout_seconds: int = setting(
        3, env=_SC + "LIVENESS_PROBE_TIMEOUT_SECONDS", doc="Probe timeout."
    )
    period_seconds: int = setting(
        5, env=_SC + "LIVENESS_PROBE_PERIOD_SECONDS", doc="Time between probes."
    )
    failure_threshold: int = setting(
        12, env=_SC + "LIVENESS_PROBE_FAILURE_THRESHOLD", doc="Failures that restart it."
    )


class SidecarResourceRequests(Section):
    cpu: str = setting(
        "50m",
        env="KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU",
        doc="CPU request (Kubernetes quantity).",
    )
    memory: str = setting(
        "64Mi",
        env="KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_MEMORY",
        doc="Memory request (Kubernetes quantity).",
    )


class SidecarResourceLimits(Section):
    cpu: str = setting(
        "1000m",
        env="KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_CPU",
        doc="CPU limit (Kubernetes quantity).",
    )
    memory: str = setting(
        "512Mi",
        env="KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY",
        doc="Memory limit (Kubernetes quantity).",
    )


class SidecarResources(Section):
    requests: SidecarResourceRequests = section(SidecarResourceRequests, "Resource requests.")
    limits: SidecarResourceLimits = section(SidecarResourceLimits, "Resource limits.")


class SidecarContainer(Section):
    image: str = setting(
        "kuma/kuma-dp:latest", env=_SC + "IMAGE", doc="Image of the injected kuma-dp container."
    )
    redirect_port_inbound: int = setting(
        15006, env=_SC + "REDIRECT_PORT_INBOUND", doc="Port inbound traffic is redirected to."
    )
    redirect_port_outbound: int = setting(
        15001, env=_SC + "REDIRECT_PORT_OUTBOUND", doc="Port outbound traffic is redirected to."
    )
    uid: int = setting(5678, env=_SC + "UID", doc="User id the sidecar runs as.")
    gid: int = setting(
        5678,
        env=_SC + "GUI",
        doc="Group id the sidecar runs as (the env name's GUI typo is Kuma's).",
    )
    admin_port: int = setting(9901, env=_SC + "ADMIN_PORT", doc="Envoy admin port.")
    drain_time: timedelta = setting(
        timedelta(seconds=30), env=_SC + "DRAIN_TIME", doc="Envoy's listener drain time."
    )
    readiness_probe: SidecarReadinessProbe = section(SidecarReadinessProbe, "Readiness probe.")
    liveness_probe: SidecarLivenessProbe = section(SidecarLivenessProbe, "Liveness probe.")
    resources: SidecarResources = section(SidecarResources, "Compute resources.")


class InitContainer(Section):
    image: str = setting(
        "kuma/kuma-init:latest",
        env="KUMA_INJECTOR_INIT_CONTAINER_IMAGE",
        doc="Image of the injected kuma-init container.",
    )


class SidecarTraffic(Section):
    exclude_inbound_ports: list[int] = setting(
        [],
        env="KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS",
        doc="Inbound ports never redirected to the sidecar (env: comma-separated).",
    )
    exclude_outbound_ports: list[int] = setting(
        [],
        env="KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS",
        doc="Outbound ports never redirected to the sidecar (env: comma-separated).",
    )


class Exceptions(Section):
    labels: dict[str, str] = setting(
        {"openshift.io/build.name": "*", "openshift.io/deployer-pod-for.name": "*"},
        env="KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS",
        doc="Pods with any of these labels are never injected; * matches any value "
        "(env: k1:v1,k2:v2).",
    )


class Injector(Section):
    cni_enabled: bool = setting(
        False,
        env="KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED",
        doc="Leave traffic redirection to the Kuma CNI plugin instead of kuma-init.",
    )
    exceptions: Exceptions = section(Exceptions, "Pods that are never injected.")
    sidecar_container: SidecarContainer = section(SidecarContainer, "The kuma-dp sidecar.")
    init_container: InitContainer = section(InitContainer, "The kuma-init container.")
    sidecar_traffic: SidecarTraffic = section(SidecarTraffic, "Traffic redirection.")


class KubernetesRuntimeConfig(Section):
    admission_server: AdmissionServerConfig = section(
        AdmissionServerConfig, "Admission webhook server."
    )
    injector: Injector = section(Injector, "Sidecar injector.")


class UniversalRuntimeConfig(Section):
    dataplane_cleanup_age: timedelta = setting(
        timedelta(hours=72),
        env="KUMA_RUNTIME_UNIVERSAL_DATAPLANE_CLEANUP_AGE",
        doc="Dataplanes offline this long are deleted.",
    )


class RuntimeConfig(Section):
    kubernetes: KubernetesRuntimeConfig = section(
        KubernetesRuntimeConfig, "Used when environment is kubernetes."
    )
    universal: UniversalRuntimeConfig = section(
        UniversalRuntimeConfig, "Used when environment is universal."
    )


# -- everything else ----------------------------------------------------------------------------


class DefaultsConfig(Section):
    skip_mesh_creation: bool = setting(
        False,
        env="KUMA_DEFAULTS_SKIP_MESH_CREATION",
        doc="Do not create the `default` mesh at start.",
    )


class DataplaneMetricsConfig(Section):
    enabled: bool = setting(
        True, env="KUMA_METRICS_DATAPLANE_ENABLED", doc="Record dataplane insights."
    )
    subscription_limit: int = setting(
        10,
        env="KUMA_METRICS_DATAPLANE_SUBSCRIPTION_LIMIT",
        doc="Subscriptions kept per DataplaneInsight; 0 means all.",
    )


class ZoneMetricsConfig(Section):
    enabled: bool = setting(True, env="KUMA_METRICS_ZONE_ENABLED", doc="Record zone insights.")
    subscription_limit: int = setting(
        10,
        env="KUMA_METRICS_ZONE_SUBSCRIPTION_LIMIT",
        doc="Subscriptions kept per ZoneInsight; 0 means all.",
    )


class MetricsConfig(Section):
    dataplane: DataplaneMetricsConfig = section(DataplaneMetricsConfig, "Dataplane insights.")
    zone: ZoneMetricsConfig = section(ZoneMetricsConfig, "Zone insights.")


class ReportsConfig(Section):
    enabled: bool = setting(
        True,
        env="KUMA_REPORTS_ENABLED",
        doc="Send anonymous usage reports (kuma-py never sends any; kept for compatibility).",
    )


class GeneralConfig(Section):
    advertised_hostname: str = setting(
        "localhost",
        env="KUMA_GENERAL_ADVERTISED_HOSTNAME",
        doc="Host name other components use to reach this control plane (catalog URLs, "
        "xDS host in bootstraps).",
    )


class GuiServerConfig(Section):
    api_server_url: str = setting(
        "",
        env="KUMA_GUI_SERVER_API_SERVER_URL",
        doc="API server URL the GUI talks to; empty means this control plane's API.",
    )


class DnsServerConfig(Section):
    domain: str = setting(
        "mesh", env="KUMA_DNS_SERVER_DOMAIN", doc="Domain resolved to service VIPs."
    )
    port: int = setting(5653, env="KUMA_DNS_SERVER_PORT", doc="Port of the DNS server (UDP).")
    cidr: str = setting(
        "240.0.0.0/4",
        env="KUMA_DNS_SERVER_CIDR",
        alias="CIDR",
        doc="Range virtual IPs are allocated from.",
    )


class KdsServerConfig(Section):
    grpc_port: int = setting(
        5685,
        env="KUMA_MULTICLUSTER_GLOBAL_KDS_GRPC_PORT",
        doc="Port of the Kuma Discovery Service (gRPC over TLS).",
    )
    refresh_interval: timedelta = setting(
        _SECONDS,
        env="KUMA_MULTICLUSTER_GLOBAL_KDS_REFRESH_INTERVAL",
        doc="How often the state sent to zones is recomputed.",
    )
    tls_cert_file: str = setting(
        "", env="KUMA_MULTICLUSTER_GLOBAL_KDS_TLS_CERT_FILE", doc="KDS server certificate."
    )
    tls_key_file: str = setting(
        "", env="KUMA_MULTICLUSTER_GLOBAL_KDS_TLS_KEY_FILE", doc="KDS server key."
    )


class GlobalConfig(Section):
    poll_timeout: timedelta = setting(
        timedelta(milliseconds=500),
        env="KUMA_MULTICLUSTER_GLOBAL_POLL_TIMEOUT",
        doc="Timeout of the zone status poller.",
        omit_empty=True,
    )
    kds: KdsServerConfig = section(KdsServerConfig, "KDS server (global mode).")


class KdsClientConfig(Section):
    refresh_interval: timedelta = setting(
        _SECONDS,
        env="KUMA_MULTICLUSTER_REMOTE_KDS_REFRESH_INTERVAL",
        doc="How often the state sent to the global control plane is recomputed.",
    )
    root_ca_file: str = setting(
        "",
        env="KUMA_MULTICLUSTER_REMOTE_KDS_ROOT_CA_FILE",
        doc="CA (PEM) that verifies the global control plane's certificate.",
    )


class RemoteConfig(Section):
    zone: str = setting(
        "",
        env="KUMA_MULTICLUSTER_REMOTE_ZONE",
        doc="Name of this zone (remote mode).",
        omit_empty=True,
    )
    global_address: str = setting(
        "",
        env="KUMA_MULTICLUSTER_REMOTE_GLOBAL_ADDRESS",
        doc="KDS URL of the global control plane: grpc:// or grpcs://host:port.",
        omit_empty=True,
    )
    kds: KdsClientConfig = section(KdsClientConfig, "KDS client (remote mode).")


class MulticlusterConfig(Section):
    global_: GlobalConfig = section(GlobalConfig, "Global mode.", alias="global")
    remote: RemoteConfig = section(RemoteConfig, "Remote mode.")


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """One leaf setting, as `iter_settings()` reports it."""

    key: str
    """Dotted camelCase key: `store.postgres.dbName`."""
    path: tuple[str, ...]
    """Python attribute names leading to it: ("store", "postgres", "db_name")."""
    env: str
    doc: str
    kind: str
    """str, int, bool, duration, list[str], list[int] or map[str]str."""
    default: Any
    omit_empty: bool
    secret: bool


def _extra(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def leaf_kind(annotation: Any) -> str:
    """The loader's name for a leaf's Python type."""
    if annotation is str:
        return "str"
    if annotation is bool:
        return "bool"
    if annotation is int:
        return "int"
    if annotation is timedelta:
        return "duration"
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and args == (str,):
        return "list[str]"
    if origin is list and args == (int,):
        return "list[int]"
    if origin is dict and args == (str, str):
        return "map[str]str"
    raise TypeError(f"unsupported config setting type {annotation!r}")


def section_type(field: FieldInfo) -> type[Section] | None:
    ann = field.annotation
    if isinstance(ann, type) and issubclass(ann, Section):
        return ann
    return None


def field_key(name: str, field: FieldInfo) -> str:
    return field.alias or name


def iter_settings(
    model: type[Section] | None = None, prefix: str = "", path: tuple[str, ...] = ()
) -> Iterator[SettingInfo]:
    """Every leaf setting of `model` (default: the whole kuma-cp config), in file order."""
    model = model or KumaCpConfig
    for name, field in model.model_fields.items():
        key = prefix + field_key(name, field)
        sub = section_type(field)
        if sub is not None:
            yield from iter_settings(sub, key + ".", (*path, name))
            continue
        extra = _extra(field)
        default = field.get_default(call_default_factory=True)
        yield SettingInfo(
            key=key,
            path=(*path, name),
            env=str(extra["env"]),
            doc=field.description or "",
            kind=leaf_kind(field.annotation),
            default=default,
            omit_empty=bool(extra.get("omitEmpty")),
            secret=bool(extra.get("secret")),
        )


def _is_empty(value: Any) -> bool:
    if isinstance(value, timedelta):
        return value == timedelta(0)
    return value in ("", 0, False, None) or value == [] or value == {}


def _json_value(value: Any) -> Any:
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: value[k] for k in sorted(value)}
    return value


def _to_json(section: Section, mask_secrets: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, field in type(section).model_fields.items():
        value = getattr(section, name)
        key = field_key(name, field)
        if isinstance(value, Section):
            out[key] = _to_json(value, mask_secrets)
            continue
        extra = _extra(field)
        if extra.get("omitEmpty") and _is_empty(value):
            continue
        if mask_secrets and extra.get("secret"):
            value = SANITIZED_VALUE
        out[key] = _json_value(value)
    return {k: out[k] for k in sorted(out)}


class KumaCpConfig(Section):
    """The whole kuma-cp configuration (Kuma 0.7.3's `kuma_cp.Config`).

    Build it with `kuma.config.load_config()`; `KumaCpConfig()` is the built-in defaults.
    """

    environment: str = setting("universal", env="KUMA_ENVIRONMENT", doc="universal or kubernetes.")
    mode: str = setting(
        "standalone", env="KUMA_MODE", doc="standalone, remote or global (multicluster)."
    )
    store: StoreConfig = section(StoreConfig, "Resource store.")
    bootstrap_server: BootstrapServerConfig = section(
        BootstrapServerConfig, "Bootstrap server (Envoy bootstraps for kuma-dp)."
    )
    sds_server: SdsServerConfig = section(SdsServerConfig, "SDS server (mTLS identities).")
    monitoring_assignment_server: MonitoringAssignmentServerConfig = section(
        MonitoringAssignmentServerConfig, "MADS server (Prometheus targets)."
    )
    admin_server: AdminServerConfig = section(AdminServerConfig, "Admin server.")
    xds_server: XdsServerConfig = section(XdsServerConfig, "xDS server and diagnostics.")
    api_server: ApiServerConfig = section(ApiServerConfig, "REST API.")
    runtime: RuntimeConfig = section(RuntimeConfig, "Environment-specific settings.")
    defaults: DefaultsConfig = section(DefaultsConfig, "Resources created at start.")
    metrics: MetricsConfig = section(MetricsConfig, "Insights.")
    reports: ReportsConfig = section(ReportsConfig, "Usage reports.")
    general: GeneralConfig = section(GeneralConfig, "General settings.")
    gui_server: GuiServerConfig = section(GuiServerConfig, "GUI.")
    dns_server: DnsServerConfig = section(DnsServerConfig, "DNS server for .mesh names.")
    multicluster: MulticlusterConfig = section(MulticlusterConfig, "Multicluster modes.")

    # -- views ----------------------------------------------------------------------------------

    def to_json_dict(self, *, mask_secrets: bool = True) -> dict[str, Any]:
        """The config as `GET /config` serves it (Kuma's shape).

        camelCase keys sorted at every level, durations in Go syntax (`72h0m0s`), Kuma's
        omit-when-empty keys left out (`multicluster.remote.zone`, `...globalAddress`,
        `multicluster.global.pollTimeout`), and with `mask_secrets` the PostgreSQL password
        replaced by `*****` (the only value Kuma 0.7.3 sanitizes).
        """
        return _to_json(self, mask_secrets)

    @property
    def api_public_url(self) -> str:
        """`http://<advertisedHostname>:<apiServer.port>`: base of the API's `next` links."""
        return f"http://{self.general.advertised_hostname}:{self.api_server.port}"

    def catalog(self) -> dict[str, Any]:
        """The body of `GET /catalog` (Kuma's `catalog.Catalog`); every key is always present.

        * bootstrap.url: `apiServer.catalog.bootstrap.url`, else
          `http://<advertisedHostname>:<bootstrapServer.port>`;
        * dataplaneToken.localUrl: `http://localhost:<adminServer.local.port>` when the token
          API is enabled, else empty; publicUrl: `https://<advertisedHostname>:<public port>`
          when the public admin listener is enabled, else empty;
        * admin: the same two URLs, localUrl always set;
        * monitoringAssignment.url: `apiServer.catalog.monitoringAssignment.url`, else
          `grpc://<advertisedHostname>:<monitoringAssignmentServer.grpcPort>`.
        """
        host = self.general.advertised_hostname
        admin = self.admin_server
        local_url = f"http://localhost:{admin.local.port}"
        public_url = ""
        if admin.public.enabled:
            public_port = admin.public.port or admin.local.port
            public_url = f"https://{host}:{public_port}"
        token_enabled = admin.apis.dataplane_token.enabled
        cat = self.api_server.catalog
        return {
            "apis": {
                "bootstrap": {
                    "url": cat.bootstrap.url or f"http://{host}:{self.bootstrap_server.port}"
                },
                "dataplaneToken": {
                    "localUrl": local_url if token_enabled else "",
                    "publicUrl": public_url if token_enabled else "",
                },
                "admin": {"localUrl": local_url, "publicUrl": public_url},
                "monitoringAssignment": {
                    "url": cat.monitoring_assignment.url
                    or f"grpc://{host}:{self.monitoring_assignment_server.grpc_port}"
                },
            }
        }

    def autoconfigured(self) -> KumaCpConfig:
        """A copy with the values Kuma derives at start filled in (`kuma-cp run` serves this
        one at `GET /config`): the bootstrap xDS host/port, the catalog's bootstrap and MADS
        URLs, and the public admin port (0 means the local port)."""
        cfg = self.model_copy(deep=True)
        host = cfg.general.advertised_hostname
        params = cfg.bootstrap_server.params
        if not params.xds_host:
            params.xds_host = host
        if params.xds_port == 0:
            params.xds_port = cfg.xds_server.grpc_port
        public = cfg.admin_server.public
        if public.enabled and public.port == 0:
            public.port = cfg.admin_server.local.port
        apis = cfg.catalog()["apis"]
        cfg.api_server.catalog.bootstrap.url = apis["bootstrap"]["url"]
        cfg.api_server.catalog.monitoring_assignment.url = apis["monitoringAssignment"]["url"]
        return cfg
