"""Selector rules shared by the policies, checked through the policies that use each variant."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations

NAME_CHARS = (
    "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores"
)
VALUE_CHARS = 'tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores or be "*"'

CASES = {
    "values may be '*' or contain slashes; names may contain slashes, dots, colons": (
        "TrafficTrace",
        """
        selectors:
        - match:
            kuma.io/service: "*"
            team/owner: a/b
            k8s.io:zone: eu-west_1.a
        """,
        [],
    ),
    "empty tag name, reported once at the selector": (
        "TrafficTrace",
        """
        selectors:
        - match:
            "": asdf
        """,
        [("selectors[0].match", "tag name must be non-empty")],
    ),
    "invalid characters in names and values, keys sorted": (
        "TrafficTrace",
        """
        selectors:
        - match:
            zone: "e u"
            "a b": x
            mixed*: "**"
        """,
        [
            ('selectors[0].match["a b"]', NAME_CHARS),
            ('selectors[0].match["mixed*"]', NAME_CHARS),
            ('selectors[0].match["mixed*"]', VALUE_CHARS),
            ('selectors[0].match["zone"]', VALUE_CHARS),
        ],
    ),
    "names are quoted like Go's %q": (
        "TrafficTrace",
        """
        selectors:
        - match:
            "say \\"hi\\"\\t": x
        """,
        [('selectors[0].match["say \\"hi\\"\\t"]', NAME_CHARS)],
    ),
    "only-service selectors: every extra tag is named": (
        "TrafficPermission",
        """
        sources:
        - match:
            kuma.io/service: web
            version: v1
            region: eu
        destinations:
        - match:
            kuma.io/service: backend
        """,
        [
            ("sources[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ('sources[0].match["region"]', 'tag "region" is not allowed'),
            ('sources[0].match["version"]', 'tag "version" is not allowed'),
        ],
    ),
    "only-service selectors: a lone other tag": (
        "TrafficPermission",
        """
        sources:
        - match:
            service: web
        destinations:
        - match:
            kuma.io/service: backend
        """,
        [
            ("sources[0].match", 'must consist of exactly one tag "kuma.io/service"'),
            ('sources[0].match["service"]', 'tag "service" is not allowed'),
            ("sources[0].match", 'mandatory tag "kuma.io/service" is missing'),
        ],
    ),
}


@pytest.mark.parametrize(("type_name", "text", "expected"), CASES.values(), ids=CASES.keys())
def test_selector_rules(type_name: str, text: str, expected: list[tuple[str, str]]) -> None:
    assert violations(type_name, text) == expected
