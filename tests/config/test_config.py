"""kuma-cp configuration: defaults, YAML file, KUMA_* env, validation, /config and /catalog."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from kuma.config import (
    SANITIZED_VALUE,
    ConfigError,
    KumaCpConfig,
    defaults_yaml,
    iter_settings,
    load_config,
)

GOLDEN = Path(__file__).parent / "golden"

# Reference section 1.3.1 (checked against pkg/config/** at 0.7.3): key, env name, default as
# GET /config shows it (JSON).
REFERENCE = """
environment | KUMA_ENVIRONMENT | "universal"
mode | KUMA_MODE | "standalone"
store.type | KUMA_STORE_TYPE | "memory"
store.kubernetes.systemNamespace | KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE | "kuma-system"
store.postgres.host | KUMA_STORE_POSTGRES_HOST | "127.0.0.1"
store.postgres.port | KUMA_STORE_POSTGRES_PORT | 15432
store.postgres.user | KUMA_STORE_POSTGRES_USER | "kuma"
store.postgres.password | KUMA_STORE_POSTGRES_PASSWORD | "*****"
store.postgres.dbName | KUMA_STORE_POSTGRES_DB_NAME | "kuma"
store.postgres.connectionTimeout | KUMA_STORE_POSTGRES_CONNECTION_TIMEOUT | 5
store.postgres.maxOpenConnections | KUMA_STORE_POSTGRES_MAX_OPEN_CONNECTIONS | 0
store.postgres.tls.mode | KUMA_STORE_POSTGRES_TLS_MODE | "disable"
store.postgres.tls.certPath | KUMA_STORE_POSTGRES_TLS_CERT_PATH | ""
store.postgres.tls.keyPath | KUMA_STORE_POSTGRES_TLS_KEY_PATH | ""
store.postgres.tls.caPath | KUMA_STORE_POSTGRES_TLS_CA_PATH | ""
store.cache.enabled | KUMA_STORE_CACHE_ENABLED | true
store.cache.expirationTime | KUMA_STORE_CACHE_EXPIRATION_TIME | "1s"
bootstrapServer.port | KUMA_BOOTSTRAP_SERVER_PORT | 5682
bootstrapServer.params.adminAddress | KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ADDRESS | "127.0.0.1"
bootstrapServer.params.adminPort | KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_PORT | 0
bootstrapServer.params.adminAccessLogPath | KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ACCESS_LOG_PATH | "/dev/null"
bootstrapServer.params.xdsHost | KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST | ""
bootstrapServer.params.xdsPort | KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT | 0
bootstrapServer.params.xdsConnectTimeout | KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_CONNECT_TIMEOUT | "1s"
sdsServer.grpcPort | KUMA_SDS_SERVER_GRPC_PORT | 5677
sdsServer.tlsCertFile | KUMA_SDS_SERVER_TLS_CERT_FILE | ""
sdsServer.tlsKeyFile | KUMA_SDS_SERVER_TLS_KEY_FILE | ""
sdsServer.dataplaneConfigurationRefreshInterval | KUMA_SDS_SERVER_DATAPLANE_CONFIGURATION_REFRESH_INTERVAL | "1s"
monitoringAssignmentServer.grpcPort | KUMA_MONITORING_ASSIGNMENT_SERVER_GRPC_PORT | 5676
monitoringAssignmentServer.assignmentRefreshInterval | KUMA_MONITORING_ASSIGNMENT_SERVER_ASSIGNMENT_REFRESH_INTERVAL | "1s"
adminServer.local.port | KUMA_ADMIN_SERVER_LOCAL_PORT | 5679
adminServer.public.enabled | KUMA_ADMIN_SERVER_PUBLIC_ENABLED | false
adminServer.public.port | KUMA_ADMIN_SERVER_PUBLIC_PORT | 0
adminServer.public.interface | KUMA_ADMIN_SERVER_PUBLIC_INTERFACE | ""
adminServer.public.tlsCertFile | KUMA_ADMIN_SERVER_PUBLIC_TLS_CERT_FILE | ""
adminServer.public.tlsKeyFile | KUMA_ADMIN_SERVER_PUBLIC_TLS_KEY_FILE | ""
adminServer.public.clientCertsDir | KUMA_ADMIN_SERVER_PUBLIC_CLIENT_CERTS_DIR | ""
adminServer.apis.dataplaneToken.enabled | KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED | true
xdsServer.grpcPort | KUMA_XDS_SERVER_GRPC_PORT | 5678
xdsServer.diagnosticsPort | KUMA_XDS_SERVER_DIAGNOSTICS_PORT | 5680
xdsServer.dataplaneConfigurationRefreshInterval | KUMA_XDS_SERVER_DATAPLANE_CONFIGURATION_REFRESH_INTERVAL | "1s"
xdsServer.dataplaneStatusFlushInterval | KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL | "1s"
xdsServer.tlsCertFile | KUMA_XDS_SERVER_TLS_CERT_FILE | ""
xdsServer.tlsKeyFile | KUMA_XDS_SERVER_TLS_KEY_FILE | ""
apiServer.port | KUMA_API_SERVER_PORT | 5681
apiServer.readOnly | KUMA_API_SERVER_READ_ONLY | false
apiServer.corsAllowedDomains | KUMA_API_SERVER_CORS_ALLOWED_DOMAINS | [".*"]
apiServer.catalog.bootstrap.url | KUMA_API_SERVER_CATALOG_BOOTSTRAP_URL | ""
apiServer.catalog.monitoringAssignment.url | KUMA_API_SERVER_CATALOG_MONITORING_ASSIGNMENT_URL | ""
apiServer.catalog.sds.url | KUMA_API_SERVER_CATALOG_SDS_URL | ""
runtime.kubernetes.admissionServer.address | KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_ADDRESS | ""
runtime.kubernetes.admissionServer.port | KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT | 5443
runtime.kubernetes.admissionServer.certDir | KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR | ""
runtime.kubernetes.injector.cniEnabled | KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED | false
runtime.kubernetes.injector.exceptions.labels | KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS | {"openshift.io/build.name": "*", "openshift.io/deployer-pod-for.name": "*"}
runtime.kubernetes.injector.sidecarContainer.image | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE | "kuma/kuma-dp:latest"
runtime.kubernetes.injector.sidecarContainer.redirectPortInbound | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND | 15006
runtime.kubernetes.injector.sidecarContainer.redirectPortOutbound | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_OUTBOUND | 15001
runtime.kubernetes.injector.sidecarContainer.uid | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID | 5678
runtime.kubernetes.injector.sidecarContainer.gid | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GUI | 5678
runtime.kubernetes.injector.sidecarContainer.adminPort | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ADMIN_PORT | 9901
runtime.kubernetes.injector.sidecarContainer.drainTime | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME | "30s"
runtime.kubernetes.injector.sidecarContainer.readinessProbe.initialDelaySeconds | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_READINESS_PROBE_INITIAL_DELAY_SECONDS | 1
runtime.kubernetes.injector.sidecarContainer.readinessProbe.timeoutSeconds | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_READINESS_PROBE_TIMEOUT_SECONDS | 3
runtime.kubernetes.injector.sidecarContainer.readinessProbe.periodSeconds | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_READINESS_PROBE_PERIOD_SECONDS | 5
runtime.kubernetes.injector.sidecarContainer.readinessProbe.successThreshold | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_READINESS_PROBE_SUCCESS_THRESHOLD | 1
runtime.kubernetes.injector.sidecarContainer.readinessProbe.failureThreshold | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_READINESS_PROBE_FAILURE_THRESHOLD | 12
runtime.kubernetes.injector.sidecarContainer.livenessProbe.initialDelaySeconds | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_LIVENESS_PROBE_INITIAL_DELAY_SECONDS | 60
runtime.kubernetes.injector.sidecarContainer.livenessProbe.timeoutSeconds | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_LIVENESS_PROBE_TIMEOUT_SECONDS | 3
runtime.kubernetes.injector.sidecarContainer.livenessProbe.periodSeconds | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_LIVENESS_PROBE_PERIOD_SECONDS | 5
runtime.kubernetes.injector.sidecarContainer.livenessProbe.failureThreshold | KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_LIVENESS_PROBE_FAILURE_THRESHOLD | 12
runtime.kubernetes.injector.sidecarContainer.resources.requests.cpu | KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU | "50m"
runtime.kubernetes.injector.sidecarContainer.resources.requests.memory | KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_MEMORY | "64Mi"
runtime.kubernetes.injector.sidecarContainer.resources.limits.cpu | KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_CPU | "1000m"
runtime.kubernetes.injector.sidecarContainer.resources.limits.memory | KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY | "512Mi"
runtime.kubernetes.injector.initContainer.image | KUMA_INJECTOR_INIT_CONTAINER_IMAGE | "kuma/kuma-init:latest"
runtime.kubernetes.injector.sidecarTraffic.excludeInboundPorts | KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS | []
runtime.kubernetes.injector.sidecarTraffic.excludeOutboundPorts | KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS | []
runtime.universal.dataplaneCleanupAge | KUMA_RUNTIME_UNIVERSAL_DATAPLANE_CLEANUP_AGE | "72h0m0s"
defaults.skipMeshCreation | KUMA_DEFAULTS_SKIP_MESH_CREATION | false
metrics.dataplane.enabled | KUMA_METRICS_DATAPLANE_ENABLED | true
metrics.dataplane.subscriptionLimit | KUMA_METRICS_DATAPLANE_SUBSCRIPTION_LIMIT | 10
metrics.zone.enabled | KUMA_METRICS_ZONE_ENABLED | true
metrics.zone.subscriptionLimit | KUMA_METRICS_ZONE_SUBSCRIPTION_LIMIT | 10
reports.enabled | KUMA_REPORTS_ENABLED | true
general.advertisedHostname | KUMA_GENERAL_ADVERTISED_HOSTNAME | "localhost"
guiServer.apiServerUrl | KUMA_GUI_SERVER_API_SERVER_URL | ""
dnsServer.domain | KUMA_DNS_SERVER_DOMAIN | "mesh"
dnsServer.port | KUMA_DNS_SERVER_PORT | 5653
dnsServer.CIDR | KUMA_DNS_SERVER_CIDR | "240.0.0.0/4"
multicluster.global.pollTimeout | KUMA_MULTICLUSTER_GLOBAL_POLL_TIMEOUT | "500ms"
multicluster.global.kds.grpcPort | KUMA_MULTICLUSTER_GLOBAL_KDS_GRPC_PORT | 5685
multicluster.global.kds.refreshInterval | KUMA_MULTICLUSTER_GLOBAL_KDS_REFRESH_INTERVAL | "1s"
multicluster.global.kds.tlsCertFile | KUMA_MULTICLUSTER_GLOBAL_KDS_TLS_CERT_FILE | ""
multicluster.global.kds.tlsKeyFile | KUMA_MULTICLUSTER_GLOBAL_KDS_TLS_KEY_FILE | ""
multicluster.remote.zone | KUMA_MULTICLUSTER_REMOTE_ZONE | null
multicluster.remote.globalAddress | KUMA_MULTICLUSTER_REMOTE_GLOBAL_ADDRESS | null
multicluster.remote.kds.refreshInterval | KUMA_MULTICLUSTER_REMOTE_KDS_REFRESH_INTERVAL | "1s"
multicluster.remote.kds.rootCaFile | KUMA_MULTICLUSTER_REMOTE_KDS_ROOT_CA_FILE | ""
"""
# null: omitted from GET /config while empty (Kuma's `yaml:",omitempty"`).


def _reference() -> list[tuple[str, str, Any]]:
    rows = []
    for line in REFERENCE.strip().splitlines():
        key, env, default = (part.strip() for part in line.split("|"))
        rows.append((key, env, json.loads(default)))
    return rows


ROWS = _reference()


def _lookup(doc: dict[str, Any], key: str) -> Any:
    # dnsServer.CIDR and openshift label keys contain no dots at the split points we use
    node: Any = doc
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _write(tmp_path: Path, text: str, name: str = "kuma-cp.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- defaults ---------------------------------------------------------------------------------


def test_every_setting_is_in_the_reference_table() -> None:
    ours = {(s.key, s.env) for s in iter_settings()}
    reference = {(key, env) for key, env, _ in ROWS}
    assert ours == reference


@pytest.mark.parametrize(("key", "env", "default"), ROWS, ids=[r[0] for r in ROWS])
def test_default_matches_reference(key: str, env: str, default: Any) -> None:
    shown = load_config(env={}).to_json_dict()
    assert _lookup(shown, key) == default


def test_defaults_golden() -> None:
    """GET /config of a default kuma-cp (Kuma's api-server config_ws_test shape)."""
    shown = load_config(env={}).to_json_dict()
    golden = GOLDEN / "default-config.json"
    text = json.dumps(shown, indent=2) + "\n"
    if os.environ.get("UPDATE_GOLDEN_FILES") == "true":
        golden.write_text(text)
    assert text == golden.read_text()


def test_packaged_defaults_equal_model_defaults() -> None:
    assert load_config(env={}) == KumaCpConfig()


def _env_comments() -> Iterator[tuple[str, str]]:
    """(key, env) from the `# ENV:` comments of the packaged defaults file."""
    stack: list[tuple[int, str]] = []
    for line in defaults_yaml().splitlines():
        match = re.match(r"^( *)(-|[A-Za-z][\w./-]*):", line)
        if not match:
            continue
        indent, key = len(match.group(1)), match.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, key))
        env = re.search(r"# ENV: (KUMA_[A-Z_]+)", line)
        if env:
            yield ".".join(k for _, k in stack), env.group(1)


