"""TrafficTrace validation: selectors with at least one tag (any tag)."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations

VALID = {
    "full example": """
        selectors:
        - match:
            region: eu
        conf:
          backend: zipkin-eu
        """,
    "empty backend": """
        selectors:
        - match:
            region: eu
        conf:
          backend:
        """,
    "no conf": """
        selectors:
        - match: {kuma.io/service: "*"}
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid(text: str) -> None:
    assert violations("TrafficTrace", text) == []


INVALID = {
    "empty spec": ("", [("selectors", "must have at least one element")]),
    "selectors without tags": (
        """
        selectors:
        - match: {}
        - {}
        """,
        [
            ("selectors[0].match", "must have at least one tag"),
            ("selectors[1].match", "must have at least one tag"),
        ],
    ),
    "selectors with empty tag values": (
        """
        selectors:
        - match:
            kuma.io/service:
            region:
        """,
        [
            ('selectors[0].match["kuma.io/service"]', "tag value must be non-empty"),
            ('selectors[0].match["region"]', "tag value must be non-empty"),
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("TrafficTrace", text) == expected
