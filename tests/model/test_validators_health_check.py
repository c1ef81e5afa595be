"""HealthCheck validation."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations

VALID = {
    "full example": """
        sources:
        - match:
            kuma.io/service: web
            region: eu
        destinations:
        - match:
            kuma.io/service: backend
        conf:
          interval: 10s
          timeout: 2s
          unhealthyThreshold: 3
          healthyThreshold: 1
        """,
    "Go-style and fractional durations": """
        sources:
        - match: {kuma.io/service: "*"}
        destinations:
        - match: {kuma.io/service: "*"}
        conf:
          interval: 1m30s
          timeout: 0.5s
          unhealthyThreshold: 1
          healthyThreshold: 1
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid(text: str) -> None:
    assert violations("HealthCheck", text) == []


INVALID = {
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
    "zero durations and thresholds": (
        """
        sources:
        - match: {kuma.io/service: web, region: eu}
        destinations:
        - match: {kuma.io/service: backend}
        conf:
          interval: 0s
          timeout: 0s
          unhealthyThreshold: 0
          healthyThreshold: 0
        """,
        [
            ("conf.interval", "must have a positive value"),
            ("conf.timeout", "must have a positive value"),
            ("conf.unhealthyThreshold", "must have a positive value"),
            ("conf.healthyThreshold", "must have a positive value"),
        ],
    ),
    "empty conf": (
        """
        sources:
        - match: {kuma.io/service: web}
        destinations:
        - match: {kuma.io/service: backend}
        conf: {}
        """,
        [
            ("conf.interval", "must have a positive value"),
            ("conf.timeout", "must have a positive value"),
            ("conf.unhealthyThreshold", "must have a positive value"),
            ("conf.healthyThreshold", "must have a positive value"),
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("HealthCheck", text) == expected
