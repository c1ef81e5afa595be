"""Mesh: mTLS, logging, tracing and metrics backends.

Kuma validates a Mesh in two steps and kuma-py keeps both, in order: the spec rules (mtls,
logging, tracing, metrics) and, only when those pass, the CA plugins' checks of each mTLS
backend (`builtin` / `provided`) and their `conf`.

Not done here: loading a `provided` CA's certificate and key (from a Secret, a file or inline)
and checking the pair is a self-signed CA; that needs the secret store and belongs to the
`provided` CA manager, at Mesh create/update.

Beyond Kuma 0.7.3: a `prometheus` metrics backend whose `conf` does not decode as a Prometheus
config is reported here with field paths (Kuma fails on it while applying its defaults, with a
plain error).
"""

from __future__ import annotations

from typing import Any

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.accesslog import format_error
from kuma.model.validators.common import allowed_values_hint, to_typed
from kuma.model.validators.golang import AddrError, go_quote, parse_request_uri, split_host_port
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb
from kuma.pb.kuma.system import v1alpha1 as system_pb

__all__ = [
    "CA_BACKEND_TYPES",
    "parse_kuma_duration",
    "validate_mesh",
]

CA_BACKEND_TYPES = ("builtin", "provided")
"""mTLS backend types with an installed CA plugin."""

_LOGGING_TCP = "tcp"
_LOGGING_FILE = "file"
_TRACING_ZIPKIN = "zipkin"
_METRICS_PROMETHEUS = "prometheus"
_ZIPKIN_API_VERSIONS = ("httpJsonV1", "httpJson", "httpProto")

_DURATION_UNITS_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60 * 1000,
    "h": 60 * 60 * 1000,
    "d": 24 * 60 * 60 * 1000,
    "w": 7 * 24 * 60 * 60 * 1000,
    "y": 365 * 24 * 60 * 60 * 1000,
}


def parse_kuma_duration(text: str) -> int:
    """Kuma's `<n><unit>` durations (`24h`, `2y`, `500ms`; units y w d h m s ms) in milliseconds.

    `"0"` is allowed without a unit. Raises ValueError otherwise.
    """
    if text == "0":
        return 0
    digits = text.rstrip("ywdhms")
    unit = text[len(digits) :]
    if not digits or not digits.isascii() or not digits.isdigit() or unit not in _DURATION_UNITS_MS:
        raise ValueError(f"not a valid duration string: {go_quote(text)}")
    return int(digits) * _DURATION_UNITS_MS[unit]


def _duplicate(errs: Violations, path: Path, name: str, used: set[str]) -> None:
    if name in used:
        errs.add(path.field("name"), f"{go_quote(name)} name is already used for another backend")
    used.add(name)


# -- mtls -------------------------------------------------------------------------------------


def _mtls(errs: Violations, mtls: mesh_pb.MeshMtls | None) -> None:
    if mtls is None:
        return
    root = Path("mtls")
    used: set[str] = set()
    for i, backend in enumerate(mtls.backends):
        _duplicate(errs, root.field("backends").index(i), backend.name, used)
    if mtls.enabled_backend and mtls.enabled_backend not in used:
        errs.add(root.field("enabledBackend"), "has to be set to one of the backends in the mesh")
    for backend in mtls.backends:
        if backend.dp_cert is not None:
            rotation = backend.dp_cert.rotation
            try:
                parse_kuma_duration(rotation.expiration if rotation is not None else "")
            except ValueError:
                # sic: no backend index, lower-case "dpcert"
                errs.add(root.field("dpcert.rotation.expiration"), "has to be a valid format")


def _is_uint32(value: Any) -> bool:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return float(value).is_integer() and 0 <= value < 2**32


