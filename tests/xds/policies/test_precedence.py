"""Which policy shapes the generated config when several match: the most specific one, and at
equal specificity the one created later (Kuma's ranking), seen in the Envoy resources."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kuma.model.resource import Resource
from kuma.xds.core import CLUSTER, MeshContext
from kuma.xds.generators import SharedResources
from tests.xds.generators.harness import SETTINGS
from tests.xds.policies.support import MTLS_MESH, cluster, ctx_of, dp, gen, listener, policy, sel

STAR = {"kuma.io/service": "*"}
WEB = {"kuma.io/service": "web"}


def created(ctx: MeshContext, type_name: str, name: str, day: int) -> Resource:
    for p in ctx.policies[type_name]:
        if p.meta.name == name:
            p.meta.creation_time = dt.datetime(2020, 1, day, tzinfo=dt.UTC)
            return p
    raise AssertionError(f"no {type_name} {name}")


def rbac_policies(resources: Any, name: str) -> dict[str, Any]:
    first = listener(resources, name)["filterChains"][0]["filters"][0]
    assert first["name"] == "envoy.filters.network.rbac"
    policies: dict[str, Any] = first["typedConfig"]["rules"].get("policies", {})
    return policies


def permission(name: str, source: str, destination: dict[str, str]) -> dict[str, Any]:
    return policy(
        "TrafficPermission",
        name,
        sources=sel({"kuma.io/service": source}),
        destinations=sel(destination),
    )


def test_traffic_permission_specific_beats_general_and_later_created_wins() -> None:
    ctx = ctx_of(
        MTLS_MESH,
        dp("backend-1", "10.0.0.2", [(8080, {"kuma.io/service": "backend", "version": "v1"})]),
        permission("general", "*", {"kuma.io/service": "backend"}),
        permission("specific", "web", {"kuma.io/service": "backend", "version": "v1"}),
        permission("same-rank", "api", {"kuma.io/service": "backend", "version": "v1"}),
    )
    created(ctx, "TrafficPermission", "specific", 2)
    created(ctx, "TrafficPermission", "same-rank", 1)
    policies = rbac_policies(gen(ctx, "backend-1"), "inbound:10.0.0.2:8080")
    assert list(policies) == ["specific"]
    assert policies["specific"]["principals"] == [
        {"authenticated": {"principalName": {"exact": "spiffe://default/web"}}}
    ]

    created(ctx, "TrafficPermission", "same-rank", 3)  # now the later one
    policies = rbac_policies(gen(ctx, "backend-1"), "inbound:10.0.0.2:8080")
    assert list(policies) == ["same-rank"]

    # at equal creation time, the first by name stays
    created(ctx, "TrafficPermission", "specific", 3)
    assert list(rbac_policies(gen(ctx, "backend-1"), "inbound:10.0.0.2:8080")) == ["same-rank"]


def test_no_permission_denies_and_mtls_off_means_no_rbac() -> None:
    backend = dp("backend-1", "10.0.0.2", [(8080, {"kuma.io/service": "backend"})])
    ctx = ctx_of(MTLS_MESH, backend, permission("other", "*", {"kuma.io/service": "other"}))
    first = listener(gen(ctx, "backend-1"), "inbound:10.0.0.2:8080")["filterChains"][0]
    assert first["filters"][0]["typedConfig"]["rules"] == {}
    assert first["transportSocket"]["name"] == "envoy.transport_sockets.tls"

    plain = ctx_of(backend, permission("all", "*", {"kuma.io/service": "*"}))
    chain = listener(gen(plain, "backend-1"), "inbound:10.0.0.2:8080")["filterChains"][0]
    assert [f["name"] for f in chain["filters"]] == ["envoy.filters.network.tcp_proxy"]
    assert "transportSocket" not in chain


def health_check(name: str, source: dict[str, str], interval: str) -> dict[str, Any]:
    return policy(
        "HealthCheck",
        name,
        sources=sel(source),
        destinations=sel({"kuma.io/service": "backend"}),
        conf={
            "interval": interval,
            "timeout": "1s",
            "unhealthyThreshold": 2,
            "healthyThreshold": 1,
        },
    )


def test_health_check_source_specificity_and_creation_time() -> None:
    ctx = ctx_of(
        dp("web-1", "10.0.0.1", [(8080, {**WEB, "version": "v1"})], [(1, "backend")]),
        dp("api-1", "10.0.0.3", [(8080, {"kuma.io/service": "api"})], [(1, "backend")]),
        health_check("general", STAR, "10s"),
        health_check("web", WEB, "3s"),
        health_check("web-v1", {**WEB, "version": "v1"}, "1s"),
    )

    def interval(name: str, shared: SharedResources | None = None) -> str:
        value: str = cluster(gen(ctx, name, shared), "backend")["healthChecks"][0]["interval"]
        return value

    assert interval("web-1") == "1s"  # two tags beat one
    assert interval("api-1") == "10s"
    # an equally specific one created later wins
    ctx = ctx_of(
        dp("web-1", "10.0.0.1", [(8080, WEB)], [(1, "backend")]),
        health_check("a", WEB, "3s"),
        health_check("b", WEB, "4s"),
    )
    created(ctx, "HealthCheck", "a", 1)
    created(ctx, "HealthCheck", "b", 2)
    assert interval("web-1") == "4s"


def test_shared_clusters_follow_policy_changes() -> None:
    docs = [
        dp("web-1", "10.0.0.1", [(8080, WEB)], [(1, "backend")]),
        dp("web-2", "10.0.0.2", [(8080, WEB)], [(1, "backend")]),
        policy(
            "CircuitBreaker",
            "cb",
            sources=sel(STAR),
            destinations=sel({"kuma.io/service": "backend"}),
            conf={"detectors": {"totalErrors": {"consecutive": 5}}},
        ),
    ]
    shared = SharedResources("default", settings=SETTINGS)
    ctx = ctx_of(*docs)
    first = gen(ctx, "web-1", shared).get(CLUSTER, "backend")
    assert gen(ctx, "web-2", shared).get(CLUSTER, "backend") is first  # built once
    first_bytes = first.payload if first else b""

    docs[2]["conf"]["detectors"]["totalErrors"]["consecutive"] = 9
    changed = ctx_of(*docs)  # the catalog publishes new policy objects after a change
    second = gen(changed, "web-1", shared).get(CLUSTER, "backend")
    assert second is not None
    assert second is not first
    assert (
        cluster(gen(changed, "web-2", shared), "backend")["outlierDetection"]["consecutive5xx"] == 9
    )
    assert first is not None
    assert first.payload == first_bytes


def test_traffic_log_and_trace_follow_the_most_specific_policy() -> None:
    mesh = {
        "type": "Mesh",
        "name": "default",
        "logging": {
            "backends": [
                {"name": "a", "type": "file", "conf": {"path": "/tmp/a.log"}},
                {"name": "b", "type": "file", "conf": {"path": "/tmp/b.log"}},
            ]
        },
        "tracing": {
            "backends": [
                {"name": "t1", "type": "zipkin", "conf": {"url": "http://t1:9411/api/v2/spans"}},
                {"name": "t2", "type": "zipkin", "conf": {"url": "http://t2:9411/api/v2/spans"}},
            ]
        },
    }
    ctx = ctx_of(
        mesh,
        dp("web-1", "10.0.0.1", [(8080, WEB)], [(1, "backend")]),
        policy(
            "TrafficLog",
            "general",
            sources=sel(STAR),
            destinations=sel(STAR),
            conf={"backend": "a"},
        ),
        policy(
            "TrafficLog",
            "specific",
            sources=sel(WEB),
            destinations=sel({"kuma.io/service": "backend"}),
            conf={"backend": "b"},
        ),
        policy("TrafficTrace", "general", selectors=sel(STAR), conf={"backend": "t1"}),
        policy("TrafficTrace", "web", selectors=sel(WEB), conf={"backend": "t2"}),
    )
    resources = gen(ctx, "web-1")
    tcp = listener(resources, "outbound:127.0.0.1:1")["filterChains"][0]["filters"][0]
    assert tcp["typedConfig"]["accessLog"][0]["typedConfig"]["path"] == "/tmp/b.log"
    assert resources.get(CLUSTER, "tracing:t2") is not None
    assert resources.get(CLUSTER, "tracing:t1") is None
