"""TrafficPermission validation."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations

VALID = {
    "reference example": """
        sources:
        - match:
            kuma.io/service: web
        destinations:
        - match:
            kuma.io/service: backend
            version: '*'
        """,
    "allow all": """
        sources:
        - match: {kuma.io/service: "*"}
        destinations:
        - match: {kuma.io/service: "*"}
        """,
    "several sources and destinations": """
        sources:
        - match: {kuma.io/service: web}
        - match: {kuma.io/service: gateway}
        destinations:
        - match: {kuma.io/service: backend, kuma.io/protocol: http, env: prod}
        - match: {kuma.io/service: redis}
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid(text: str) -> None:
    assert violations("TrafficPermission", text) == []


INVALID = {
    "empty spec": (
        "",
        [
            ("sources", "must have at least one element"),
            ("destinations", "must have at least one element"),
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
            ("sources[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ("sources[0].match", 'mandatory tag "kuma.io/service" is missing'),
            ("destinations[0].match", "must have at least one tag"),
            ("destinations[0].match", 'mandatory tag "kuma.io/service" is missing'),
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
            ("sources[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ('sources[0].match["kuma.io/service"]', "tag value must be non-empty"),
            ('sources[0].match["region"]', 'tag "region" is not allowed'),
            ('sources[0].match["region"]', "tag value must be non-empty"),
            ('destinations[0].match["kuma.io/service"]', "tag value must be non-empty"),
            ('destinations[0].match["region"]', "tag value must be non-empty"),
        ],
    ),
    "multiple selectors": (
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
        """,
        [
            ("sources[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ('sources[0].match["kuma.io/service"]', "tag value must be non-empty"),
            ('sources[0].match["region"]', 'tag "region" is not allowed'),
            ('sources[0].match["region"]', "tag value must be non-empty"),
            ("sources[1].match", 'must consist of exactly one tag "kuma.io/service"'),
            ("sources[1].match", 'mandatory tag "kuma.io/service" is missing'),
            ('destinations[0].match["kuma.io/service"]', "tag value must be non-empty"),
            ('destinations[0].match["region"]', "tag value must be non-empty"),
            ("destinations[1].match", "must have at least one tag"),
            ("destinations[1].match", 'mandatory tag "kuma.io/service" is missing'),
        ],
    ),
    "a selector written without match": (
        """
        sources:
        - {}
        destinations:
        - match: {version: v1}
        """,
        [
            ("sources[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ("sources[0].match", 'mandatory tag "kuma.io/service" is missing'),
            ("destinations[0].match", 'mandatory tag "kuma.io/service" is missing'),
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("TrafficPermission", text) == expected
