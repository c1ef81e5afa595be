"""Envoy access log format strings, the way Kuma handles them (Kuma's `pkg/envoy/accesslog`).

A format is literal text and command operators (`%START_TIME%`, `%REQ(X-Header?Alt):10%`,
`%KUMA_SOURCE_SERVICE%`, ...). It is used in three places:

* the control plane binds Kuma's own placeholders (`%KUMA_MESH%`, `%KUMA_SOURCE_SERVICE%`,
  `%KUMA_DESTINATION_SERVICE%`, `%KUMA_SOURCE_ADDRESS%`, `%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%`,
  `%KUMA_TRAFFIC_DIRECTION%`) to text (`interpolate`), and renders it back (`str()`) for
  Envoy's file logger or for the `log_name` of a gRPC logger;
* for a TCP logging backend, it tells Envoy's gRPC access logger which extra headers to send
  (`request_headers`, `response_headers`, `response_trailers`, `filter_state_keys`);
* kuma-dp's access log server renders each HTTP/TCP log entry Envoy streams to it with the same
  format (`format_http_entry`, `format_tcp_entry`), as Envoy would have rendered it itself: an
  empty value is written `-`.

    fmt = parse_format("[%START_TIME%] %KUMA_SOURCE_SERVICE%->%UPSTREAM_HOST%\\n")
    str(fmt.interpolate({"KUMA_SOURCE_SERVICE": "web"}))   # '[%START_TIME%] web->%UPSTREAM_HOST%\\n'
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from kuma.model.validators.accesslog import format_error

__all__ = [
    "DEFAULT_HTTP_FORMAT",
    "DEFAULT_TCP_FORMAT",
    "KUMA_DESTINATION_SERVICE",
    "KUMA_MESH",
    "KUMA_SOURCE_ADDRESS",
    "KUMA_SOURCE_ADDRESS_WITHOUT_PORT",
    "KUMA_SOURCE_SERVICE",
    "KUMA_TRAFFIC_DIRECTION",
    "AccessLogFormat",
    "AccessLogFormatError",
    "parse_format",
]

DEFAULT_TCP_FORMAT = (
    "[%START_TIME%] %RESPONSE_FLAGS% %KUMA_MESH% %KUMA_SOURCE_ADDRESS_WITHOUT_PORT%"
    "(%KUMA_SOURCE_SERVICE%)->%UPSTREAM_HOST%(%KUMA_DESTINATION_SERVICE%) took %DURATION%ms, "
    "sent %BYTES_SENT% bytes, received: %BYTES_RECEIVED% bytes\n"
)
"""Kuma's default format of TCP traffic logs (with its final newline)."""
DEFAULT_HTTP_FORMAT = (
    '[%START_TIME%] %KUMA_MESH% "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
    '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" '
    '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%KUMA_SOURCE_SERVICE%" '
    '"%KUMA_DESTINATION_SERVICE%" "%KUMA_SOURCE_ADDRESS_WITHOUT_PORT%" "%UPSTREAM_HOST%"\n'
)
"""Kuma's default format of HTTP traffic logs (with its final newline)."""

KUMA_SOURCE_ADDRESS = "KUMA_SOURCE_ADDRESS"
KUMA_SOURCE_ADDRESS_WITHOUT_PORT = "KUMA_SOURCE_ADDRESS_WITHOUT_PORT"
KUMA_SOURCE_SERVICE = "KUMA_SOURCE_SERVICE"
KUMA_DESTINATION_SERVICE = "KUMA_DESTINATION_SERVICE"
KUMA_MESH = "KUMA_MESH"
KUMA_TRAFFIC_DIRECTION = "KUMA_TRAFFIC_DIRECTION"

_COMMAND = re.compile(r"%(?P<command>[A-Z_0-9]+)(?:\((?P<args>[^)]*)\))?(?::(?P<limit>[0-9]+))?%")
_UNSPECIFIED = "-"  # what Envoy writes for an empty value

# Request headers Envoy's gRPC HTTP logger always sends (as fields of the entry).
_ALWAYS_CAPTURED = frozenset(
    (
        ":method",
        ":scheme",
        ":authority",
        ":path",
        "user-agent",
        "referer",
        "x-forwarded-for",
        "x-request-id",
        "x-envoy-original-path",
    )
)


