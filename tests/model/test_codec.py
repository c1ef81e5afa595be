"""The strict proto3-JSON codec: Kuma's JSON names and shapes, and every bad field reported."""

from __future__ import annotations

import datetime as dt

import pytest

from kuma.errors import ValidationError, Violation
from kuma.model.codec import decode, encode, format_duration, parse_duration, parse_timestamp
from kuma.model.yamlio import load_documents
from kuma.pb.kuma.mesh import v1alpha1 as pb
from kuma.pb.kuma.system import v1alpha1 as system_pb


def violations(cls: type, data: object) -> list[Violation]:
    with pytest.raises(ValidationError) as info:
        decode(cls, data)
    return info.value.violations


def test_dataplane_round_trips_with_kuma_field_names_and_order() -> None:
    (doc,) = load_documents(
        """
networking:
  address: 192.168.0.2
  inbound:
  - port: 8000
    servicePort: 80
    tags: {version: v1, kuma.io/service: backend}
  outbound:
  - port: 10001
    service: db
  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15001
"""
    )
    out = encode(decode(pb.Dataplane, doc))
    assert out == {
        "networking": {
            "address": "192.168.0.2",
            "inbound": [
                {
                    "port": 8000,
                    "servicePort": 80,
                    "tags": {"kuma.io/service": "backend", "version": "v1"},
                }
            ],
            "outbound": [{"port": 10001, "service": "db"}],
            "transparentProxying": {"redirectPortInbound": 15006, "redirectPortOutbound": 15001},
        }
    }
    assert list(out["networking"]["inbound"][0]["tags"]) == ["kuma.io/service", "version"]


def test_json_names_that_are_not_plain_camel_case() -> None:
    insight = decode(pb.DataplaneInsight, {"mTLS": {"certificateRegenerations": 3}})
    assert encode(insight) == {"mTLS": {"certificateRegenerations": 3}}
    prom = decode(pb.PrometheusMetricsBackendConfig, {"skipMTLS": False, "port": 5670})
    assert encode(prom) == {"port": 5670, "skipMTLS": False}  # set wrapper printed even if false
    zipkin = decode(pb.ZipkinTracingBackendConfig, {"traceId128bit": True})
    assert encode(zipkin) == {"traceId128bit": True}


def test_int64_as_strings_durations_timestamps_wrappers_and_bytes() -> None:
    insight = decode(
        pb.DataplaneInsight,
        {
            "subscriptions": [
                {
                    "id": "x",
                    "connectTime": "2020-10-22T10:00:00.5Z",
                    "status": {"total": {"responsesSent": "7", "responsesRejected": 1}},
                }
            ]
        },
    )
    assert encode(insight) == {
        "subscriptions": [
            {
                "id": "x",
                "connectTime": "2020-10-22T10:00:00.500Z",
                "status": {"total": {"responsesSent": "7", "responsesRejected": "1"}},
            }
        ]
    }
    hc = decode(pb.HealthCheck, {"conf": {"interval": "1m30s", "timeout": "0.25s"}})
    assert encode(hc) == {"conf": {"interval": "90s", "timeout": "0.250s"}}
    fi = decode(pb.FaultInjection, {"conf": {"abort": {"percentage": 50, "httpStatus": 500}}})
    assert encode(fi) == {"conf": {"abort": {"percentage": 50, "httpStatus": 500}}}
    secret = decode(system_pb.Secret, {"data": "c2VjcmV0"})
    assert secret.data == b"secret"
    assert encode(secret) == {"data": "c2VjcmV0"}


def test_struct_conf_is_kept_as_plain_json() -> None:
    mesh = decode(
        pb.Mesh,
        {
            "logging": {
                "backends": [
                    {"name": "f", "type": "file", "conf": {"path": "/tmp/x", "n": [1, {"a": None}]}}
                ]
            }
        },
    )
    assert encode(mesh)["logging"]["backends"][0]["conf"] == {
        "path": "/tmp/x",
        "n": [1, {"a": None}],
    }


def test_every_bad_field_is_reported_with_its_path() -> None:
    got = violations(
        pb.Dataplane,
        {
            "networking": {
                "adress": "1.1.1.1",
                "address": 5,
                "inbound": [{"port": -1, "tags": {"a": 3}}, "x"],
                "outbound": {"port": 1},
            },
            "metrics": [],
        },
    )
    assert got == [
        Violation("networking.adress", "unknown field"),
        Violation("networking.address", "must be a string, got a number"),
        Violation("networking.inbound[0].port", "must be in range [0, 4294967295], got -1"),
        Violation('networking.inbound[0].tags["a"]', "must be a string, got a number"),
        Violation("networking.inbound[1]", "must be an object, got a string"),
        Violation("networking.outbound", "must be a list, got an object"),
        Violation("metrics", "must be an object, got a list"),
    ]


def test_scalars_are_checked_strictly() -> None:
    assert violations(pb.DataplaneNetworkingInbound, {"port": True}) == [
        Violation("port", "must be an integer, got a boolean")
    ]
    assert violations(pb.DataplaneNetworkingInbound, {"port": "eighty"}) == [
        Violation("port", "must be an integer, got a string 'eighty'")
    ]
    assert violations(pb.DataplaneNetworkingInbound, {"port": 4294967296}) == [
        Violation("port", "must be in range [0, 4294967295], got 4294967296")
    ]
    assert decode(pb.DataplaneNetworkingInbound, {"port": "8080"}).port == 8080
    assert violations(pb.HealthCheckConf, {"interval": "10 parsecs"}) == [
        Violation("interval", 'invalid duration \'10 parsecs\', expected e.g. "5s" or "1m30s"')
    ]
    assert violations(system_pb.Secret, {"data": "***"}) == [
        Violation("data", "must be valid base64")
    ]
    assert violations(pb.Mesh, "mesh") == [Violation("", "must be an object, got a string")]


def test_oneof_allows_a_single_member() -> None:
    assert violations(pb.ProxyTemplateModifications, {"cluster": {}, "listener": {}}) == [
        Violation("listener", 'only one of "cluster" and "listener" may be set')
    ]


def test_null_means_unset() -> None:
    dp = decode(pb.Dataplane, {"networking": None, "metrics": None})
    assert dp.networking is None
    assert encode(dp) == {}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10),
        ("1.5s", 1.5),
        ("1m30s", 90),
        ("500ms", 0.5),
        ("72h", 259200),
        ("-2s", -2),
        ("0", 0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "10", "s", "1x", "1.5.5s", "--1s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_duration_and_timestamp_formats() -> None:
    assert format_duration(dt.timedelta(seconds=5)) == "5s"
    assert format_duration(dt.timedelta(milliseconds=1500)) == "1.500s"
    assert format_duration(dt.timedelta(microseconds=1)) == "0.000001s"
    assert parse_timestamp("2020-10-22T12:00:00.123456789+02:00") == dt.datetime(
        2020, 10, 22, 10, 0, 0, 123456, tzinfo=dt.UTC
    )


def test_ignore_unknown_skips_unknown_fields_at_every_depth() -> None:
    data = {"networking": {"address": "1.1.1.1", "extra": 1, "inbound": [{"port": 1, "x": 2}]}}
    dp = decode(pb.Dataplane, data, ignore_unknown=True)
    assert encode(dp) == {"networking": {"address": "1.1.1.1", "inbound": [{"port": 1}]}}
    # type errors are still reported
    assert violations(pb.Dataplane, {"networking": {"address": 1, "extra": 1}})[0] == Violation(
        "networking.address", "must be a string, got a number"
    )
