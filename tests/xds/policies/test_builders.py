"""Small pieces of the policy configurers: percentages, bandwidths, the x-kuma-tags regex,
SNI, and mTLS without SDS settings."""

from __future__ import annotations

import re

import pytest
from envoy.type.v3 import percent_pb2

from kuma.xds.core import CLUSTER, DataplaneMetadata
from kuma.xds.envoy.common import serialize_tags
from kuma.xds.envoy.listeners import bandwidth_to_kbps, fault_injection_regex, fractional_percent
from kuma.xds.envoy.tls import SdsLocation, sni_from_tags, tags_from_sni
from kuma.xds.generators import (
    GenerationError,
    GeneratorSettings,
    SharedResources,
    SnapshotGenerator,
)
from tests.xds.generators.harness import SETTINGS
from tests.xds.policies.support import MTLS_MESH, ctx_of, dp, gen

FP = percent_pb2.FractionalPercent


@pytest.mark.parametrize(
    ("value", "numerator", "denominator"),
    [
        (None, 0, FP.HUNDRED),
        (0, 0, FP.HUNDRED),
        (100, 100, FP.HUNDRED),
        (50.5, 5050, FP.TEN_THOUSAND),
        (0.25, 25, FP.TEN_THOUSAND),
        (0.001, 10, FP.MILLION),
        (33.3333, 333333, FP.MILLION),
    ],
)
def test_fractional_percent(value: float | None, numerator: int, denominator: int) -> None:
    fp = fractional_percent(value)
    assert (fp.numerator, fp.denominator) == (numerator, denominator)


@pytest.mark.parametrize(
    ("limit", "kbps"), [("512kbps", 512), ("50 mbps", 50_000), ("1gbps", 1_000_000)]
)
def test_bandwidth(limit: str, kbps: int) -> None:
    assert bandwidth_to_kbps(limit) == kbps


def test_bad_bandwidth() -> None:
    with pytest.raises(ValueError, match="invalid bandwidth"):
        bandwidth_to_kbps("fast")


def test_fault_regex_matches_the_tags_header_of_sources_only() -> None:
    regex = re.compile(
        fault_injection_regex(
            [
                {"kuma.io/service": "web", "kuma.io/protocol": "http"},
                {"kuma.io/service": "api.v2", "env": "*"},
            ]
        )
    )
    web = serialize_tags({"kuma.io/service": ["web"], "kuma.io/protocol": ["http"], "v": ["1"]})
    multi = serialize_tags({"kuma.io/service": ["front", "web"], "kuma.io/protocol": ["http"]})
    api = serialize_tags({"kuma.io/service": ["api.v2"], "env": ["prod"]})
    api_other = serialize_tags({"kuma.io/service": ["apixv2"], "env": ["prod"]})
    no_env = serialize_tags({"kuma.io/service": ["api.v2"]})
    other = serialize_tags({"kuma.io/service": ["backend"], "kuma.io/protocol": ["http"]})
    assert regex.fullmatch(web)
    assert regex.fullmatch(multi)
    assert regex.fullmatch(api)
    assert not regex.fullmatch(api_other)  # the dot is escaped
    assert not regex.fullmatch(no_env)
    assert not regex.fullmatch(other)


def test_sni() -> None:
    tags = {"kuma.io/service": "backend", "version": "v1", "mesh": "default"}
    assert sni_from_tags(tags) == "backend{mesh=default,version=v1}"
    assert tags_from_sni("backend{mesh=default,version=v1}") == tags
    assert sni_from_tags({"kuma.io/service": "backend"}) == "backend"
    assert tags_from_sni("backend") == {"kuma.io/service": "backend"}


def test_sds_without_token_has_no_call_credentials() -> None:
    config = SdsLocation("cp:5677", b"PEM").secret_config("identity_cert")
    google = config.sds_config.api_config_source.grpc_services[0].google_grpc
    assert google.target_uri == "cp:5677"
    assert google.stat_prefix == "sds_identity_cert"
    assert google.channel_credentials.ssl_credentials.root_certs.inline_bytes == b"PEM"
    assert not google.call_credentials
    assert not google.credentials_factory_name


def test_mtls_without_sds_settings_is_a_clear_error() -> None:
    ctx = ctx_of(MTLS_MESH, dp("web-1", "10.0.0.1", [(8080, {"kuma.io/service": "web"})]))
    with pytest.raises(GenerationError, match="has mTLS enabled, but the control plane has no SDS"):
        gen(ctx, "web-1", SharedResources("default"))


def test_snapshot_generator_hands_its_settings_to_every_mesh() -> None:
    ctx = ctx_of(
        MTLS_MESH,
        dp("web-1", "10.0.0.1", [(8080, {"kuma.io/service": "web"})], [(1, "backend")]),
    )
    generator = SnapshotGenerator(SETTINGS)
    assert generator.shared("default").settings is SETTINGS
    snapshot = generator(ctx, ctx.dataplanes["web-1"], DataplaneMetadata(0, "/t"))
    cluster = snapshot.of_type(CLUSTER)["backend"].message
    assert cluster is not None
    assert cluster.transport_socket.name == "envoy.transport_sockets.tls"
    with pytest.raises(GenerationError):
        SnapshotGenerator(GeneratorSettings())(ctx, ctx.dataplanes["web-1"], DataplaneMetadata())
