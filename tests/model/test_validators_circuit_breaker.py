"""CircuitBreaker validation."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations

VALID = {
    "full example": """
        sources:
        - match:
            kuma.io/service: frontend
            region: us
        destinations:
        - match:
            kuma.io/service: backend
        conf:
          interval: 1s
          baseEjectionTime: 30s
          maxEjectionPercent: 20
          splitExternalAndLocalErrors: false
          detectors:
            totalErrors:
              consecutive: 20
            gatewayErrors:
              consecutive: 10
            localErrors:
              consecutive: 7
            standardDeviation:
              requestVolume: 10
              minimumHosts: 5
              factor: 1.9
            failure:
              requestVolume: 10
              minimumHosts: 5
              threshold: 85
        """,
    "one detector with default values": """
        sources:
        - match:
            kuma.io/service: frontend
            region: us
        destinations:
        - match:
            kuma.io/service: backend
        conf:
          detectors:
            totalErrors: {}
            standardDeviation: {}
        """,
    "percentages at the limits": """
        sources:
        - match: {kuma.io/service: frontend}
        destinations:
        - match: {kuma.io/service: backend}
        conf:
          maxEjectionPercent: 100
          detectors:
            failure: {threshold: 0}
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid(text: str) -> None:
    assert violations("CircuitBreaker", text) == []


INVALID = {
    "empty spec": (
        "",
        [
            ("sources", "must have at least one element"),
            ("destinations", "must have at least one element"),
            ("conf", "must have at least one of the detectors configured"),
        ],
    ),
    "conf without detectors": (
        """
        sources:
        - match: {kuma.io/service: frontend}
        destinations:
        - match: {kuma.io/service: backend}
        conf:
          interval: 5s
          detectors: {}
        """,
        [("conf", "must have at least one of the detectors configured")],
    ),
    "wrong format": (
        """
        sources:
        - match:
            kuma.io/service: frontend
            region: us
        destinations:
        - match:
            kuma.io/service: backend
            region: eu
        conf:
          maxEjectionPercent: 120
          detectors:
            failure:
              threshold: 850
        """,
        [
            ("destinations[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ('destinations[0].match["region"]', 'tag "region" is not allowed'),
            ("conf.maxEjectionPercent", "has to be in [0.0 - 100.0] range"),
            ("conf.detectors.failure.threshold", "has to be in [0.0 - 100.0] range"),
        ],
    ),
    "percentage without detectors": (
        """
        sources:
        - match: {kuma.io/service: frontend}
        destinations:
        - match: {kuma.io/service: backend}
        conf:
          maxEjectionPercent: 101
        """,
        [
            ("conf", "must have at least one of the detectors configured"),
            ("conf.maxEjectionPercent", "has to be in [0.0 - 100.0] range"),
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("CircuitBreaker", text) == expected
