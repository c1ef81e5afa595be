"""Shared validation rules: names, wiring, merging, and the Go behaviour Kuma's messages rely on."""

from __future__ import annotations

import datetime as dt
import re
import textwrap

import pytest

import kuma.model
from kuma.errors import ValidationError, Violation
from kuma.model import registry
from kuma.model.codec import decode
from kuma.model.resource import Resource, ResourceMeta
from kuma.model.validation import Path, Violations
from kuma.model.validators import VALIDATORS, validate_meta
from kuma.model.validators.common import to_typed, validate_duration
from kuma.model.validators.golang import (
    AddrError,
    go_quote,
    parse_ip,
    parse_request_uri,
    parse_url,
    split_host_port,
)
from kuma.model.yamlio import load_documents
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb


def violations(
    type_name: str, text: str, *, name: str = "x", mesh: str = "default"
) -> list[tuple[str, str]]:
    """Decode `text` (YAML, as a user writes it) into the type's spec and validate it."""
    rtype = registry.get(type_name)
    docs = load_documents(textwrap.dedent(text))
    spec = decode(rtype.spec_cls, docs[0] if docs else {})
    assert rtype.validator is not None
    err = rtype.validator(name, mesh, spec)
    return [(v.field, v.message) for v in err.violations] if err else []


# -- wiring -------------------------------------------------------------------------------------


def test_every_type_kuma_validates_has_a_validator_wired_into_the_registry() -> None:
    with_validator = {t.name for t in registry.all_types() if t.validator is not None}
    assert with_validator == {
        "Mesh",
        "Dataplane",
        "HealthCheck",
        "ProxyTemplate",
        "TrafficPermission",
        "TrafficLog",
        "TrafficRoute",
        "TrafficTrace",
        "FaultInjection",
        "CircuitBreaker",
        "Zone",
        "Retry",
        "Timeout",
    }
    # Kuma 0.7.3 accepts any DataplaneInsight, Secret and ZoneInsight spec.
    assert set(VALIDATORS) == with_validator
    for t in registry.all_types():
        assert t.validator is VALIDATORS.get(t.name)


def test_validate_merges_meta_and_spec_violations_meta_first() -> None:
    (doc,) = load_documents("networking: {address: not-an-ip, inbound: [{port: 0, tags: {}}]}")
    spec = decode(mesh_pb.Dataplane, doc)
    resource = Resource(registry.DATAPLANE, ResourceMeta(name="Web.1", mesh="De fault"), spec)
    with pytest.raises(ValidationError) as info:
        kuma.model.validate(resource)
    name_msg = "invalid characters. Valid characters are numbers, lowercase latin letters and '-', '_' symbols."
    assert info.value.violations == [
        Violation("name", name_msg),
        Violation("mesh", name_msg),
        Violation("networking.address", "address has to be valid IP address"),
        Violation("networking.inbound[0].port", "port has to be in range of [1, 65535]"),
        Violation('networking.inbound[0].tags["kuma.io/service"]', "tag has to exist"),
    ]


def test_validate_accepts_a_valid_resource() -> None:
    (doc,) = load_documents(
        "networking: {address: 10.0.0.1, inbound: [{port: 80, tags: {kuma.io/service: web}}]}"
    )
    resource = Resource(
        registry.DATAPLANE,
        ResourceMeta(name="web-1", mesh="default"),
        decode(mesh_pb.Dataplane, doc),
    )
    kuma.model.validate(resource)  # no exception


def test_validate_of_a_global_type_ignores_the_mesh() -> None:
    resource = Resource(registry.ZONE, ResourceMeta(name="zone_1"))
    with pytest.raises(ValidationError) as info:
        kuma.model.validate(resource)
    assert info.value.violations == [Violation("address", "cannot be empty")]


def test_validate_meta() -> None:
    assert validate_meta("backend-1_a", "default") is None
    err = validate_meta("backend.1", "Default")
    assert err is not None
    assert [v.field for v in err.violations] == ["name", "mesh"]
    assert validate_meta("m", "", mesh_scoped=False) is None


# -- helpers ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("kuma.io/service", '"kuma.io/service"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("tab\there\nnl", '"tab\\there\\nnl"'),
        ("nul\x00del\x7f", '"nul\\x00del\\x7f"'),
        ("zero\u200bwidth", '"zero\\u200bwidth"'),
        ("żółć ✓", '"żółć ✓"'),
        ("\U000e0001", '"\\U000e0001"'),
    ],
)
def test_go_quote_matches_go_percent_q(text: str, quoted: str) -> None:
    assert go_quote(text) == quoted


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("192.168.0.1", True),
        ("0.0.0.0", True),
        ("010.001.0.1", True),  # Go before 1.17 reads leading zeros as decimal
        ("256.0.0.1", False),
        ("1.2.3", False),
        ("1.2.3.4.5", False),
        ("1.2.3.4:80", False),
        (" 1.2.3.4", False),
        ("::1", True),
        ("fd00::10:1", True),
        ("::ffff:10.0.0.1", True),
        ("fe80::1%eth0", False),
        ("2001:db8::g", False),
        ("localhost", False),
        ("", False),
    ],
)
def test_parse_ip_matches_go_net_parse_ip(address: str, ok: bool) -> None:
    assert parse_ip(address) is ok


