"""Zone validation: the ingress address must be host:port (reported at `address`, as Kuma does)."""

from __future__ import annotations

import pytest

from tests.model.test_validators_common import violations


@pytest.mark.parametrize(
    "address", ["192.168.0.2:10001", "zone-1.ingress.local:10001", "[fd00::1]:10001"]
)
def test_valid(address: str) -> None:
    assert violations("Zone", f"ingress: {{address: '{address}'}}", mesh="") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot be empty"),
        ("ingress: {}", "cannot be empty"),
        (
            "ingress: {address: 192.168.0.2}",
            "invalid address: address 192.168.0.2: missing port in address",
        ),
        (
            "ingress: {address: 'a:b:c'}",
            "should not be URL. Expected format is hostname:port",
        ),
        (
            "ingress: {address: 'grpcs://192.168.0.2:1234'}",
            "should not be URL. Expected format is hostname:port",
        ),
        (
            "ingress: {address: '[::1:1234'}",
            "invalid address: address [::1:1234: missing ']' in address",
        ),
        (
            "ingress: {address: '1:2:3'}",
            "invalid address: address 1:2:3: too many colons in address",
        ),
        ("ingress: {address: ':1234'}", "host has to be explicitly specified"),
        ("ingress: {address: 'zone-1:'}", "port has to be explicitly specified"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    assert violations("Zone", text, mesh="") == [("address", message)]


def test_empty_host_and_port_are_both_reported() -> None:
    assert violations("Zone", "ingress: {address: ':'}", mesh="") == [
        ("address", "host has to be explicitly specified"),
        ("address", "port has to be explicitly specified"),
    ]