class AccessLogFormatError(ValueError):
    """The format string is not valid (Kuma's message, starting `format string is not valid`)."""


# -- fragments ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Text:
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class _Header:
    """`%REQ(X?Y):Z%`, `%RESP(X?Y):Z%`, `%TRAILER(X?Y):Z%` (header names lower-cased)."""

    command: str
    header: str
    alt: str
    max_length: int

    def __str__(self) -> str:
        inner = self.header + (f"?{self.alt}" if self.alt else "")
        limit = f":{self.max_length}" if self.max_length else ""
        return f"%{self.command}({inner}){limit}%"

    def pick(self, headers: Mapping[str, str]) -> str:
        value = headers.get(self.header) if self.header else None
        if value is None and self.alt:
            value = headers.get(self.alt)
        value = value or ""
        if self.max_length and len(value) > self.max_length:
            value = value[: self.max_length]
        return value

    @property
    def names(self) -> list[str]:
        return [h for h in (self.header, self.alt) if h]


@dataclass(frozen=True, slots=True)
class _DynamicMetadata:
    namespace: str
    path: tuple[str, ...]
    max_length: int

    def __str__(self) -> str:
        inner = ":".join((self.namespace, *self.path))
        limit = f":{self.max_length}" if self.max_length else ""
        return f"%DYNAMIC_METADATA({inner}){limit}%"


@dataclass(frozen=True, slots=True)
class _FilterState:
    key: str
    max_length: int

    def __str__(self) -> str:
        limit = f":{self.max_length}" if self.max_length else ""
        return f"%FILTER_STATE({self.key}){limit}%"


@dataclass(frozen=True, slots=True)
class _StartTime:
    spec: str

    def __str__(self) -> str:
        return f"%START_TIME({self.spec})%" if self.spec else "%START_TIME%"


@dataclass(frozen=True, slots=True)
class _Field:
    """A plain command (`%BYTES_SENT%`); `KUMA_*` ones are placeholders the CP binds."""

    command: str

    def __str__(self) -> str:
        return f"%{self.command}%"

    @property
    def placeholder(self) -> bool:
        return self.command.startswith("KUMA_")


_Fragment = _Text | _Header | _DynamicMetadata | _FilterState | _StartTime | _Field


def _fragment(command: str, args: str, limit: str) -> _Fragment:
    max_length = int(limit) if limit else 0
    if command in ("REQ", "RESP", "TRAILER"):
        header, _, alt = args.partition("?")
        return _Header(command, header.lower(), alt.lower(), max_length)
    if command == "DYNAMIC_METADATA":
        namespace, *path = args.split(":")
        return _DynamicMetadata(namespace, tuple(path), max_length)
    if command == "FILTER_STATE":
        return _FilterState(args, max_length)
    if command == "START_TIME":
        return _StartTime(args)
    return _Field(command)


def parse_format(text: str) -> AccessLogFormat:
    """Parse `text`; AccessLogFormatError (with Kuma's message) when it is not valid."""
    problem = format_error(text)
    if problem is not None:
        raise AccessLogFormatError(problem)
    fragments: list[_Fragment] = []
    pos = 0
    while pos < len(text):
        if text[pos] != "%":
            end = text.find("%", pos)
            end = len(text) if end < 0 else end
            fragments.append(_Text(text[pos:end]))
            pos = end
            continue
        m = _COMMAND.match(text, pos)
        assert m is not None  # format_error said it is valid
        fragments.append(_fragment(m["command"], m["args"] or "", m["limit"] or ""))
        pos = m.end()
    return AccessLogFormat(tuple(fragments))


# -- formatting log entries ---------------------------------------------------------------------