@pytest.mark.parametrize(
    ("hostport", "expected"),
    [
        ("kibana:1234", ("kibana", "1234")),
        ("[::1]:80", ("::1", "80")),
        (":80", ("", "80")),
        ("host:", ("host", "")),
        ("192.168.0.2", "address 192.168.0.2: missing port in address"),
        ("a:b:c", "address a:b:c: too many colons in address"),
        ("[::1", "address [::1: missing ']' in address"),
        ("[::1]", "address [::1]: missing port in address"),
        ("[::1]x:80", "address [::1]x:80: missing port in address"),
        ("[::1]:80:90", "address [::1]:80:90: too many colons in address"),
        ("a]b:80", "address a]b:80: unexpected ']' in address"),
        ("a[b:80", "address a[b:80: unexpected '[' in address"),
    ],
)
def test_split_host_port_matches_go(hostport: str, expected: tuple[str, str] | str) -> None:
    if isinstance(expected, tuple):
        assert split_host_port(hostport) == expected
    else:
        with pytest.raises(AddrError) as info:
            split_host_port(hostport)
        assert str(info.value) == expected


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("http://zipkin.local:9411/api/v2/spans", "9411"),
        ("http://zipkin.local/api/v2/spans", ""),
        ("http://[::1]:9411/", "9411"),
        ("http://user:pass@zipkin:9411/x", "9411"),
        ("http://zipkin:/x", ""),
        ("/just/a/path", ""),
        ("mailto:someone", ""),
    ],
)
def test_parse_request_uri_accepts_and_finds_the_port(url: str, port: str) -> None:
    assert parse_request_uri(url).port() == port


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("invalid-url", "invalid URI for request"),
        ("", "empty url"),
        ("://x", "missing protocol scheme"),
        ("http://zipkin:94a1/", 'invalid port ":94a1" after host'),
        ("http://zip kin:9411/", 'invalid character " " in host name'),
        ("http://zipkin:9411/%zz", 'invalid URL escape "%zz"'),
        ("http://zipkin:9411/\n", "net/url: invalid control character in URL"),
        ("http://us{er@zipkin:9411/", "net/url: invalid userinfo"),
        ("http://[::1:9411/", "missing ']' in host"),
    ],
)
def test_parse_request_uri_rejects_like_go(url: str, error: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(error) + "$"):
        parse_request_uri(url)


def test_parse_url_tells_urls_from_host_port() -> None:
    assert parse_url("grpcs://192.168.0.2:1234").scheme == "grpcs"
    assert parse_url("foo:1234").scheme == "foo"
    assert parse_url("192.168.0.2").scheme == ""
    with pytest.raises(ValueError):
        parse_url("1:2:3")  # colon in the first path segment of a relative URL


def test_validate_duration() -> None:
    errs = Violations()
    validate_duration(errs, Path("a"), None)
    validate_duration(errs, Path("b"), dt.timedelta(0))
    validate_duration(errs, Path("c"), dt.timedelta(days=4_000_000))
    validate_duration(errs, Path("d"), dt.timedelta(seconds=-1))  # Kuma only rejects zero
    validate_duration(errs, Path("e"), dt.timedelta(milliseconds=1))
    assert [(v.field, v.message) for v in errs.items] == [
        ("a", "must have a positive value"),
        ("b", "must have a positive value"),
        ("c", "must have a valid value"),
    ]


def test_to_typed_ignores_unknown_fields_and_reports_wrong_types_with_paths() -> None:
    errs = Violations()
    cfg = to_typed(
        mesh_pb.PrometheusMetricsBackendConfig,
        {"port": 1234, "path": "/m", "future": {"x": 1}, "tags": {"a": "b"}},
        Path("conf"),
        errs,
    )
    assert not errs
    assert cfg is not None
    assert (cfg.port, cfg.path, cfg.tags) == (1234, "/m", {"a": "b"})

    assert to_typed(mesh_pb.FileLoggingBackendConfig, {"path": 5}, Path("c"), errs) is None
    assert to_typed(mesh_pb.FileLoggingBackendConfig, None, Path("c"), errs) is not None
    assert [(v.field, v.message) for v in errs.items] == [
        ("c.path", "could not parse config: must be a string, got a number")
    ]


def test_names_longer_than_the_database_column_are_refused() -> None:
    from kuma.model.validators.common import validate_meta

    assert validate_meta("a" * 100, "m" * 100) is None
    err = validate_meta("a" * 101, "m" * 101)
    assert err is not None
    assert [(v.field, v.message) for v in err.violations] == [
        ("name", "cannot be longer than 100 characters"),
        ("mesh", "cannot be longer than 100 characters"),
    ]