def test_defaults_file_names_each_env_variable() -> None:
    assert dict(_env_comments()) == {s.key: s.env for s in iter_settings()}


def test_defaults_file_sets_every_setting() -> None:
    doc = yaml.safe_load(defaults_yaml())
    for info in iter_settings():
        assert _lookup(doc, info.key) is not None, info.key


# -- YAML file --------------------------------------------------------------------------------


def test_yaml_file_overrides_only_what_it_sets(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
store:
  type: postgres
  postgres:
    host: db.internal
    port: 5432
    password: s3cret
    tls:
      mode: verifyNone
apiServer:
  readOnly: true
  corsAllowedDomains: ["https://a\\\\.example", "b"]
xdsServer:
  dataplaneConfigurationRefreshInterval: 5s
runtime:
  universal:
    dataplaneCleanupAge: 1h30m
general:
  advertisedHostname: cp.internal
dnsServer:
  CIDR: 10.0.0.0/8
""",
    )
    cfg = load_config(path, env={})
    assert cfg.store.type == "postgres"
    assert cfg.store.postgres.host == "db.internal"
    assert cfg.store.postgres.port == 5432
    assert cfg.store.postgres.password == "s3cret"
    assert cfg.store.postgres.user == "kuma"  # untouched siblings keep their defaults
    assert cfg.store.postgres.tls.mode == "verifyNone"
    assert cfg.store.cache.enabled is True
    assert cfg.api_server.read_only is True
    assert cfg.api_server.cors_allowed_domains == ["https://a\\.example", "b"]
    assert cfg.api_server.port == 5681
    assert cfg.xds_server.dataplane_configuration_refresh_interval == timedelta(seconds=5)
    assert cfg.runtime.universal.dataplane_cleanup_age == timedelta(minutes=90)
    assert cfg.general.advertised_hostname == "cp.internal"
    assert cfg.dns_server.cidr == "10.0.0.0/8"
    shown = cfg.to_json_dict()
    assert shown["runtime"]["universal"]["dataplaneCleanupAge"] == "1h30m0s"
    assert shown["store"]["postgres"]["password"] == SANITIZED_VALUE


def test_yaml_scalars_follow_go_yaml(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
general:
  advertisedHostname: 1234        # a number into a string setting keeps its text
store:
  postgres:
    password: 0x1F
    port: 0x1538                  # YAML 1.1 hex int
    tls:
      certPath:                   # null: the zero value
adminServer:
  public:
    enabled: no                   # YAML 1.1 bool
multicluster:                     # an empty section keeps its values
""",
    )
    cfg = load_config(path, env={})
    assert cfg.general.advertised_hostname == "1234"
    assert cfg.store.postgres.password == "0x1F"
    assert cfg.store.postgres.port == 0x1538
    assert cfg.store.postgres.tls.cert_path == ""
    assert cfg.admin_server.public.enabled is False
    assert cfg.multicluster.global_.kds.grpc_port == 5685


