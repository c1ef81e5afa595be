"""Selector matching, ranking and Kuma 0.7.3's policy selection."""

from __future__ import annotations

import datetime as dt

from kuma.model import registry as r
from kuma.model.codec import decode
from kuma.model.policy import (
    outbound_services,
    select_connection_policies,
    select_dataplane_policy,
    select_inbound_policies,
)
from kuma.model.resource import Resource, ResourceMeta, ResourceType
from kuma.model.selectors import (
    Rank,
    dataplane_matches,
    dataplane_tags,
    format_tags,
    identifying_service,
    rank,
    selector_matches,
)
from kuma.pb.kuma.mesh import v1alpha1 as pb

T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def dp(data: dict) -> pb.Dataplane:
    return decode(pb.Dataplane, data)


WEB = dp(
    {
        "networking": {
            "address": "10.0.0.1",
            "inbound": [
                {"port": 80, "tags": {"kuma.io/service": "web", "version": "v1", "region": "eu"}},
                {"port": 81, "tags": {"kuma.io/service": "web-admin", "version": "v1"}},
            ],
            "outbound": [
                {"port": 1000, "tags": {"kuma.io/service": "backend"}},
                {"port": 1001, "service": "db"},
            ],
        }
    }
)
GATEWAY = dp(
    {"networking": {"address": "10.0.0.9", "gateway": {"tags": {"kuma.io/service": "kong"}}}}
)


def policy(rtype: ResourceType, name: str, spec: dict, minutes: int = 0) -> Resource:
    res = Resource(rtype, ResourceMeta(name=name, mesh="default"), decode(rtype.spec_cls, spec))
    res.meta.creation_time = T0 + dt.timedelta(minutes=minutes)
    return res


def conn(name: str, src: dict, dst: dict, minutes: int = 0) -> Resource:
    return policy(
        r.TRAFFIC_ROUTE,
        name,
        {"sources": [{"match": src}], "destinations": [{"match": dst}]},
        minutes,
    )


def test_selector_matching_rules() -> None:
    tags = {"kuma.io/service": "web", "version": "v1"}
    assert selector_matches({}, tags)
    assert selector_matches({"kuma.io/service": "web"}, tags)
    assert selector_matches({"kuma.io/service": "*", "version": "v1"}, tags)
    assert not selector_matches({"kuma.io/service": "web", "zone": "*"}, tags)
    assert not selector_matches({"version": "v2"}, tags)


def test_rank_prefers_more_tags_then_more_exact_values() -> None:
    assert rank({"a": "1", "b": "*"}) == Rank(exact=1, wildcard=1)
    assert rank({"a": "*", "b": "*"}) > rank({"a": "1"})  # more tags wins
    assert rank({"a": "1", "b": "2"}) > rank({"a": "1", "b": "*"})  # then exact values
    assert rank({"a": "1"}) + rank({"b": "*"}) == Rank(1, 1)


def test_dataplane_matches_any_inbound_or_gateway_and_tag_helpers() -> None:
    assert dataplane_matches(WEB, {"kuma.io/service": "web-admin"})
    assert not dataplane_matches(WEB, {"kuma.io/service": "web-admin", "region": "eu"})
    assert dataplane_matches(GATEWAY, {"kuma.io/service": "kong"})
    assert dataplane_tags(WEB) == {
        "kuma.io/service": ["web", "web-admin"],
        "region": ["eu"],
        "version": ["v1"],
    }
    assert format_tags(dataplane_tags(WEB)) == (
        "kuma.io/service=web,web-admin region=eu version=v1"
    )
    assert identifying_service(WEB) == "web"
    assert identifying_service(dp({"networking": {"address": "1.1.1.1"}})) == "unknown"


def test_outbound_services_include_legacy_field_and_pass_through() -> None:
    assert outbound_services(WEB) == ["backend", "db", "pass_through"]


