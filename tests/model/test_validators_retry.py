"""Retry validation (Kuma 1.1's rules, paths and messages)."""

from __future__ import annotations

import pytest

from kuma.errors import ValidationError, Violation
from kuma.model.codec import decode, encode
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb
from tests.model.test_validators_common import violations

SELECTORS = """
        sources:
        - match:
            kuma.io/service: web
            region: eu
        destinations:
        - match:
            kuma.io/service: backend
"""

VALID = {
    "all protocols configured": SELECTORS
    + """
        conf:
          http:
            numRetries: 3
            perTryTimeout: 200ms
            backOff:
              baseInterval: 30ms
              maxInterval: 1.2s
            retriableStatusCodes: [501, 502]
          grpc:
            numRetries: 3
            perTryTimeout: 200ms
            backOff:
              baseInterval: 58ms
              maxInterval: 1s
            retryOn:
            - cancelled
            - unavailable
          tcp:
            maxConnectAttempts: 5
        """,
    "http with status codes only": SELECTORS
    + """
        conf:
          http:
            retriableStatusCodes: [503]
        """,
    "grpc with retryOn only, every status once": SELECTORS
    + """
        conf:
          grpc:
            retryOn: [cancelled, deadline_exceeded, internal, resource_exhausted, unavailable]
        """,
    "tcp only": SELECTORS
    + """
        conf:
          tcp:
            maxConnectAttempts: 1
        """,
    "back-off without maxInterval": SELECTORS
    + """
        conf:
          http:
            backOff:
              baseInterval: 25ms
        """,
    "negative durations pass, as in Kuma": SELECTORS
    + """
        conf:
          http:
            perTryTimeout: -1s
            backOff: {baseInterval: -25ms, maxInterval: -1s}
        """,
    "wildcard service selectors": """
        sources:
        - match: {kuma.io/service: "*"}
        destinations:
        - match: {kuma.io/service: "*"}
        conf:
          tcp: {maxConnectAttempts: 2}
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid(text: str) -> None:
    assert violations("Retry", text) == []


INVALID = {
    # -- Kuma 1.1.0's retry_validator_test.go ------------------------------------------------
    "empty spec": (
        "",
        [
            ("sources", "must have at least one element"),
            ("destinations", "must have at least one element"),
            ("conf", "has to be defined"),
        ],
    ),
    "selectors without tags": (
        """
        sources:
        - match: {}
        destinations:
        - match: {}
        """,
        [
            ("sources[0].match", "must have at least one tag"),
            ("sources[0].match", 'mandatory tag "kuma.io/service" is missing'),
            ("destinations[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ("destinations[0].match", 'mandatory tag "kuma.io/service" is missing'),
            ("conf", "has to be defined"),
        ],
    ),
    "selectors with empty tag values": (
        """
        sources:
        - match:
            kuma.io/service:
            region:
        destinations:
        - match:
            kuma.io/service:
            region:
        """,
        [
            ('sources[0].match["kuma.io/service"]', "tag value must be non-empty"),
            ('sources[0].match["region"]', "tag value must be non-empty"),
            ("destinations[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ('destinations[0].match["kuma.io/service"]', "tag value must be non-empty"),
            ('destinations[0].match["region"]', 'tag "region" is not allowed'),
            ('destinations[0].match["region"]', "tag value must be non-empty"),
            ("conf", "has to be defined"),
        ],
    ),
    "empty conf": (
        SELECTORS + "        conf: {}\n",
        [("conf", "missing protocol [grpc|http|tcp] configuration")],
    ),
    "empty conf.http": (
        SELECTORS + "        conf:\n          http: {}\n",
        [("conf.http", "field cannot be empty")],
    ),
    "invalid conf.http": (
        SELECTORS
        + """
        conf:
          http:
            numRetries: 0
            perTryTimeout: "0"
            backOff: {}
        """,
        [
            ("conf.http.numRetries", "has to be greater than 0 when defined"),
            ("conf.http.perTryTimeout", "has to be greater than 0 when defined"),
            ("conf.http.backOff.baseInterval", "has to be defined"),
        ],
    ),
    "empty conf.grpc": (
        SELECTORS + "        conf:\n          grpc: {}\n",
        [("conf.grpc", "field cannot be empty")],
    ),
    "invalid conf.grpc": (
        SELECTORS
        + """
        conf:
          grpc:
            numRetries: 0
            backOff: {}
            perTryTimeout: "0"
            retryOn:
            - cancelled
            - resource_exhausted
            - cancelled
            - cancelled
            - resource_exhausted
            - internal
            - internal
            - internal
        """,
        [
            ("conf.grpc.retryOn", 'repeated value "cancelled" at indexes [0, 2, 3]'),
            ("conf.grpc.retryOn", 'repeated value "internal" at indexes [5, 6, 7]'),
            ("conf.grpc.retryOn", 'repeated value "resource_exhausted" at indexes [1, 4]'),
            ("conf.grpc.numRetries", "has to be greater than 0 when defined"),
            ("conf.grpc.perTryTimeout", "has to be greater than 0 when defined"),
            ("conf.grpc.backOff.baseInterval", "has to be defined"),
        ],
    ),
    "conf.grpc.backOff.baseInterval equal 0": (
        SELECTORS
        + '        conf:\n          grpc:\n            backOff:\n              baseInterval: "0"\n',
        [("conf.grpc.backOff.baseInterval", "has to be greater than 0")],
    ),
    "conf.grpc.backOff.maxInterval equal 0s": (
        SELECTORS
        + """
        conf:
          grpc:
            backOff:
              baseInterval: 20ms
              maxInterval: 0s
        """,
        [("conf.grpc.backOff.maxInterval", "has to be greater than 0 when defined")],
    ),
    "empty conf.tcp": (
        SELECTORS + "        conf:\n          tcp: {}\n",
        [("conf.tcp.maxConnectAttempts", "has to be greater than 0")],
    ),
    # -- more ------------------------------------------------------------------------------
    "null conf": (SELECTORS + "        conf:\n", [("conf", "has to be defined")]),
    "sections reported http, grpc, tcp whatever the order written": (
        SELECTORS
        + """
        conf:
          tcp: {}
          grpc: {}
          http: {}
        """,
        [
            ("conf.http", "field cannot be empty"),
            ("conf.grpc", "field cannot be empty"),
            ("conf.tcp.maxConnectAttempts", "has to be greater than 0"),
        ],
    ),
    "empty lists count as absent": (
        SELECTORS
        + """
        conf:
          http: {retriableStatusCodes: []}
          grpc: {retryOn: []}
        """,
        [("conf.http", "field cannot be empty"), ("conf.grpc", "field cannot be empty")],
    ),
    "maxInterval is not looked at while baseInterval is zero": (
        SELECTORS
        + """
        conf:
          http:
            backOff: {baseInterval: 0s, maxInterval: 0s}
        """,
        [("conf.http.backOff.baseInterval", "has to be greater than 0")],
    ),
    "maxInterval alone": (
        SELECTORS
        + """
        conf:
          http:
            backOff: {maxInterval: 0s}
        """,
        [("conf.http.backOff.baseInterval", "has to be defined")],
    ),
    "a status number Kuma has no name for, repeated": (
        SELECTORS
        + """
        conf:
          grpc:
            retryOn: [7, unavailable, 7, 4]
        """,
        [
            ("conf.grpc.retryOn", 'repeated value "7" at indexes [0, 2]'),
            ("conf.grpc.retryOn", 'repeated value "unavailable" at indexes [1, 3]'),
        ],
    ),
    "destination with more than the service tag, source without it": (
        """
        sources:
        - match: {kuma.io/protocol: http}
        destinations:
        - match: {kuma.io/service: backend, version: v2}
        conf:
          tcp: {maxConnectAttempts: 3}
        """,
        [
            ("sources[0].match", 'mandatory tag "kuma.io/service" is missing'),
            ("destinations[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ('destinations[0].match["version"]', 'tag "version" is not allowed'),
        ],
    ),
    "selector and conf violations together": (
        """
        sources:
        - match: {kuma.io/service: web}
        destinations: []
        conf:
          grpc: {numRetries: 0}
          tcp: {maxConnectAttempts: 0}
        """,
        [
            ("destinations", "must have at least one element"),
            ("conf.grpc.numRetries", "has to be greater than 0 when defined"),
            ("conf.tcp.maxConnectAttempts", "has to be greater than 0"),
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("Retry", text) == expected


def test_an_unknown_retry_on_name_is_refused_when_decoding() -> None:
    with pytest.raises(ValidationError) as info:
        decode(mesh_pb.Retry, {"conf": {"grpc": {"retryOn": ["cancelled", "aborted"]}}})
    assert info.value.violations == [Violation("conf.grpc.retryOn[1]", "unknown value 'aborted'")]


def test_retry_on_round_trips_names_and_unnamed_numbers() -> None:
    spec = decode(mesh_pb.Retry, {"conf": {"grpc": {"retryOn": [1, "internal", 9]}}})
    assert spec.conf is not None
    assert spec.conf.grpc is not None
    assert spec.conf.grpc.retry_on[:2] == [
        mesh_pb.RetryConfGrpcRetryOn.deadline_exceeded,
        mesh_pb.RetryConfGrpcRetryOn.internal,
    ]
    encoded = encode(spec)
    assert encoded == {"conf": {"grpc": {"retryOn": ["deadline_exceeded", "internal", 9]}}}
    assert encode(decode(mesh_pb.Retry, encoded)) == encoded