_RESPONSE_FLAGS = (
    ("failed_local_healthcheck", "LH"),
    ("no_healthy_upstream", "UH"),
    ("upstream_request_timeout", "UT"),
    ("local_reset", "LR"),
    ("upstream_remote_reset", "UR"),
    ("upstream_connection_failure", "UF"),
    ("upstream_connection_termination", "UC"),
    ("upstream_overflow", "UO"),
    ("no_route_found", "NR"),
    ("delay_injected", "DI"),
    ("fault_injected", "FI"),
    ("rate_limited", "RL"),
    ("unauthorized_details", "UAEX"),
    ("rate_limit_service_error", "RLSE"),
    ("downstream_connection_termination", "DC"),
    ("upstream_retry_limit_exceeded", "URX"),
    ("stream_idle_timeout", "SI"),
    ("invalid_envoy_request_headers", "IH"),
    ("downstream_protocol_error", "DPE"),
    ("upstream_max_stream_duration_reached", "UMSDR"),
    ("response_from_cache_filter", "RFCF"),
    ("no_filter_config_found", "NFCF"),
    ("duration_timeout", "DT"),
    ("upstream_protocol_error", "UPE"),
    ("no_cluster_found", "NC"),
    ("overload_manager", "OM"),
    ("dns_resolution_failure", "DF"),
    ("downstream_remote_reset", "DR"),
)
_HTTP_VERSIONS = {1: "HTTP/1.0", 2: "HTTP/1.1", 3: "HTTP/2", 4: "HTTP/3"}
_TLS_VERSIONS = {1: "TLSv1", 2: "TLSv1.1", 3: "TLSv1.2", 4: "TLSv1.3"}
_CIPHER_SUITES = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0xC02B: "ECDHE-ECDSA-AES128-GCM-SHA256",
    0xC02C: "ECDHE-ECDSA-AES256-GCM-SHA384",
    0xC02F: "ECDHE-RSA-AES128-GCM-SHA256",
    0xC030: "ECDHE-RSA-AES256-GCM-SHA384",
    0xCCA8: "ECDHE-RSA-CHACHA20-POLY1305",
    0xCCA9: "ECDHE-ECDSA-CHACHA20-POLY1305",
}
_METHODS = {
    1: "GET",
    2: "HEAD",
    3: "POST",
    4: "PUT",
    5: "DELETE",
    6: "CONNECT",
    7: "OPTIONS",
    8: "TRACE",
    9: "PATCH",
}


def _ms(duration: Any) -> str:
    return str(duration.ToMilliseconds())


def _address(address: Any, with_port: bool) -> str:
    which = address.WhichOneof("address")
    if which == "socket_address":
        socket = address.socket_address
        host = socket.address
        if not with_port:
            return str(host)
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{socket.port_value}"
    if which == "pipe":
        return str(address.pipe.path)
    return ""


def _flag_set(flags: Any, name: str) -> bool:
    if name == "unauthorized_details":  # set with reason EXTERNAL_SERVICE
        return bool(flags.HasField(name) and flags.unauthorized_details.reason == 1)
    return bool(getattr(flags, name, False))


def _response_flags(flags: Any) -> str:
    return ",".join(code for name, code in _RESPONSE_FLAGS if _flag_set(flags, name))


def _uri_sans(properties: Any) -> str:
    return ",".join(
        san.uri for san in properties.subject_alt_name if san.WhichOneof("san") == "uri"
    )


