"""Topology: routes, subsets, destinations, protocol inference and endpoints of a proxy."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from kuma.model.policy import select_connection_policies, select_inbound_policies
from kuma.model.resource import Resource
from kuma.model.rest import resource_from_dict
from kuma.model.selectors import inbound_interface
from kuma.xds.core import Endpoint, MeshContext, ProxyId
from kuma.xds.envoy import ClusterSubset
from kuma.xds.topology import (
    IMPLICIT_ROUTE_NAME,
    build_endpoints,
    build_proxy,
    common_protocol,
    endpoints_of,
    infer_protocol,
    parse_protocol,
    select_connection_policies_indexed,
    select_inbound_policy_indexed,
)
from tests.xds.generators.harness import mesh_context


def dp(name: str, address: str = "10.0.0.1", **networking: Any) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {"address": address, **networking},
    }


def inbound(service: str, port: int = 8080, **tags: str) -> dict[str, Any]:
    return {"port": port, "tags": {"kuma.io/service": service, **tags}}


def route(
    name: str, source: dict[str, str], dest: str, *conf: tuple[int, dict[str, str]]
) -> dict[str, Any]:
    return {
        "type": "TrafficRoute",
        "mesh": "default",
        "name": name,
        "sources": [{"match": source}],
        "destinations": [{"match": {"kuma.io/service": dest}}],
        "conf": [{"weight": w, "destination": d} for w, d in conf],
    }


def ctx_of(*docs: dict[str, Any]) -> MeshContext:
    return mesh_context([resource_from_dict(d) for d in docs])


def ep(target: str, port: int, **tags: str) -> Endpoint:
    return Endpoint(target, port, tags)


# -- protocols ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http", "http"),
        ("HTTP2", "http2"),
        ("gRPC", "grpc"),
        ("tcp", "tcp"),
        ("", "<unknown>"),
        (None, "<unknown>"),
        ("mongo", "<unknown>"),
    ],
)
def test_parse_protocol(value: str | None, expected: str) -> None:
    assert parse_protocol(value) == expected


@pytest.mark.parametrize(
    ("one", "other", "expected"),
    [
        ("http", "http", "http"),
        ("grpc", "http2", "http2"),
        ("http2", "grpc", "http2"),
        ("http", "http2", "tcp"),
        ("grpc", "http", "tcp"),
        ("http", "tcp", "tcp"),
        ("http", "<unknown>", "<unknown>"),
        ("<unknown>", "<unknown>", "<unknown>"),
    ],
)
def test_common_protocol(one: str, other: str, expected: str) -> None:
    assert common_protocol(one, other) == expected


def test_infer_protocol() -> None:
    p = "kuma.io/protocol"
    assert infer_protocol([]) == "<unknown>"
    assert infer_protocol([ep("a", 1, **{p: "http"}), ep("b", 1, **{p: "HTTP"})]) == "http"
    assert infer_protocol([ep("a", 1, **{p: "grpc"}), ep("b", 1, **{p: "http2"})]) == "http2"
    assert infer_protocol([ep("a", 1, **{p: "http"}), ep("b", 1)]) == "<unknown>"


# -- endpoints ---------------------------------------------------------------------------------


def test_endpoints_of_a_dataplane() -> None:
    resource = resource_from_dict(
        dp(
            "a",
            "10.0.0.1",
            inbound=[
                inbound("web", 80, version="v1"),
                {**inbound("api", 81), "address": "10.0.0.9", "servicePort": 9000},
            ],
        )
    )
    assert endpoints_of(resource) == [
        ("web", Endpoint("10.0.0.1", 80, {"kuma.io/service": "web", "version": "v1"}, 1)),
        ("api", Endpoint("10.0.0.9", 81, {"kuma.io/service": "api"}, 1)),
    ]


def test_gateways_and_ingresses_are_never_endpoints() -> None:
    gateway = resource_from_dict(dp("gw", gateway={"tags": {"kuma.io/service": "web"}}))
    ingress = resource_from_dict(
        dp(
            "in",
            ingress={"availableServices": [{"tags": {"kuma.io/service": "web"}}]},
            inbound=[{"port": 10001, "tags": {"kuma.io/service": "web"}}],
        )
    )
    assert endpoints_of(gateway) == []
    assert endpoints_of(ingress) == []


def test_build_endpoints_groups_by_service_in_dataplane_name_order() -> None:
    dps = [
        resource_from_dict(dp("b", "10.0.0.2", inbound=[inbound("web"), inbound("api", 81)])),
        resource_from_dict(dp("a", "10.0.0.1", inbound=[inbound("web")])),
        resource_from_dict(dp("c", "10.0.0.3", gateway={"tags": {"kuma.io/service": "web"}})),
    ]
    endpoints = build_endpoints(dps)
    assert [e.target for e in endpoints["web"]] == ["10.0.0.1", "10.0.0.2"]
    assert [(e.target, e.port) for e in endpoints["api"]] == [("10.0.0.2", 81)]
    assert isinstance(endpoints["web"], tuple)


# -- proxy ------------------------------------------------------------------------------------


def test_proxy_without_routes_uses_the_implicit_default_route() -> None:
    ctx = ctx_of(
        dp(
            "web-1",
            inbound=[inbound("web")],
            outbound=[
                {"port": 1, "tags": {"kuma.io/service": "backend", "version": "v1"}},
                {"port": 2, "service": "db"},
            ],
        ),
        dp(
            "backend-1",
            "10.0.0.2",
            inbound=[inbound("backend", version="v1", **{"kuma.io/protocol": "http"})],
        ),
    )
    proxy = build_proxy(ctx, ctx.dataplanes["web-1"])
    assert proxy.id == ProxyId("default", "web-1")
    backend, db = proxy.outbounds
    assert backend.route.name == IMPLICIT_ROUTE_NAME
    assert backend.route.implicit
    assert backend.subsets == (
        ClusterSubset("backend", 100, {"kuma.io/service": "backend", "version": "v1"}),
    )
    assert backend.protocol == "http"
    assert (backend.address, backend.port) == ("127.0.0.1", 1)
    # legacy `service` outbound
    assert db.service == "db"
    assert db.subsets == (ClusterSubset("db", 100, {"kuma.io/service": "db"}),)
    assert db.protocol == "tcp"  # no endpoints at all
    assert proxy.destinations == {
        "backend": ({"kuma.io/service": "backend", "version": "v1"},),
        "db": ({"kuma.io/service": "db"},),
    }
    assert proxy.endpoints["backend"] is ctx.endpoints["backend"]
    assert proxy.endpoints["db"] == ()
    assert proxy.tags == {"kuma.io/service": ["web"]}


def test_the_most_specific_traffic_route_applies_per_service() -> None:
    ctx = ctx_of(
        dp(
            "web-1",
            inbound=[inbound("web", version="v1")],
            outbound=[
                {"port": 1, "tags": {"kuma.io/service": "backend"}},
                {"port": 2, "tags": {"kuma.io/service": "db"}},
            ],
        ),
        route(
            "any-to-backend",
            {"kuma.io/service": "*"},
            "backend",
            (100, {"kuma.io/service": "backend", "version": "v1"}),
        ),
        route(
            "web-to-backend",
            {"kuma.io/service": "web"},
            "backend",
            (20, {"kuma.io/service": "backend", "version": "v1"}),
            (80, {"kuma.io/service": "backend-v2"}),
            (0, {"kuma.io/service": "backend", "version": "v3"}),
        ),
        route(
            "other-to-db",
            {"kuma.io/service": "other"},
            "db",
            (100, {"kuma.io/service": "db", "role": "master"}),
        ),
    )
    proxy = build_proxy(ctx, ctx.dataplanes["web-1"])
    backend, db = proxy.outbounds
    assert backend.route.name == "web-to-backend"
    assert backend.route.resource is ctx.policies["TrafficRoute"][2]
    assert backend.subsets == (
        ClusterSubset("backend", 20, {"kuma.io/service": "backend", "version": "v1"}),
        ClusterSubset("backend-v2", 80, {"kuma.io/service": "backend-v2"}),
    )
    assert db.route.implicit  # the only route to db is for other sources
    # every destination, the weight-0 one included (Kuma's OutboundSelectors)
    assert proxy.destinations["backend"] == (
        {"kuma.io/service": "backend", "version": "v1"},
        {"kuma.io/service": "backend", "version": "v3"},
    )
    assert set(proxy.destinations) == {"backend", "backend-v2", "db"}


def test_traffic_route_tie_goes_to_the_later_one() -> None:
    ctx = ctx_of(
        dp(
            "web-1",
            inbound=[inbound("web")],
            outbound=[{"port": 1, "tags": {"kuma.io/service": "backend"}}],
        ),
        route(
            "a",
            {"kuma.io/service": "web"},
            "backend",
            (100, {"kuma.io/service": "backend", "v": "a"}),
        ),
        route(
            "b",
            {"kuma.io/service": "web"},
            "backend",
            (100, {"kuma.io/service": "backend", "v": "b"}),
        ),
    )
    routes: tuple[Resource, ...] = ctx.policies["TrafficRoute"]
    routes[0].meta.creation_time = dt.datetime(2020, 1, 2, tzinfo=dt.UTC)
    routes[1].meta.creation_time = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert build_proxy(ctx, ctx.dataplanes["web-1"]).outbounds[0].route.name == "a"
    routes[1].meta.creation_time = dt.datetime(2020, 1, 3, tzinfo=dt.UTC)
    assert build_proxy(ctx, ctx.dataplanes["web-1"]).outbounds[0].route.name == "b"


def test_protocol_is_inferred_over_the_endpoints_the_route_selects() -> None:
    p = "kuma.io/protocol"
    ctx = ctx_of(
        dp(
            "web-1",
            inbound=[inbound("web")],
            outbound=[{"port": 1, "tags": {"kuma.io/service": "backend"}}],
        ),
        dp("backend-1", "10.0.0.2", inbound=[inbound("backend", version="v1", **{p: "http"})]),
        dp("backend-2", "10.0.0.3", inbound=[inbound("backend", version="v2")]),
        dp("api-1", "10.0.0.4", inbound=[inbound("api", **{p: "grpc"})]),
        route(
            "r",
            {"kuma.io/service": "web"},
            "backend",
            (100, {"kuma.io/service": "backend", "version": "v1"}),
        ),
    )
    proxy = build_proxy(ctx, ctx.dataplanes["web-1"])
    assert proxy.outbounds[0].protocol == "http"  # v2 (tcp) is not a destination
    # the endpoint map still holds every endpoint of the service (shared with other proxies)
    assert len(proxy.endpoints["backend"]) == 2

    ctx2 = ctx_of(
        dp(
            "web-1",
            inbound=[inbound("web")],
            outbound=[{"port": 1, "tags": {"kuma.io/service": "backend"}}],
        ),
        dp("backend-1", "10.0.0.2", inbound=[inbound("backend", version="v1", **{p: "http"})]),
        dp("api-1", "10.0.0.4", inbound=[inbound("api", **{p: "grpc"})]),
        route(
            "r",
            {"kuma.io/service": "web"},
            "backend",
            (50, {"kuma.io/service": "backend"}),
            (50, {"kuma.io/service": "api"}),
        ),
    )
    # http and grpc have only tcp in common
    assert build_proxy(ctx2, ctx2.dataplanes["web-1"]).outbounds[0].protocol == "tcp"


def test_inbounds() -> None:
    ctx = ctx_of(
        dp(
            "a",
            "10.0.0.1",
            inbound=[
                {**inbound("web", 80, **{"kuma.io/protocol": "GRPC"}), "servicePort": 8080},
                {**inbound("db", 5432), "address": "10.0.0.2", "serviceAddress": "10.0.0.3"},
            ],
        ),
    )
    first, second = build_proxy(ctx, ctx.dataplanes["a"]).inbounds
    assert (first.service, first.protocol, first.index) == ("web", "grpc", 0)
    assert str(first.interface) == "10.0.0.1:80:127.0.0.1:8080"
    assert (second.service, second.protocol) == ("db", "<unknown>")
    assert str(second.interface) == "10.0.0.2:5432:10.0.0.3:5432"


def test_vip_outbounds_for_transparent_proxying() -> None:
    ctx = ctx_of(
        dp(
            "web-1",
            inbound=[inbound("web")],
            transparentProxying={"redirectPortOutbound": 15001, "redirectPortInbound": 15006},
        ),
        dp("web-2", "10.0.0.2", inbound=[inbound("web")]),
        dp("db-1", "10.0.0.3", inbound=[inbound("db")]),
        dp("x-1", "10.0.0.4", inbound=[inbound("novip")]),
    )
    vips = {"web": "240.0.0.1", "db": "240.0.0.2"}
    proxy = build_proxy(ctx, ctx.dataplanes["web-1"], vips=vips)
    assert [(o.address, o.port, o.service) for o in proxy.outbounds] == [
        ("240.0.0.2", 80, "db"),
        ("240.0.0.1", 80, "web"),
    ]
    # without transparent proxying, no VIP outbounds
    assert build_proxy(ctx, ctx.dataplanes["web-2"], vips=vips).outbounds == ()


def test_dataplane_without_networking() -> None:
    ctx = ctx_of(dp("web-1", inbound=[inbound("web")]))
    bare = Resource(ctx.dataplanes["web-1"].type, ctx.dataplanes["web-1"].meta)
    bare.spec.networking = None
    proxy = build_proxy(ctx, bare)
    assert proxy.inbounds == ()
    assert proxy.outbounds == ()


# -- policies ----------------------------------------------------------------------------------


def policy(type_name: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"type": type_name, "mesh": "default", "name": name, **spec}


def sel(*matches: dict[str, str]) -> list[dict[str, Any]]:
    return [{"match": m} for m in matches]


def created(ctx: MeshContext, type_name: str, name: str, day: int) -> None:
    for p in ctx.policies[type_name]:
        if p.meta.name == name:
            p.meta.creation_time = dt.datetime(2020, 1, day, tzinfo=dt.UTC)


def test_inbound_policies_are_the_best_destination_match_per_inbound() -> None:
    http = {"kuma.io/protocol": "http"}
    ctx = ctx_of(
        dp(
            "backend-1",
            inbound=[
                inbound("backend", 8080, version="v1", **http),
                inbound("admin", 9090, **http),
                inbound("other", 7070),
            ],
        ),
        policy(
            "TrafficPermission",
            "all",
            sources=sel({"kuma.io/service": "*"}),
            destinations=sel({"kuma.io/service": "*"}),
        ),
        policy(
            "TrafficPermission",
            "backend-v1",
            sources=sel({"kuma.io/service": "web"}),
            destinations=sel({"kuma.io/service": "backend", "version": "v1"}),
        ),
        policy(
            "TrafficPermission",
            "admin-a",
            sources=sel({"kuma.io/service": "ops"}),
            destinations=sel({"kuma.io/service": "admin"}),
        ),
        policy(
            "TrafficPermission",
            "admin-b",
            sources=sel({"kuma.io/service": "dev"}),
            destinations=sel({"kuma.io/service": "admin"}),
        ),
        policy(
            "FaultInjection",
            "fi",
            sources=sel({"kuma.io/service": "web", **http}),
            destinations=sel({"kuma.io/service": "backend", **http}),
            conf={"abort": {"percentage": 50, "httpStatus": 500}},
        ),
    )
    created(ctx, "TrafficPermission", "admin-a", 2)
    created(ctx, "TrafficPermission", "admin-b", 1)
    backend, admin, other = build_proxy(ctx, ctx.dataplanes["backend-1"]).inbounds
    assert backend.permission is not None
    assert backend.permission.meta.name == "backend-v1"
    assert admin.permission is not None
    assert admin.permission.meta.name == "admin-a"
    assert other.permission is not None
    assert other.permission.meta.name == "all"
    assert backend.fault_injection is not None
    assert backend.fault_injection.meta.name == "fi"
    assert admin.fault_injection is None
    assert other.fault_injection is None

    created(ctx, "TrafficPermission", "admin-b", 3)
    admin = build_proxy(ctx, ctx.dataplanes["backend-1"]).inbounds[1]
    assert admin.permission is not None
    assert admin.permission.meta.name == "admin-b"


def test_connection_policies_per_destination_and_per_outbound_service() -> None:
    star = {"kuma.io/service": "*"}
    ctx = ctx_of(
        dp(
            "web-1",
            inbound=[inbound("web", version="v1")],
            outbound=[
                {"port": 1, "tags": {"kuma.io/service": "backend"}},
                {"port": 2, "tags": {"kuma.io/service": "db"}},
            ],
        ),
        route(
            "backend-to-v2",
            {"kuma.io/service": "web"},
            "backend",
            (100, {"kuma.io/service": "backend-v2"}),
        ),
        policy(
            "HealthCheck",
            "all",
            sources=sel(star),
            destinations=sel(star),
            conf={
                "interval": "10s",
                "timeout": "1s",
                "unhealthyThreshold": 1,
                "healthyThreshold": 1,
            },
        ),
        policy(
            "HealthCheck",
            "web-v1",
            sources=sel({"kuma.io/service": "web", "version": "v1"}),
            destinations=sel({"kuma.io/service": "db"}),
            conf={
                "interval": "1s",
                "timeout": "1s",
                "unhealthyThreshold": 1,
                "healthyThreshold": 1,
            },
        ),
        policy(
            "CircuitBreaker",
            "db",
            sources=sel(star),
            destinations=sel({"kuma.io/service": "db"}),
            conf={"detectors": {"totalErrors": {}}},
        ),
        policy(
            "Retry",
            "r",
            sources=sel(star),
            destinations=sel({"kuma.io/service": "db"}),
            conf={"tcp": {"maxConnectAttempts": 3}},
        ),
        policy(
            "Timeout",
            "t",
            sources=sel(star),
            destinations=sel({"kuma.io/service": "backend"}),
            conf={"connectTimeout": "1s"},
        ),
    )
    proxy = build_proxy(ctx, ctx.dataplanes["web-1"])
    # destination services: backend-v2 (routed to) and db; not backend itself
    assert {s: p.meta.name for s, p in proxy.health_checks.items()} == {
        "backend-v2": "all",
        "db": "web-v1",
    }
    assert {s: p.meta.name for s, p in proxy.circuit_breakers.items()} == {"db": "db"}
    backend, db = proxy.outbounds
    # Retry by destination service, Timeout by the outbound's own service (Kuma 1.1)
    assert backend.retry is None
    assert db.retry is not None
    assert backend.timeout is not None
    assert db.timeout is None


def test_traffic_logs_resolve_to_mesh_backends() -> None:
    star = {"kuma.io/service": "*"}
    mesh = {
        "type": "Mesh",
        "name": "default",
        "logging": {
            "defaultBackend": "file",
            "backends": [
                {"name": "file", "type": "file", "conf": {"path": "/tmp/a.log"}},
                {"name": "tcp", "type": "tcp", "conf": {"address": "127.0.0.1:5000"}},
            ],
        },
    }
    ctx = ctx_of(
        mesh,
        dp(
            "web-1",
            inbound=[inbound("web")],
            outbound=[
                {"port": 1, "tags": {"kuma.io/service": "backend"}},
                {"port": 2, "tags": {"kuma.io/service": "db"}},
                {"port": 3, "tags": {"kuma.io/service": "cache"}},
            ],
        ),
        policy("TrafficLog", "default-backend", sources=sel(star), destinations=sel(star)),
        policy(
            "TrafficLog",
            "to-db",
            sources=sel(star),
            destinations=sel({"kuma.io/service": "db"}),
            conf={"backend": "tcp"},
        ),
        policy(
            "TrafficLog",
            "to-cache",
            sources=sel(star),
            destinations=sel({"kuma.io/service": "cache"}),
            conf={"backend": "missing"},
        ),
    )
    proxy = build_proxy(ctx, ctx.dataplanes["web-1"])
    assert [o.log.name if o.log else None for o in proxy.outbounds] == ["file", "tcp", None]
    assert proxy.passthrough_log is not None
    assert proxy.passthrough_log.name == "file"


def test_dataplane_policies_and_mtls() -> None:
    mesh = {
        "type": "Mesh",
        "name": "default",
        "mtls": {"enabledBackend": "ca", "backends": [{"name": "ca", "type": "builtin"}]},
        "tracing": {
            "defaultBackend": "z1",
            "backends": [
                {"name": "z1", "type": "zipkin", "conf": {"url": "http://z1:9411/api/v2/spans"}},
                {"name": "z2", "type": "zipkin", "conf": {"url": "http://z2:9411/api/v2/spans"}},
            ],
        },
    }
    ctx = ctx_of(
        mesh,
        dp("web-1", inbound=[inbound("web", version="v1")]),
        dp("db-1", "10.0.0.2", inbound=[inbound("db")]),
        policy("TrafficTrace", "all", selectors=sel({"kuma.io/service": "*"})),
        policy(
            "TrafficTrace",
            "web",
            selectors=sel({"kuma.io/service": "web", "version": "*"}),
            conf={"backend": "z2"},
        ),
        policy("ProxyTemplate", "everyone", selectors=sel({"kuma.io/service": "*"})),
        policy(
            "ProxyTemplate",
            "web",
            selectors=sel({"kuma.io/service": "web"}),
            conf={"imports": ["default-proxy"]},
        ),
    )
    web = build_proxy(ctx, ctx.dataplanes["web-1"])
    db = build_proxy(ctx, ctx.dataplanes["db-1"])
    assert web.mtls
    assert db.mtls
    assert web.traffic_trace is not None
    assert web.traffic_trace.meta.name == "web"
    assert web.tracing_backend is not None
    assert web.tracing_backend.name == "z2"
    assert db.tracing_backend is not None
    assert db.tracing_backend.name == "z1"
    assert web.proxy_template is not None
    assert web.proxy_template.meta.name == "web"
    assert db.proxy_template is not None
    assert db.proxy_template.meta.name == "everyone"


# -- indexed selection == Kuma's rules --------------------------------------------------------

_VALUES = ("a", "b", "*")


def _random_selector(rng: random.Random, keys: tuple[str, ...]) -> dict[str, str]:
    chosen = [k for k in keys if rng.random() < 0.5]
    return {k: rng.choice(_VALUES) for k in chosen}


def _random_policies(rng: random.Random, type_name: str, count: int) -> tuple[Resource, ...]:
    policies = []
    for i in range(count):
        sources = [
            {"match": {"kuma.io/service": rng.choice(_VALUES), **_random_selector(rng, ("v",))}}
            for _ in range(rng.randint(1, 2))
        ]
        destinations = []
        for _ in range(rng.randint(1, 3)):
            match = {"kuma.io/service": rng.choice(_VALUES), **_random_selector(rng, ("v", "z"))}
            if rng.random() < 0.1:
                match.pop("kuma.io/service")
            destinations.append({"match": match})
        doc = policy(
            type_name, f"p{rng.randint(0, 5)}{i}", sources=sources, destinations=destinations
        )
        resource = resource_from_dict(doc)
        resource.meta.creation_time = dt.datetime(2020, 1, rng.randint(1, 3), tzinfo=dt.UTC)
        policies.append(resource)
    rng.shuffle(policies)
    return tuple(policies)


@pytest.mark.parametrize("seed", range(300))
def test_indexed_selection_gives_kumas_answers(seed: int) -> None:
    rng = random.Random(seed)
    inbounds = [
        {
            "port": 1000 + i,
            "tags": {
                "kuma.io/service": rng.choice(("a", "b")),
                **({"v": rng.choice("ab")} if rng.random() < 0.7 else {}),
            },
        }
        for i in range(rng.randint(1, 3))
    ]
    dataplane = resource_from_dict(dp("x", inbound=inbounds)).spec
    services = [rng.choice(("a", "b", "c")) for _ in range(4)]

    connection = _random_policies(rng, "TrafficRoute", rng.randint(0, 12))
    assert select_connection_policies_indexed(
        dataplane, services, connection
    ) == select_connection_policies(dataplane, services, connection)

    inbound_policies = _random_policies(rng, "TrafficPermission", rng.randint(0, 12))
    expected = select_inbound_policies(dataplane, inbound_policies)
    for inbound_spec in dataplane.networking.inbound:
        iface = inbound_interface(dataplane.networking, inbound_spec)
        got = select_inbound_policy_indexed(inbound_spec.tags, inbound_policies)
        assert got is expected.get(iface)