def _builtin_ca(errs: Violations, path: Path, conf: Any) -> None:
    """The builtin CA's conf: `caCert: {RSAbits: <uint32>, expiration: <string>}`."""
    prefix = "could not convert backend config: "
    data = conf.to_dict() if conf is not None else {}
    ca_cert = data.get("caCert")
    if ca_cert is None:
        return
    if not isinstance(ca_cert, dict):
        errs.add(path.field("caCert"), prefix + "must be an object")
        return
    bits = ca_cert.get("RSAbits")
    if bits is not None and not _is_uint32(bits):
        errs.add(
            path.field("caCert").field("RSAbits"),
            prefix + "must be an integer in [0, 4294967295]",
        )
    expiration = ca_cert.get("expiration")
    if expiration is not None and not isinstance(expiration, str):
        errs.add(path.field("caCert").field("expiration"), prefix + "must be a string")


def _data_source(errs: Violations, path: Path, source: system_pb.DataSource) -> None:
    if source.secret is None and source.file is None and source.inline is None:
        errs.add(path, "data source has to be chosen. Available sources: secret, file, inline")
    elif source.secret is not None and not source.secret:
        errs.add(path.field("secret"), "cannot be empty")
    elif source.inline is not None and not source.inline:
        errs.add(path.field("inline"), "cannot be empty")
    elif source.file is not None and not source.file:
        errs.add(path.field("file"), "cannot be empty")


def _provided_ca(errs: Violations, path: Path, conf: Any) -> None:
    """The provided CA's conf: `cert` and `key`, each a data source (secret, file or inline)."""
    prefix = "could not convert backend config: "
    data = conf.to_dict() if conf is not None else {}
    sources: dict[str, system_pb.DataSource | None] = {}
    failed = False
    for name in ("cert", "key"):
        raw = data.get(name)
        if raw is None:
            sources[name] = None
            continue
        decoded = to_typed(system_pb.DataSource, raw, path.field(name), errs, prefix=prefix)
        failed = failed or decoded is None
        sources[name] = decoded
    if failed:
        return
    for name in ("cert", "key"):
        source = sources[name]
        if source is None:
            errs.add(path.field(name), "has to be defined")
        else:
            _data_source(errs, path.field(name), source)


def _ca_backends(errs: Violations, mtls: mesh_pb.MeshMtls | None) -> None:
    """What Kuma's CA plugins check, after the spec rules pass (MeshValidator)."""
    if mtls is None:
        return
    path = Path("mtls").field("backends")
    for i, backend in enumerate(mtls.backends):
        if backend.type not in CA_BACKEND_TYPES:
            errs.add(path.index(i).field("type"), "could not find installed plugin for this type")
            return
        config = path.index(i).field("config")
        if backend.type == "builtin":
            _builtin_ca(errs, config, backend.conf)
        else:
            _provided_ca(errs, config, backend.conf)


# -- logging ----------------------------------------------------------------------------------


def _logging_backend(errs: Violations, path: Path, backend: mesh_pb.LoggingBackend) -> None:
    if not backend.name:
        errs.add(path.field("name"), "cannot be empty")
    problem = format_error(backend.format)
    if problem is not None:
        errs.add(path.field("format"), problem)
    config = path.field("config")
    if backend.type == _LOGGING_FILE:
        cfg = to_typed(mesh_pb.FileLoggingBackendConfig, backend.conf, config, errs)
        if cfg is not None and not cfg.path:
            errs.add(config.field("path"), "cannot be empty")
    elif backend.type == _LOGGING_TCP:
        tcp = to_typed(mesh_pb.TcpLoggingBackendConfig, backend.conf, config, errs)
        if tcp is None:
            return
        if not tcp.address:
            errs.add(config.field("address"), "cannot be empty")
            return
        try:
            host, port = split_host_port(tcp.address)
        except AddrError:
            host = port = ""
        if not host or not port:
            errs.add(config.field("address"), "has to be in format of HOST:PORT")
    else:
        errs.add(
            path.field("type"),
            "unknown backend type. Available backends: "
            f"{go_quote(_LOGGING_TCP)}, {go_quote(_LOGGING_FILE)}",
        )