def _start_time(common: Any) -> str:
    if not common.HasField("start_time"):
        return ""
    moment: dt.datetime = common.start_time.ToDatetime(tzinfo=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _common_field(command: str, common: Any) -> str:
    tls = common.tls_properties
    match command:
        case "DURATION":
            if common.HasField("duration"):
                return _ms(common.duration)
            if common.HasField("time_to_last_downstream_tx_byte"):
                return _ms(common.time_to_last_downstream_tx_byte)
            return ""
        case "RESPONSE_FLAGS":
            return _response_flags(common.response_flags)
        case "UPSTREAM_HOST":
            return _address(common.upstream_remote_address, True)
        case "UPSTREAM_CLUSTER":
            return str(common.upstream_cluster)
        case "UPSTREAM_LOCAL_ADDRESS":
            return _address(common.upstream_local_address, True)
        case "UPSTREAM_TRANSPORT_FAILURE_REASON":
            return str(common.upstream_transport_failure_reason)
        case "DOWNSTREAM_LOCAL_ADDRESS":
            return _address(common.downstream_local_address, True)
        case "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":
            return _address(common.downstream_local_address, False)
        case "DOWNSTREAM_REMOTE_ADDRESS":
            return _address(common.downstream_remote_address, True)
        case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":
            return _address(common.downstream_remote_address, False)
        case "DOWNSTREAM_DIRECT_REMOTE_ADDRESS":
            return _address(common.downstream_direct_remote_address, True)
        case "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT":
            return _address(common.downstream_direct_remote_address, False)
        case "REQUESTED_SERVER_NAME":
            return str(tls.tls_sni_hostname)
        case "ROUTE_NAME":
            return str(common.route_name)
        case "DOWNSTREAM_PEER_URI_SAN":
            return _uri_sans(tls.peer_certificate_properties)
        case "DOWNSTREAM_LOCAL_URI_SAN":
            return _uri_sans(tls.local_certificate_properties)
        case "DOWNSTREAM_PEER_SUBJECT":
            return str(tls.peer_certificate_properties.subject)
        case "DOWNSTREAM_LOCAL_SUBJECT":
            return str(tls.local_certificate_properties.subject)
        case "DOWNSTREAM_TLS_SESSION_ID":
            return str(tls.tls_session_id)
        case "DOWNSTREAM_TLS_CIPHER":
            if not tls.HasField("tls_cipher_suite") or tls.tls_cipher_suite.value == 0xFFFF:
                return ""
            suite = tls.tls_cipher_suite.value
            return _CIPHER_SUITES.get(suite, f"0x{suite:04X}")
        case "DOWNSTREAM_TLS_VERSION":
            return _TLS_VERSIONS.get(tls.tls_version, "")
    # Nothing in a gRPC log entry carries it (peer certificate details, HOSTNAME, ...).
    return f"UNSUPPORTED_COMMAND(%{command}%)"


def _request_header(request: Any, name: str) -> str | None:
    match name:
        case ":method":
            return _METHODS.get(request.request_method)
        case ":scheme":
            return request.scheme or None
        case ":authority":
            return request.authority or None
        case ":path":
            return request.path or None
        case "user-agent":
            return request.user_agent or None
        case "referer":
            return request.referer or None
        case "x-forwarded-for":
            return request.forwarded_for or None
        case "x-request-id":
            return request.request_id or None
        case "x-envoy-original-path":
            return request.original_path or None
    value = request.request_headers.get(name)
    return None if value is None else str(value)


class _RequestHeaders(Mapping[str, str]):
    """An HTTP entry's request headers: pseudo and well-known ones are fields of the entry."""

    def __init__(self, request: Any) -> None:
        self._request = request

    def __getitem__(self, name: str) -> str:
        value = _request_header(self._request, name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Any:
        return iter(self._request.request_headers)

    def __len__(self) -> int:
        return len(self._request.request_headers)


def _metadata_value(common: Any, fragment: _DynamicMetadata) -> str:
    if fragment.namespace not in common.metadata.filter_metadata:
        return ""
    value: Any = json_format.MessageToDict(common.metadata.filter_metadata[fragment.namespace])
    for key in fragment.path:
        if not isinstance(value, dict) or key not in value:
            return ""
        value = value[key]
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    if fragment.max_length and len(text) > fragment.max_length:
        text = text[: fragment.max_length]
    return text


# -- the format ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessLogFormat:
    fragments: tuple[_Fragment, ...]

    def __str__(self) -> str:
        return "".join(str(f) for f in self.fragments)

    def interpolate(self, variables: Mapping[str, str]) -> AccessLogFormat:
        """Bind Kuma's `%KUMA_*%` placeholders to text (unknown ones become empty text)."""
        return AccessLogFormat(
            tuple(
                _Text(variables.get(f.command, ""))
                if isinstance(f, _Field) and f.placeholder
                else f
                for f in self.fragments
            )
        )

    def _headers(self, command: str, skip: Iterable[str] = ()) -> list[str]:
        skipped = set(skip)
        names: list[str] = []
        for f in self.fragments:
            if isinstance(f, _Header) and f.command == command:
                names.extend(n for n in f.names if n not in skipped and n not in names)
        return names

    @property
    def request_headers(self) -> list[str]:
        """Request headers Envoy must add to HTTP log entries (`additional_request_headers_to_log`)."""
        return self._headers("REQ", _ALWAYS_CAPTURED)

    @property
    def response_headers(self) -> list[str]:
        return self._headers("RESP")

    @property
    def response_trailers(self) -> list[str]:
        return self._headers("TRAILER")

    @property
    def filter_state_keys(self) -> list[str]:
        keys: list[str] = []
        for f in self.fragments:
            if isinstance(f, _FilterState) and f.key and f.key not in keys:
                keys.append(f.key)
        return keys

    # -- rendering entries (kuma-dp's access log server) -----------------------------------

    def format_http_entry(self, entry: Any) -> str:
        """Render an `envoy.data.accesslog.v3.HTTPAccessLogEntry`."""
        common, request, response = entry.common_properties, entry.request, entry.response
        request_headers = _RequestHeaders(request)
        out = []
        for f in self.fragments:
            if isinstance(f, _Text):
                out.append(f.text)
                continue
            value: str
            if isinstance(f, _Header):
                source: Mapping[str, str] = request_headers
                if f.command == "RESP":
                    source = response.response_headers
                elif f.command == "TRAILER":
                    source = response.response_trailers
                value = f.pick(source)
            elif isinstance(f, _Field):
                if f.placeholder:  # not bound by the control plane: left as it is
                    value = str(f)
                else:
                    value = self._http_field(f.command, entry, common, request, response)
            else:
                value = self._other(f, common)
            out.append(value or _UNSPECIFIED)
        return "".join(out)

    @staticmethod
    def _http_field(command: str, entry: Any, common: Any, request: Any, response: Any) -> str:
        match command:
            case "BYTES_RECEIVED":
                return str(request.request_body_bytes)
            case "BYTES_SENT":
                return str(response.response_body_bytes)
            case "PROTOCOL":
                return _HTTP_VERSIONS.get(entry.protocol_version, "")
            case "RESPONSE_CODE":
                return str(response.response_code.value)
            case "RESPONSE_CODE_DETAILS":
                return str(response.response_code_details)
            case "REQUEST_DURATION":
                has = common.HasField("time_to_last_rx_byte")
                return _ms(common.time_to_last_rx_byte) if has else ""
            case "RESPONSE_DURATION":
                has = common.HasField("time_to_first_upstream_rx_byte")
                return _ms(common.time_to_first_upstream_rx_byte) if has else ""
            case "RESPONSE_TX_DURATION":
                if not (
                    common.HasField("time_to_last_downstream_tx_byte")
                    and common.HasField("time_to_first_upstream_rx_byte")
                ):
                    return ""
                outer = common.time_to_last_downstream_tx_byte.ToMilliseconds()
                return str(outer - common.time_to_first_upstream_rx_byte.ToMilliseconds())
        return _common_field(command, common)

    def format_tcp_entry(self, entry: Any) -> str:
        """Render an `envoy.data.accesslog.v3.TCPAccessLogEntry`."""
        common, connection = entry.common_properties, entry.connection_properties
        out = []
        for f in self.fragments:
            if isinstance(f, _Text):
                out.append(f.text)
                continue
            value = ""
            if isinstance(f, _Field) and f.placeholder:
                value = str(f)
            elif isinstance(f, _Field):
                match f.command:
                    case "BYTES_RECEIVED":
                        value = str(connection.received_bytes)
                    case "BYTES_SENT":
                        value = str(connection.sent_bytes)
                    case "RESPONSE_CODE":
                        value = "0"  # like Envoy for TCP
                    case (
                        "PROTOCOL"
                        | "RESPONSE_CODE_DETAILS"
                        | "REQUEST_DURATION"
                        | "RESPONSE_DURATION"
                        | "RESPONSE_TX_DURATION"
                    ):
                        value = ""
                    case _:
                        value = _common_field(f.command, common)
            elif not isinstance(f, _Header):  # no headers in a TCP entry
                value = self._other(f, common)
            out.append(value or _UNSPECIFIED)
        return "".join(out)

    @staticmethod
    def _other(f: _Fragment, common: Any) -> str:
        if isinstance(f, _StartTime):
            return _start_time(common)
        if isinstance(f, _DynamicMetadata):
            return _metadata_value(common, f)
        if isinstance(f, _FilterState):
            return f"UNSUPPORTED_COMMAND({f})"
        return ""
