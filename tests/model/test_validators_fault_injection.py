"""FaultInjection validation."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations

VALUE_CHARS = 'tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores or be "*"'
NAME_CHARS = (
    "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores"
)
SELECTORS = """
        sources:
        - match:
            kuma.io/service: frontend
            kuma.io/protocol: http
        destinations:
        - match:
            kuma.io/service: backend
            kuma.io/protocol: http
            region: eu
"""

VALID = {
    "full example": """
        sources:
        - match:
            service: frontend
            kuma.io/protocol: http
        destinations:
        - match:
            service: backend
            kuma.io/protocol: http
            region: eu
            kuma.io/valid: abcd.123-456.under_score_.:80
        conf:
          delay:
            percentage: 50
            value: 10ms
          abort:
            percentage: 40
            httpStatus: 500
          responseBandwidth:
            percentage: 40
            limit: 50kbps
        """,
    "match any": """
        sources:
        - match:
            service: frontend
            kuma.io/protocol: http
        destinations:
        - match:
            service: backend
            kuma.io/protocol: http
            region: "*"
        conf:
          delay:
            percentage: 50
            value: 10ms
        """,
    "limits in every unit, unusual status codes, percentages at the limits": SELECTORS
    + """
        conf:
          abort:
            percentage: 0
            httpStatus: 418
          responseBandwidth:
            percentage: 100
            limit: 2 mbps
        """,
}


@pytest.mark.parametrize("text", VALID.values(), ids=VALID.keys())
def test_valid(text: str) -> None:
    assert violations("FaultInjection", text) == []


@pytest.mark.parametrize("status", [100, 103, 200, 226, 308, 418, 425, 451, 508, 511])
def test_status_codes_go_knows(status: int) -> None:
    text = SELECTORS + f"        conf: {{abort: {{percentage: 1, httpStatus: {status}}}}}\n"
    assert violations("FaultInjection", text) == []


@pytest.mark.parametrize("status", [0, 99, 199, 209, 306, 419, 420, 427, 430, 509, 512, 600])
def test_status_codes_go_does_not_know(status: int) -> None:
    text = SELECTORS + f"        conf: {{abort: {{percentage: 1, httpStatus: {status}}}}}\n"
    assert violations("FaultInjection", text) == [
        ("conf.abort.httpStatus", "http status code is incorrect")
    ]


INVALID = {
    "empty spec": (
        "",
        [
            ("sources", "must have at least one element"),
            ("destinations", "must have at least one element"),
            ("conf", "must have at least one of the faults configured"),
        ],
    ),
    "empty faults count as none": (
        SELECTORS
        + """
        conf:
          delay: {}
          abort: {}
          responseBandwidth: {}
        """,
        [("conf", "must have at least one of the faults configured")],
    ),
    "percentages missing": (
        SELECTORS
        + """
        conf:
          delay:
            value: 50ms
          abort:
            httpStatus: 500
          responseBandwidth:
            limit: 50kbps
        """,
        [
            ("conf.delay.percentage", "cannot be empty"),
            ("conf.abort.percentage", "cannot be empty"),
            ("conf.responseBandwidth.percentage", "cannot be empty"),
        ],
    ),
    "main values missing": (
        SELECTORS
        + """
        conf:
          delay:
            percentage: 30
          abort:
            percentage: 30
          responseBandwidth:
            percentage: 30
        """,
        [
            ("conf.delay.value", "cannot be empty"),
            ("conf.abort.httpStatus", "cannot be empty"),
            ("conf.responseBandwidth.limit", "cannot be empty"),
        ],
    ),
    "abort status out of range": (
        SELECTORS
        + """
        conf:
          abort:
            httpStatus: 600
            percentage: 100
        """,
        [("conf.abort.httpStatus", "http status code is incorrect")],
    ),
    "bandwidth in the wrong units and percentages out of range": (
        SELECTORS
        + """
        conf:
          delay:
            percentage: -0.5
            value: 1s
          responseBandwidth:
            limit: 50mb
            percentage: 101
        """,
        [
            ("conf.delay.percentage", "has to be in [0.0 - 100.0] range"),
            ("conf.responseBandwidth.percentage", "has to be in [0.0 - 100.0] range"),
            ("conf.responseBandwidth.limit", "has to be in kbps/mbps/gbps units"),
        ],
    ),
    "protocol not http, or missing": (
        """
        sources:
        - match:
            service: frontend
            kuma.io/protocol: tcp
        destinations:
        - match:
            service: backend
            region: eu
        conf:
          responseBandwidth:
            limit: 50mbps
            percentage: 100
        """,
        [
            ('sources[0].match["kuma.io/protocol"]', "must be one of the [http]"),
            ("destinations[0].match", "protocol must be specified"),
        ],
    ),
    "selectors without tags": (
        """
        sources:
        - match: {}
        destinations:
        - {}
        conf:
          delay: {percentage: 1, value: 1s}
        """,
        [
            ("sources[0].match", "must have at least one tag"),
            ("sources[0].match", "protocol must be specified"),
            ("destinations[0].match", "must have at least one tag"),
            ("destinations[0].match", "protocol must be specified"),
        ],
    ),
    "tag values with invalid characters": (
        """
        sources:
        - match:
            service: frontend
            kuma.io/protocol: http
            invalidTag: v@/u^e
        destinations:
        - match:
            service: backend
            kuma.io/protocol: http
            invalidTag: v@/u^e#!
        conf:
          responseBandwidth:
            limit: 50mbps
            percentage: 100
        """,
        [
            ('sources[0].match["invalidTag"]', VALUE_CHARS),
            ('destinations[0].match["invalidTag"]', VALUE_CHARS),
        ],
    ),
    "tag names with invalid characters": (
        """
        sources:
        - match:
            service: frontend
            kuma.io/protocol: http
            inv@lidT@g#: value
        destinations:
        - match:
            service: backend
            kuma.io/protocol: http
            inv@lidT@g#: value
        conf:
          responseBandwidth:
            limit: 50mbps
            percentage: 100
        """,
        [
            ('sources[0].match["inv@lidT@g#"]', NAME_CHARS),
            ('destinations[0].match["inv@lidT@g#"]', NAME_CHARS),
        ],
    ),
}


@pytest.mark.parametrize(("text", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid(text: str, expected: list[tuple[str, str]]) -> None:
    assert violations("FaultInjection", text) == expected