def test_unknown_keys_are_logged_not_fatal(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
apiServer:
  port: 1234
  colour: blue
store:
  postgres:
    sslmode: on
bogus: 1
""",
    )
    with capture_logs() as logs:
        cfg = load_config(path, env={})
    assert cfg.api_server.port == 1234
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["keys"] == ["apiServer.colour", "store.postgres.sslmode", "bogus"]
    assert warnings[0]["file"] == path


@pytest.mark.parametrize(
    ("text", "key", "message", "line"),
    [
        ("store:\n  postgres:\n    port: abc\n", "store.postgres.port", "cannot use", 3),
        ("apiServer:\n  readOnly: maybe\n", "apiServer.readOnly", "as a boolean", 2),
        ('apiServer:\n  readOnly: "true"\n', "apiServer.readOnly", "as a boolean", 2),
        ("store:\n  cache:\n    expirationTime: 5\n", "store.cache.expirationTime", "duration", 3),
        (
            "store:\n  cache:\n    expirationTime: 5y\n",
            "store.cache.expirationTime",
            "unknown unit",
            3,
        ),
        ("apiServer:\n  corsAllowedDomains: abc\n", "apiServer.corsAllowedDomains", "list", 2),
        ("store: memory\n", "store", "mapping", 1),
        ("general:\n  advertisedHostname: [a, b]\n", "general.advertisedHostname", "collection", 2),
    ],
)
def test_yaml_type_errors_name_key_and_line(
    tmp_path: Path, text: str, key: str, message: str, line: int
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert exc.value.keys == (key,)
    assert message in str(exc.value)
    assert f"{path} line {line}" in str(exc.value)


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert str(exc.value) == f'Failed to access configuration file "{path}"'


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "a: [\n"])
def test_file_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert str(exc.value).startswith(f'Failed to parse configuration from file "{path}"')


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "# nothing\n"), env={}) == KumaCpConfig()


# -- environment ------------------------------------------------------------------------------

_SAMPLES: dict[str, tuple[str, Any]] = {
    "str": ("sample-value", "sample-value"),
    "int": ("4321", 4321),
    "duration": ("7m30s", "7m30s"),
    "list[str]": ("a,b", ["a", "b"]),
    "list[int]": ("80,443", [80, 443]),
    "map[str]str": ("k1:v1,k2:v2:x", {"k1": "v1", "k2": "v2:x"}),
}


@pytest.mark.parametrize(("key", "env", "default"), ROWS, ids=[r[1] for r in ROWS])
def test_each_env_variable_sets_its_key(key: str, env: str, default: Any) -> None:
    info = next(s for s in iter_settings() if s.key == key)
    if info.kind == "bool":
        text, expected = ("false", False) if default else ("true", True)
    else:
        text, expected = _SAMPLES[info.kind]
    cfg = load_config(env={env: text}, validate=False)
    shown = cfg.to_json_dict(mask_secrets=False)
    assert _lookup(shown, key) == expected
    # and nothing else moved
    baseline = KumaCpConfig().to_json_dict(mask_secrets=False)
    changed = [s.key for s in iter_settings() if _lookup(shown, s.key) != _lookup(baseline, s.key)]
    assert changed == [key]


def test_env_wins_over_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "apiServer:\n  port: 1111\n  readOnly: true\n")
    cfg = load_config(path, env={"KUMA_API_SERVER_PORT": "2222", "UNRELATED": "x"})
    assert cfg.api_server.port == 2222
    assert cfg.api_server.read_only is True


def test_env_defaults_to_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUMA_API_SERVER_PORT", "3333")
    assert load_config().api_server.port == 3333


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", True), ("t", True), ("TRUE", True), ("True", True), ("0", False), ("F", False)],
)
def test_env_bools_like_go(text: str, expected: bool) -> None:
    cfg = load_config(env={"KUMA_API_SERVER_READ_ONLY": text})
    assert cfg.api_server.read_only is expected


@pytest.mark.parametrize(
    ("text", "expected"), [("0x10", 16), ("010", 8), ("0b11", 3), ("+7", 7), ("0x_1F", 31)]
)
def test_env_ints_like_go(text: str, expected: int) -> None:
    cfg = load_config(env={"KUMA_METRICS_DATAPLANE_SUBSCRIPTION_LIMIT": text})
    assert cfg.metrics.dataplane.subscription_limit == expected


def test_env_empty_list_and_map() -> None:
    cfg = load_config(
        env={
            "KUMA_API_SERVER_CORS_ALLOWED_DOMAINS": "",
            "KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS": "",
        }
    )
    assert cfg.api_server.cors_allowed_domains == []
    assert cfg.runtime.kubernetes.injector.exceptions.labels == {}


@pytest.mark.parametrize(
    ("env", "value", "key", "message"),
    [
        ("KUMA_API_SERVER_PORT", "http", "apiServer.port", 'cannot parse "http" as an integer'),
        ("KUMA_API_SERVER_PORT", "", "apiServer.port", 'cannot parse "" as an integer'),
        ("KUMA_API_SERVER_PORT", "1_000", "apiServer.port", "as an integer"),
        ("KUMA_API_SERVER_READ_ONLY", "yes", "apiServer.readOnly", "as a boolean"),
        (
            "KUMA_STORE_CACHE_EXPIRATION_TIME",
            "10",
            "store.cache.expirationTime",
            'time: missing unit in duration "10"',
        ),
        (
            "KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS",
            "a:b,c",
            "runtime.kubernetes.injector.exceptions.labels",
            'invalid map item "c"',
        ),
        (
            "KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS",
            "80,x",
            "runtime.kubernetes.injector.sidecarTraffic.excludeInboundPorts",
            'cannot parse "x"',
        ),
    ],
)
def test_env_parse_errors_name_key_and_variable(
    env: str, value: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(env={env: value})
    assert exc.value.keys == (key,)
    assert message in str(exc.value)
    assert f"env {env}" in str(exc.value)


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "key", "message"),
    [
        (
            {"KUMA_STORE_TYPE": "etcd"},
            "store.type",
            "must be either postgres, kubernetes or memory",
        ),
        ({"KUMA_MODE": "zone"}, "mode", "Available modes: standalone, remote, global"),
        ({"KUMA_ENVIRONMENT": "docker"}, "environment", "either kubernetes or universal"),
        ({"KUMA_API_SERVER_PORT": "65536"}, "apiServer.port", "range [0, 65535]"),
        ({"KUMA_API_SERVER_PORT": "-1"}, "apiServer.port", "range [0, 65535]"),
        ({"KUMA_ADMIN_SERVER_LOCAL_PORT": "70000"}, "adminServer.local.port", "range"),
        ({"KUMA_XDS_SERVER_DIAGNOSTICS_PORT": "99999"}, "xdsServer.diagnosticsPort", "range"),
        ({"KUMA_DNS_SERVER_PORT": "65536"}, "dnsServer.port", "range"),
        ({"KUMA_DNS_SERVER_CIDR": "10.0.0.1"}, "dnsServer.CIDR", "valid CIDR"),
        (
            {"KUMA_XDS_SERVER_DATAPLANE_CONFIGURATION_REFRESH_INTERVAL": "0s"},
            "xdsServer.dataplaneConfigurationRefreshInterval",
            "must be positive",
        ),
        ({"KUMA_XDS_SERVER_TLS_CERT_FILE": "/c.pem"}, "xdsServer.tlsKeyFile", "cannot be empty"),
        ({"KUMA_SDS_SERVER_TLS_KEY_FILE": "/k.pem"}, "sdsServer.tlsCertFile", "cannot be empty"),
        (
            {"KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_ADDRESS": "localhost"},
            "bootstrapServer.params.adminAddress",
            "valid IP address",
        ),
        (
            {"KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_CONNECT_TIMEOUT": "-1s"},
            "bootstrapServer.params.xdsConnectTimeout",
            "must be positive",
        ),
        (
            {"KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_CONNECT_TIMEOUT": "0s"},
            "bootstrapServer.params.xdsConnectTimeout",
            "must be positive",
        ),
        (
            {"KUMA_MONITORING_ASSIGNMENT_SERVER_ASSIGNMENT_REFRESH_INTERVAL": "0s"},
            "monitoringAssignmentServer.assignmentRefreshInterval",
            "must be positive",
        ),
        (
            {"KUMA_METRICS_DATAPLANE_SUBSCRIPTION_LIMIT": "-1"},
            "metrics.dataplane.subscriptionLimit",
            "positive or equal 0",
        ),
        (
            {"KUMA_ADMIN_SERVER_PUBLIC_ENABLED": "true"},
            "adminServer.public.tlsCertFile",
            "cannot be empty if server is enabled",
        ),
        (
            {"KUMA_STORE_TYPE": "postgres", "KUMA_STORE_POSTGRES_CONNECTION_TIMEOUT": "0"},
            "store.postgres.connectionTimeout",
            "must be positive",
        ),
        (
            {"KUMA_STORE_TYPE": "postgres", "KUMA_STORE_POSTGRES_TLS_MODE": "always"},
            "store.postgres.tls.mode",
            'invalid mode "always"',
        ),
        (
            {"KUMA_STORE_TYPE": "postgres", "KUMA_STORE_POSTGRES_TLS_MODE": "verifyFull"},
            "store.postgres.tls.caPath",
            "cannot be empty",
        ),
        (
            {"KUMA_STORE_TYPE": "postgres", "KUMA_STORE_POSTGRES_TLS_CERT_PATH": "/c.pem"},
            "store.postgres.tls.keyPath",
            "cannot be empty when certPath is provided",
        ),
        (
            {"KUMA_STORE_TYPE": "postgres", "KUMA_STORE_POSTGRES_HOST": ""},
            "store.postgres.host",
            "must not be empty",
        ),
        (
            {"KUMA_STORE_TYPE": "postgres", "KUMA_STORE_POSTGRES_PORT": "100000"},
            "store.postgres.port",
            "range",
        ),
        (
            {"KUMA_STORE_TYPE": "kubernetes", "KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE": ""},
            "store.kubernetes.systemNamespace",
            "must not be empty",
        ),
        (
            {"KUMA_API_SERVER_CORS_ALLOWED_DOMAINS": "ok,(unclosed"},
            "apiServer.corsAllowedDomains[1]",
            "invalid regular expression",
        ),
        (
            {"KUMA_RUNTIME_UNIVERSAL_DATAPLANE_CLEANUP_AGE": "0s"},
            "runtime.universal.dataplaneCleanupAge",
            "must be positive",
        ),
        (
            {"KUMA_ENVIRONMENT": "kubernetes"},
            "runtime.kubernetes.admissionServer.certDir",
            "must not be empty",
        ),
        (
            {
                "KUMA_ENVIRONMENT": "kubernetes",
                "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR": "/certs",
                "KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY": "lots",
            },
            "runtime.kubernetes.injector.sidecarContainer.resources.limits.memory",
            "not a valid Kubernetes quantity",
        ),
        (
            {
                "KUMA_ENVIRONMENT": "kubernetes",
                "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR": "/certs",
                "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_LIVENESS_PROBE_PERIOD_SECONDS": "0",
            },
            "runtime.kubernetes.injector.sidecarContainer.livenessProbe.periodSeconds",
            "must be >= 1",
        ),
        ({"KUMA_MODE": "remote"}, "multicluster.remote.zone", "mandatory in remote mode"),
        (
            {
                "KUMA_MODE": "remote",
                "KUMA_MULTICLUSTER_REMOTE_ZONE": "zone-1",
                "KUMA_MULTICLUSTER_REMOTE_GLOBAL_ADDRESS": "http://global:5685",
            },
            "multicluster.remote.globalAddress",
            'unsupported scheme "http"',
        ),
        (
            {"KUMA_MODE": "global", "KUMA_MULTICLUSTER_GLOBAL_KDS_REFRESH_INTERVAL": "0s"},
            "multicluster.global.kds.refreshInterval",
            "must be positive",
        ),
    ],
)
def test_invalid_values_are_rejected_naming_the_key(
    env: dict[str, str], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(env=env)
    assert key in exc.value.keys
    problem = next(p for p in exc.value.problems if p.key == key)
    assert message in problem.message
    assert str(exc.value).startswith("Invalid configuration")
    assert key in str(exc.value)


def test_sections_are_validated_per_mode() -> None:
    # Kuma checks the xDS server only in standalone/remote mode, KDS only in global mode.
    bad_xds = {"KUMA_XDS_SERVER_DATAPLANE_STATUS_FLUSH_INTERVAL": "0s"}
    load_config(env={**bad_xds, "KUMA_MODE": "global"})
    with pytest.raises(ConfigError):
        load_config(env=bad_xds)
    bad_kds = {"KUMA_MULTICLUSTER_GLOBAL_KDS_GRPC_PORT": "70000"}
    load_config(env=bad_kds)
    with pytest.raises(ConfigError):
        load_config(env={**bad_kds, "KUMA_MODE": "global"})


def test_postgres_settings_checked_only_for_the_postgres_store() -> None:
    load_config(env={"KUMA_STORE_POSTGRES_PASSWORD": ""})
    with pytest.raises(ConfigError) as exc:
        load_config(env={"KUMA_STORE_POSTGRES_PASSWORD": "", "KUMA_STORE_TYPE": "postgres"})
    assert exc.value.keys == ("store.postgres.password",)


@pytest.mark.parametrize("mode", ["disable", "verifyNone", "require"])
def test_postgres_tls_modes_accepted(mode: str) -> None:
    env = {"KUMA_STORE_TYPE": "postgres", "KUMA_STORE_POSTGRES_TLS_MODE": mode}
    assert load_config(env=env).store.postgres.tls.mode == mode


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(env={"KUMA_API_SERVER_PORT": "70000", "KUMA_DNS_SERVER_CIDR": "nope"})
    assert exc.value.keys == ("apiServer.port", "dnsServer.CIDR")


# -- GET /config and GET /catalog ------------------------------------------------------------


def test_masking() -> None:
    cfg = load_config(env={"KUMA_STORE_POSTGRES_PASSWORD": "hunter2"})
    assert cfg.to_json_dict()["store"]["postgres"]["password"] == "*****"
    assert cfg.to_json_dict(mask_secrets=False)["store"]["postgres"]["password"] == "hunter2"
    assert "hunter2" not in json.dumps(cfg.to_json_dict())
    # Kuma sanitizes nothing else: other paths and URLs are shown as they are
    assert [s.key for s in iter_settings() if s.secret] == ["store.postgres.password"]


def test_omit_empty_keys_appear_once_set() -> None:
    cfg = load_config(
        env={
            "KUMA_MULTICLUSTER_REMOTE_ZONE": "zone-1",
            "KUMA_MULTICLUSTER_REMOTE_GLOBAL_ADDRESS": "grpcs://global:5685",
        }
    )
    remote = cfg.to_json_dict()["multicluster"]["remote"]
    assert remote["zone"] == "zone-1"
    assert remote["globalAddress"] == "grpcs://global:5685"


def test_catalog_defaults() -> None:
    assert KumaCpConfig().catalog() == {
        "apis": {
            "bootstrap": {"url": "http://localhost:5682"},
            "dataplaneToken": {"localUrl": "http://localhost:5679", "publicUrl": ""},
            "admin": {"localUrl": "http://localhost:5679", "publicUrl": ""},
            "monitoringAssignment": {"url": "grpc://localhost:5676"},
        }
    }


def test_catalog_follows_hostname_and_ports() -> None:
    cfg = load_config(
        env={
            "KUMA_GENERAL_ADVERTISED_HOSTNAME": "kuma.internal",
            "KUMA_BOOTSTRAP_SERVER_PORT": "3333",
            "KUMA_MONITORING_ASSIGNMENT_SERVER_GRPC_PORT": "4444",
            "KUMA_ADMIN_SERVER_LOCAL_PORT": "1111",
            "KUMA_ADMIN_SERVER_PUBLIC_ENABLED": "true",
            "KUMA_ADMIN_SERVER_PUBLIC_INTERFACE": "0.0.0.0",
            "KUMA_ADMIN_SERVER_PUBLIC_TLS_CERT_FILE": "/c.pem",
            "KUMA_ADMIN_SERVER_PUBLIC_TLS_KEY_FILE": "/k.pem",
        }
    )
    assert cfg.catalog() == {
        "apis": {
            "bootstrap": {"url": "http://kuma.internal:3333"},
            "dataplaneToken": {
                "localUrl": "http://localhost:1111",
                "publicUrl": "https://kuma.internal:1111",
            },
            "admin": {
                "localUrl": "http://localhost:1111",
                "publicUrl": "https://kuma.internal:1111",
            },
            "monitoringAssignment": {"url": "grpc://kuma.internal:4444"},
        }
    }
    assert cfg.api_public_url == "http://kuma.internal:5681"


def test_catalog_explicit_urls_and_token_api_disabled() -> None:
    cfg = load_config(
        env={
            "KUMA_API_SERVER_CATALOG_BOOTSTRAP_URL": "https://bootstrap.example:1234",
            "KUMA_API_SERVER_CATALOG_MONITORING_ASSIGNMENT_URL": "grpcs://mads.example:99",
            "KUMA_ADMIN_SERVER_APIS_DATAPLANE_TOKEN_ENABLED": "false",
        }
    )
    apis = cfg.catalog()["apis"]
    assert apis["bootstrap"] == {"url": "https://bootstrap.example:1234"}
    assert apis["monitoringAssignment"] == {"url": "grpcs://mads.example:99"}
    assert apis["dataplaneToken"] == {"localUrl": "", "publicUrl": ""}
    assert apis["admin"] == {"localUrl": "http://localhost:5679", "publicUrl": ""}


def test_autoconfigured_fills_derived_values() -> None:
    cfg = load_config(
        env={
            "KUMA_GENERAL_ADVERTISED_HOSTNAME": "cp.example",
            "KUMA_XDS_SERVER_GRPC_PORT": "6000",
            "KUMA_ADMIN_SERVER_PUBLIC_ENABLED": "true",
            "KUMA_ADMIN_SERVER_PUBLIC_INTERFACE": "0.0.0.0",
            "KUMA_ADMIN_SERVER_PUBLIC_TLS_CERT_FILE": "/c.pem",
            "KUMA_ADMIN_SERVER_PUBLIC_TLS_KEY_FILE": "/k.pem",
        }
    )
    auto = cfg.autoconfigured()
    assert auto.bootstrap_server.params.xds_host == "cp.example"
    assert auto.bootstrap_server.params.xds_port == 6000
    assert auto.admin_server.public.port == 5679
    assert auto.api_server.catalog.bootstrap.url == "http://cp.example:5682"
    assert auto.api_server.catalog.monitoring_assignment.url == "grpc://cp.example:5676"
    assert auto.api_server.catalog.sds.url == ""
    assert auto.catalog() == cfg.catalog()
    # the original is left alone
    assert cfg.bootstrap_server.params.xds_host == ""


def test_autoconfigured_keeps_explicit_values() -> None:
    cfg = load_config(
        env={
            "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST": "xds.example",
            "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT": "7000",
        }
    )
    auto = cfg.autoconfigured()
    assert (auto.bootstrap_server.params.xds_host, auto.bootstrap_server.params.xds_port) == (
        "xds.example",
        7000,
    )
