"""Access log formats: parsing (Kuma's messages), Kuma's placeholders, the headers Envoy's gRPC
logger must send, and rendering entries as Envoy would."""

from __future__ import annotations

import datetime as dt

import pytest
from envoy.data.accesslog.v3 import accesslog_pb2

from kuma.xds.envoy.accesslog import (
    DEFAULT_HTTP_FORMAT,
    DEFAULT_TCP_FORMAT,
    AccessLogFormatError,
    parse_format,
)


@pytest.mark.parametrize("text", [DEFAULT_HTTP_FORMAT, DEFAULT_TCP_FORMAT])
def test_default_formats_round_trip(text: str) -> None:
    fmt = parse_format(text)
    # header names are canonically lower case (Envoy logs them so)
    assert str(fmt) == text.replace("(:METHOD)", "(:method)").replace(
        "(X-ENVOY-ORIGINAL-PATH?:PATH)", "(x-envoy-original-path?:path)"
    ).replace("(X-ENVOY-UPSTREAM-SERVICE-TIME)", "(x-envoy-upstream-service-time)").replace(
        "(X-FORWARDED-FOR)", "(x-forwarded-for)"
    ).replace("(USER-AGENT)", "(user-agent)").replace("(X-REQUEST-ID)", "(x-request-id)").replace(
        "(:AUTHORITY)", "(:authority)"
    )
    assert text.endswith("\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("%BAD", 'expected a command operator to start at position 1, instead got: "%BAD"'),
        ("%REQ%", 'command "%REQ(X?Y):Z%" requires a header'),
        ("%REQ(a?b?c)%", 'more than 1 alternative header specified in "%REQ(a?b?c)%"'),
        ("%BYTES_SENT(x)%", "doesn't support arguments or max length constraint"),
    ],
)
def test_invalid_formats_have_kumas_messages(text: str, message: str) -> None:
    with pytest.raises(AccessLogFormatError) as error:
        parse_format(text)
    assert str(error.value).startswith("format string is not valid: ")
    assert message in str(error.value)


def test_interpolation_binds_kuma_placeholders_only() -> None:
    fmt = parse_format("%KUMA_MESH% %KUMA_SOURCE_SERVICE%->%KUMA_UNKNOWN% %START_TIME(%s)%")
    bound = fmt.interpolate({"KUMA_MESH": "demo", "KUMA_SOURCE_SERVICE": "web"})
    assert str(bound) == "demo web-> %START_TIME(%s)%"


def test_headers_envoy_must_log() -> None:
    fmt = parse_format(
        "%REQ(:METHOD)% %REQ(X-Custom?X-Alt):10% %REQ(user-agent)% %RESP(Server)% "
        "%TRAILER(grpc-status)% %FILTER_STATE(my.key)% %REQ(x-custom)%"
    )
    assert fmt.request_headers == ["x-custom", "x-alt"]  # pseudo/well-known ones come anyway
    assert fmt.response_headers == ["server"]
    assert fmt.response_trailers == ["grpc-status"]
    assert fmt.filter_state_keys == ["my.key"]


def http_entry() -> accesslog_pb2.HTTPAccessLogEntry:
    entry = accesslog_pb2.HTTPAccessLogEntry(
        protocol_version=accesslog_pb2.HTTPAccessLogEntry.HTTP2
    )
    common = entry.common_properties
    common.start_time.FromDatetime(dt.datetime(2021, 2, 3, 4, 5, 6, 7000))
    common.duration.FromMilliseconds(1500)
    common.time_to_last_rx_byte.FromMilliseconds(3)
    common.time_to_first_upstream_rx_byte.FromMilliseconds(10)
    common.time_to_last_downstream_tx_byte.FromMilliseconds(25)
    common.downstream_remote_address.socket_address.address = "::1"
    common.downstream_remote_address.socket_address.port_value = 5555
    common.upstream_cluster = "backend"
    common.response_flags.no_healthy_upstream = True
    common.response_flags.fault_injected = True
    common.tls_properties.tls_version = accesslog_pb2.TLSProperties.TLSv1_3
    common.tls_properties.tls_cipher_suite.value = 0x1301
    san = common.tls_properties.peer_certificate_properties.subject_alt_name.add()
    san.uri = "spiffe://default/web"
    common.metadata.filter_metadata["envoy.lb"].fields["version"].string_value = "v1"
    entry.request.request_method = 3  # POST
    entry.request.path = "/orders"
    entry.request.original_path = "/api/orders"
    entry.request.request_headers["x-custom"] = "abcdefghijklmnop"
    entry.request.request_body_bytes = 12
    entry.response.response_code.value = 201
    entry.response.response_body_bytes = 34
    entry.response.response_headers["server"] = "envoy"
    entry.response.response_trailers["grpc-status"] = "0"
    return entry


def test_http_entry_rendering() -> None:
    fmt = parse_format(
        "[%START_TIME%] %REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL% "
        "%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% "
        "%REQUEST_DURATION% %RESPONSE_DURATION% %RESPONSE_TX_DURATION% %REQ(X-Custom):5% "
        "%REQ(missing)% %RESP(server)% %TRAILER(grpc-status)% %UPSTREAM_CLUSTER% "
        "%DOWNSTREAM_REMOTE_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% "
        "%DOWNSTREAM_PEER_URI_SAN% %DOWNSTREAM_TLS_VERSION% %DOWNSTREAM_TLS_CIPHER% "
        "%DYNAMIC_METADATA(envoy.lb:version)% %HOSTNAME%"
    )
    assert fmt.format_http_entry(http_entry()) == (
        "[2021-02-03T04:05:06.007Z] POST /api/orders HTTP/2 201 UH,FI 12 34 1500 3 10 15 abcde "
        "- envoy 0 backend [::1]:5555 ::1 spiffe://default/web TLSv1.3 TLS_AES_128_GCM_SHA256 "
        "v1 UNSUPPORTED_COMMAND(%HOSTNAME%)"
    )


def test_tcp_entry_rendering_follows_envoy_for_http_only_commands() -> None:
    entry = accesslog_pb2.TCPAccessLogEntry()
    entry.common_properties.upstream_remote_address.socket_address.address = "10.0.0.2"
    entry.common_properties.upstream_remote_address.socket_address.port_value = 80
    entry.common_properties.time_to_last_downstream_tx_byte.FromMilliseconds(7)
    entry.connection_properties.sent_bytes = 5
    entry.connection_properties.received_bytes = 6
    fmt = parse_format(DEFAULT_TCP_FORMAT).interpolate(
        {
            "KUMA_MESH": "default",
            "KUMA_SOURCE_ADDRESS_WITHOUT_PORT": "10.0.0.1",
            "KUMA_SOURCE_SERVICE": "web",
            "KUMA_DESTINATION_SERVICE": "backend",
        }
    )
    assert fmt.format_tcp_entry(entry) == (
        "[-] - default 10.0.0.1(web)->10.0.0.2:80(backend) took 7ms, sent 5 bytes, "
        "received: 6 bytes\n"
    )
    http_only = parse_format("%PROTOCOL% %RESPONSE_CODE% %REQ(:path)% %REQUEST_DURATION%")
    assert http_only.format_tcp_entry(entry) == "- 0 - -"