def _logging(errs: Violations, logging: mesh_pb.Logging | None) -> None:
    if logging is None:
        return
    root = Path("logging")
    used: set[str] = set()
    for i, backend in enumerate(logging.backends):
        path = root.field("backends").index(i)
        _logging_backend(errs, path, backend)
        _duplicate(errs, path, backend.name, used)
    if logging.default_backend and logging.default_backend not in used:
        errs.add(
            root.field("defaultBackend"), "has to be set to one of the logging backend in mesh"
        )


# -- tracing ----------------------------------------------------------------------------------


def _zipkin(errs: Violations, path: Path, conf: Any) -> None:
    cfg = to_typed(mesh_pb.ZipkinTracingBackendConfig, conf, path, errs)
    if cfg is None:
        return
    if cfg.api_version and cfg.api_version not in _ZIPKIN_API_VERSIONS:
        errs.add(
            path.field("apiVersion"),
            f"has invalid value. {allowed_values_hint(*_ZIPKIN_API_VERSIONS)}",
        )
    if not cfg.url:
        errs.add(path.field("url"), "cannot be empty")
        return
    try:
        url = parse_request_uri(cfg.url)
    except ValueError:
        errs.add(path.field("url"), "invalid URL")
        return
    if not url.port():
        errs.add(path.field("url"), "port has to be explicitly specified")


def _tracing_backend(errs: Violations, path: Path, backend: mesh_pb.TracingBackend) -> None:
    if not backend.name:
        errs.add(path.field("name"), "cannot be empty")
    if backend.type != _TRACING_ZIPKIN:
        errs.add(
            path.field("type"),
            f"unknown backend type. Available backends: {go_quote(_TRACING_ZIPKIN)}",
        )
    sampling = backend.sampling or 0.0
    if sampling < 0.0 or sampling > 100.0:
        errs.add(path.field("sampling"), "has to be in [0.0 - 100.0] range")
    if backend.type == _TRACING_ZIPKIN:
        _zipkin(errs, path.field("config"), backend.conf)


def _tracing(errs: Violations, tracing: mesh_pb.Tracing | None) -> None:
    if tracing is None:
        return
    root = Path("tracing")
    used: set[str] = set()
    for i, backend in enumerate(tracing.backends):
        path = root.field("backends").index(i)
        _tracing_backend(errs, path, backend)
        _duplicate(errs, path, backend.name, used)
    if tracing.default_backend and tracing.default_backend not in used:
        errs.add(
            root.field("defaultBackend"), "has to be set to one of the tracing backend in mesh"
        )


# -- metrics ----------------------------------------------------------------------------------


def _metrics(errs: Violations, metrics: mesh_pb.Metrics | None) -> None:
    if metrics is None:
        return
    root = Path("metrics")
    used: set[str] = set()
    for i, backend in enumerate(metrics.backends):
        path = root.field("backends").index(i)
        if backend.name in used:
            errs.add(
                path.field("name"),
                f"{go_quote(backend.name)} name is already used for another backend",
            )
        if backend.type != _METRICS_PROMETHEUS:
            errs.add(
                path.field("type"),
                f"unknown backend type. Available backends: {go_quote(_METRICS_PROMETHEUS)}",
            )
        else:
            to_typed(
                mesh_pb.PrometheusMetricsBackendConfig,
                backend.conf,
                path.field("config"),
                errs,
                prefix="could not convert the backend: ",
            )
        used.add(backend.name)
    if metrics.enabled_backend and metrics.enabled_backend not in used:
        errs.add(root.field("enabledBackend"), "has to be set to one of the backends in the mesh")


def validate_mesh(name: str, mesh: str, spec: mesh_pb.Mesh) -> ValidationError | None:
    errs = Violations()
    _mtls(errs, spec.mtls)
    _logging(errs, spec.logging)
    _tracing(errs, spec.tracing)
    _metrics(errs, spec.metrics)
    if not errs:
        _ca_backends(errs, spec.mtls)
    return errs.error()
