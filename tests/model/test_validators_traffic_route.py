"""TrafficRoute validation (0.7.x shape: `conf` is a list of weighted destinations)."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations

VALID = {
    "reference example": """
        sources:
        - match:
            kuma.io/service: backend
        destinations:
        - match:
            kuma.io/service: redis
        conf:
        - weight: 90
          destination: {kuma.io/service: redis, version: '1.0'}
        - weight: 10
          destination: {kuma.io/service: redis, version: '2.0'}
        """,
    "wildcards and zero weight": """
        sources:
        - match: {kuma.io/service: "*", region: eu}
        destinations:
        - match: {kuma.io/service: "*"}
        conf:
        - weight: 0
          destination: {kuma.io/service: "*"}
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid(text: str) -> None:
    assert violations("TrafficRoute", text) == []


INVALID = {
    "empty spec": (
        "",
        [
            ("sources", "must have at least one element"),
            ("destinations", "must have at least one element"),
            ("conf", "must have at least one element"),
        ],
    ),
    "selectors without tags": (
        """
        sources:
        - match: {}
        destinations:
        - match: {}
        conf:
        - destination: {}
        """,
        [
            ("sources[0].match", "must have at least one tag"),
            ("sources[0].match", 'mandatory tag "kuma.io/service" is missing'),
            ("destinations[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ("destinations[0].match", 'mandatory tag "kuma.io/service" is missing'),
            ("conf[0].destination", "must have at least one tag"),
            ("conf[0].destination", 'mandatory tag "kuma.io/service" is missing'),
        ],
    ),
    "multiple selectors with empty values": (
        """
        sources:
        - match:
            kuma.io/service:
            region:
        - match: {}
        destinations:
        - match:
            kuma.io/service:
            region:
        - match: {}
        conf:
        - destination:
            kuma.io/service:
            region:
        - destination: {}
        """,
        [
            ('sources[0].match["kuma.io/service"]', "tag value must be non-empty"),
            ('sources[0].match["region"]', "tag value must be non-empty"),
            ("sources[1].match", "must have at least one tag"),
            ("sources[1].match", 'mandatory tag "kuma.io/service" is missing'),
            ("destinations[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ('destinations[0].match["kuma.io/service"]', "tag value must be non-empty"),
            ('destinations[0].match["region"]', 'tag "region" is not allowed'),
            ('destinations[0].match["region"]', "tag value must be non-empty"),
            ("destinations[1].match", 'must consist of exactly one tag "kuma.io/service"'),
            ("destinations[1].match", 'mandatory tag "kuma.io/service" is missing'),
            ('conf[0].destination["kuma.io/service"]', "tag value must be non-empty"),
            ('conf[0].destination["region"]', "tag value must be non-empty"),
            ("conf[1].destination", "must have at least one tag"),
            ("conf[1].destination", 'mandatory tag "kuma.io/service" is missing'),
        ],
    ),
    "destination tag values with bad characters": (
        """
        sources:
        - match: {kuma.io/service: web}
        destinations:
        - match: {kuma.io/service: backend}
        conf:
        - weight: 100
          destination: {kuma.io/service: backend, version: "v 1"}
        """,
        [
            (
                'conf[0].destination["version"]',
                'tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores or be "*"',
            )
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("TrafficRoute", text) == expected
