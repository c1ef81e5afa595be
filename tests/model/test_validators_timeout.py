"""Timeout validation (Kuma 1.1's rules, paths and messages)."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations

SELECTORS = """
        sources:
        - match:
            kuma.io/service: frontend
            kuma.io/protocol: http
        destinations:
        - match:
            kuma.io/service: backend
"""

VALID = {
    # Kuma 1.1.0's timeout_validator_test.go
    "full policy": SELECTORS
    + """
        conf:
          connectTimeout: 5s
          tcp:
            idleTimeout: 50s
          http:
            requestTimeout: 15s
            idleTimeout: 1h
          grpc:
            streamIdleTimeout: 40s
            maxStreamDuration: 30m
        """,
    "empty conf (every section is optional)": SELECTORS + "        conf: {}\n",
    "connectTimeout is not checked": SELECTORS + "        conf:\n          connectTimeout: 0s\n",
    "one timeout per section is enough": SELECTORS
    + """
        conf:
          http: {idleTimeout: 10s}
          grpc: {maxStreamDuration: 0.5s}
        """,
    "negative durations pass, as in Kuma": SELECTORS
    + """
        conf:
          tcp: {idleTimeout: -5s}
          grpc: {streamIdleTimeout: -1m}
        """,
    "proto3-JSON durations": SELECTORS
    + """
        conf:
          tcp: {idleTimeout: "3600s"}
          http: {requestTimeout: "0.250s"}
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid(text: str) -> None:
    assert violations("Timeout", text) == []


INVALID = {
    # -- Kuma 1.1.0's timeout_validator_test.go ----------------------------------------------
    "spec: empty": (
        "",
        [
            ("sources", "must have at least one element"),
            ("destinations", "must have at least one element"),
            ("conf", "has to be defined"),
        ],
    ),
    "conf.*: empty": (
        SELECTORS
        + """
        conf:
          connectTimeout: 5s
          tcp: {}
          http: {}
          grpc: {}
        """,
        [
            ("conf.tcp", "at least one timeout in section has to be defined"),
            ("conf.http", "at least one timeout in section has to be defined"),
            ("conf.grpc", "at least one timeout in section has to be defined"),
        ],
    ),
    # -- more ------------------------------------------------------------------------------
    "zero timeouts": (
        SELECTORS
        + """
        conf:
          tcp: {idleTimeout: 0s}
          http: {requestTimeout: 0s, idleTimeout: "0"}
          grpc: {streamIdleTimeout: 0ms, maxStreamDuration: 0s}
        """,
        [
            ("conf.tcp.idleTimeout", "has to be greater than 0"),
            ("conf.http.requestTimeout", "has to be greater than 0 when defined"),
            ("conf.http.idleTimeout", "has to be greater than 0 when defined"),
            ("conf.grpc.streamIdleTimeout", "has to be greater than 0 when defined"),
            ("conf.grpc.maxStreamDuration", "has to be greater than 0 when defined"),
        ],
    ),
    "one zero timeout beside a good one": (
        SELECTORS + "        conf:\n          http: {requestTimeout: 5s, idleTimeout: 0s}\n",
        [("conf.http.idleTimeout", "has to be greater than 0 when defined")],
    ),
    "sections reported tcp, http, grpc whatever the order written": (
        SELECTORS
        + """
        conf:
          grpc: {}
          http: {}
          tcp: {}
        """,
        [
            ("conf.tcp", "at least one timeout in section has to be defined"),
            ("conf.http", "at least one timeout in section has to be defined"),
            ("conf.grpc", "at least one timeout in section has to be defined"),
        ],
    ),
    "null conf": (SELECTORS + "        conf:\n", [("conf", "has to be defined")]),
    "selectors without tags": (
        """
        sources:
        - match: {}
        destinations:
        - match: {kuma.io/service: backend, region: eu}
        conf:
          tcp: {idleTimeout: 0s}
        """,
        [
            ("sources[0].match", "must have at least one tag"),
            ("sources[0].match", 'mandatory tag "kuma.io/service" is missing'),
            ("destinations[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ('destinations[0].match["region"]', 'tag "region" is not allowed'),
            ("conf.tcp.idleTimeout", "has to be greater than 0"),
        ],
    ),
    "invalid tag characters": (
        """
        sources:
        - match: {kuma.io/service: "web app"}
        destinations:
        - match: {kuma.io/service: backend}
        conf: {}
        """,
        [
            (
                'sources[0].match["kuma.io/service"]',
                "tag value must consist of alphanumeric characters, dots, dashes, slashes and "
                'underscores or be "*"',
            ),
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("Timeout", text) == expected
