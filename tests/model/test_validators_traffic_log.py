"""TrafficLog validation: connection-policy selectors; the backend may be left to the mesh."""

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
          backend: file
        """,
    "empty backend (the mesh default is used)": """
        sources:
        - match: {kuma.io/service: web}
        destinations:
        - match: {kuma.io/service: backend}
        conf:
          backend:
        """,
    "no conf, and a backend the mesh may not have (not checked)": """
        sources:
        - match: {kuma.io/service: "*"}
        destinations:
        - match: {kuma.io/service: "*"}
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid(text: str) -> None:
    assert violations("TrafficLog", text) == []


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
            ("sources[0].match", "must have at least one tag"),
            ("sources[0].match", 'mandatory tag "kuma.io/service" is missing'),
            ("destinations[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ("destinations[0].match", 'mandatory tag "kuma.io/service" is missing'),
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
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("TrafficLog", text) == expected