def test_connection_policy_specific_source_beats_general() -> None:
    general = conn("a-general", {"kuma.io/service": "*"}, {"kuma.io/service": "backend"})
    specific = conn(
        "b-specific", {"kuma.io/service": "web", "version": "v1"}, {"kuma.io/service": "backend"}
    )
    chosen = select_connection_policies(WEB, outbound_services(WEB), [specific, general])
    assert chosen["backend"] is specific
    assert "db" not in chosen


def test_connection_policy_exact_destination_beats_wildcard() -> None:
    wildcard = conn("x", {"kuma.io/service": "web"}, {"kuma.io/service": "*"}, minutes=5)
    exact = conn("y", {"kuma.io/service": "web"}, {"kuma.io/service": "db"})
    chosen = select_connection_policies(WEB, outbound_services(WEB), [wildcard, exact])
    assert chosen["db"] is exact
    assert chosen["backend"] is wildcard
    assert chosen["pass_through"] is wildcard


def test_connection_policy_tie_goes_to_later_created_then_first_by_name() -> None:
    older = conn("z-older", {"kuma.io/service": "web"}, {"kuma.io/service": "backend"}, minutes=1)
    newer = conn("a-newer", {"kuma.io/service": "web"}, {"kuma.io/service": "backend"}, minutes=2)
    assert select_connection_policies(WEB, ["backend"], [older, newer])["backend"] is newer
    same1 = conn("b", {"kuma.io/service": "web"}, {"kuma.io/service": "backend"})
    same2 = conn("a", {"kuma.io/service": "web"}, {"kuma.io/service": "backend"})
    assert select_connection_policies(WEB, ["backend"], [same1, same2])["backend"] is same2


def test_connection_policy_not_matching_the_source_is_ignored() -> None:
    other = conn("p", {"kuma.io/service": "mobile"}, {"kuma.io/service": "*"})
    assert select_connection_policies(WEB, outbound_services(WEB), [other]) == {}


def test_inbound_policy_picks_most_specific_destination_per_inbound() -> None:
    def tp(name: str, dst: dict, minutes: int = 0) -> Resource:
        spec = {"sources": [{"match": {"kuma.io/service": "*"}}], "destinations": [{"match": dst}]}
        return policy(r.TRAFFIC_PERMISSION, name, spec, minutes)

    everything = tp("all", {"kuma.io/service": "*"})
    web_v1 = tp("web-v1", {"kuma.io/service": "web", "version": "v1"})
    web_later = tp("web-later", {"kuma.io/service": "web", "version": "*"}, minutes=9)
    chosen = select_inbound_policies(WEB, [everything, web_v1, web_later])
    by_port = {iface.data_plane_port: p.meta.name for iface, p in chosen.items()}
    assert by_port == {80: "web-v1", 81: "all"}
    iface = next(i for i in chosen if i.data_plane_port == 80)
    assert str(iface) == "10.0.0.1:80:127.0.0.1:80"


def test_dataplane_policy_selection() -> None:
    def tt(name: str, selectors: list[dict], minutes: int = 0) -> Resource:
        spec = {"selectors": [{"match": s} for s in selectors]}
        return policy(r.TRAFFIC_TRACE, name, spec, minutes)

    catch_all = tt("catch-all", [])
    empty_selector = tt("empty", [{}], minutes=1)
    by_service = tt("svc", [{"kuma.io/service": "web"}])
    by_two = tt("two", [{"kuma.io/service": "web", "region": "eu"}, {"kuma.io/service": "x"}])
    unrelated = tt("other", [{"kuma.io/service": "mobile", "a": "b", "c": "d"}], minutes=99)

    assert select_dataplane_policy(WEB, []) is None
    assert select_dataplane_policy(WEB, [catch_all]) is catch_all
    assert select_dataplane_policy(WEB, [catch_all, empty_selector]) is empty_selector
    assert select_dataplane_policy(WEB, [catch_all, by_service, unrelated]) is by_service
    assert select_dataplane_policy(WEB, [by_service, by_two, unrelated]) is by_two
    assert select_dataplane_policy(GATEWAY, [by_service, unrelated]) is None
