"""Prometheus endpoint: when it is generated, what it merges, which permission guards it.

The full generated config of the common cases is in the golden files `prometheus-*.yaml`
(and accepted by Envoy, test_envoy_validate); these tests pin the decisions around them.
"""

from __future__ import annotations

from typing import Any

import pytest
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.filters.network.rbac.v3 import rbac_pb2

from kuma.model.rest import resource_from_dict
from kuma.pb.google import protobuf as pb_google
from kuma.xds.core import CLUSTER, LISTENER, DataplaneMetadata, MeshContext
from kuma.xds.generators import (
    DEFAULT_PROXY_PROFILE,
    ORIGIN_PROMETHEUS,
    GenerationError,
    SharedResources,
    generate,
)
from kuma.xds.generators.prometheus import (
    PrometheusEndpoint,
    generate_prometheus_endpoint,
    prometheus_endpoint,
)
from kuma.xds.names import ENVOY_ADMIN_CLUSTER, PROMETHEUS_LISTENER
from kuma.xds.topology import build_proxy
from tests.xds.generators.harness import SETTINGS, mesh_context

ADMIN = DataplaneMetadata(admin_port=9902)


def mesh_doc(conf: dict[str, Any] | None = None, *, mtls: bool = False, **metrics: Any) -> dict:
    doc: dict[str, Any] = {"type": "Mesh", "name": "default"}
    backend: dict[str, Any] = {"name": "prometheus-1", "type": "prometheus"}
    if conf is not None:
        backend["conf"] = conf
    doc["metrics"] = {"enabledBackend": "prometheus-1", "backends": [backend], **metrics}
    if mtls:
        doc["mtls"] = {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]}
    return doc


def dataplane_doc(networking: dict[str, Any] | None = None, **spec: Any) -> dict:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": "backend-01",
        "networking": networking
        or {
            "address": "192.168.0.1",
            "inbound": [{"port": 80, "servicePort": 8080, "tags": {"kuma.io/service": "backend"}}],
        },
        **spec,
    }


def context(*docs: dict[str, Any]) -> MeshContext:
    return mesh_context([resource_from_dict(d) for d in docs])


def run(ctx: MeshContext, metadata: DataplaneMetadata = ADMIN) -> list[Any]:
    proxy = build_proxy(ctx, ctx.dataplanes["backend-01"], metadata)
    shared = SharedResources("default", settings=SETTINGS)
    return list(generate_prometheus_endpoint(ctx, proxy, shared))


def listener_of(resources: list[Any]) -> listener_pb2.Listener:
    (listener,) = [r for r in resources if r.type_url == LISTENER]
    assert listener.name == PROMETHEUS_LISTENER
    message: listener_pb2.Listener = listener.message
    return message


def hcm_of(chain: Any) -> hcm_pb2.HttpConnectionManager:
    hcm = hcm_pb2.HttpConnectionManager()
    assert chain.filters[-1].typed_config.Unpack(hcm)
    return hcm


# -- when nothing is generated -------------------------------------------------------------


def test_nothing_when_the_mesh_has_no_metrics() -> None:
    ctx = context({"type": "Mesh", "name": "default"}, dataplane_doc())
    assert run(ctx) == []


def test_a_dataplane_override_alone_turns_nothing_on() -> None:
    ctx = context(
        {"type": "Mesh", "name": "default"},
        dataplane_doc(metrics={"type": "prometheus", "conf": {"port": 1234}}),
    )
    assert run(ctx) == []
    assert prometheus_endpoint(ctx.mesh, ctx.dataplanes["backend-01"]) is None


def test_nothing_when_no_backend_is_enabled() -> None:
    doc = mesh_doc({"port": 1234})
    doc["metrics"]["enabledBackend"] = ""
    assert run(context(doc, dataplane_doc())) == []


def test_nothing_without_an_admin_port() -> None:
    ctx = context(mesh_doc({"port": 1234}), dataplane_doc())
    assert run(ctx, DataplaneMetadata()) == []
    assert len(run(ctx)) == 2


@pytest.mark.parametrize(
    ("networking", "port"),
    [
        # the inbound's own listener
        (
            {
                "address": "192.168.0.1",
                "inbound": [{"port": 80, "servicePort": 8080, "tags": {"kuma.io/service": "b"}}],
            },
            80,
        ),
        # an inbound bound to a wildcard address
        (
            {
                "address": "192.168.0.1",
                "inbound": [{"port": 81, "address": "0.0.0.0", "tags": {"kuma.io/service": "b"}}],
            },
            81,
        ),
        # the application behind an inbound, on the dataplane's address
        (
            {
                "address": "192.168.0.1",
                "inbound": [
                    {
                        "port": 80,
                        "servicePort": 8080,
                        "serviceAddress": "192.168.0.1",
                        "tags": {"kuma.io/service": "b"},
                    }
                ],
            },
            8080,
        ),
        # an outbound on the dataplane's address
        (
            {
                "address": "192.168.0.1",
                "inbound": [{"port": 80, "tags": {"kuma.io/service": "b"}}],
                "outbound": [
                    {"port": 54321, "address": "192.168.0.1", "tags": {"kuma.io/service": "db"}}
                ],
            },
            54321,
        ),
    ],
)
def test_nothing_when_the_port_is_taken_by_the_dataplane(
    networking: dict[str, Any], port: int
) -> None:
    ctx = context(
        mesh_doc({"port": 1234}),
        dataplane_doc(networking, metrics={"type": "prometheus", "conf": {"port": port}}),
    )
    assert run(ctx) == []


def test_the_same_port_on_other_addresses_is_no_clash() -> None:
    """An outbound on 127.0.0.1 (the default) and an application on 127.0.0.1 don't clash with
    a metrics listener on the dataplane's address."""
    networking = {
        "address": "192.168.0.1",
        "inbound": [{"port": 80, "servicePort": 8080, "tags": {"kuma.io/service": "b"}}],
        "outbound": [{"port": 54321, "tags": {"kuma.io/service": "db"}}],
    }
    for port in (8080, 54321):
        ctx = context(
            mesh_doc({"port": 1234}),
            dataplane_doc(networking, metrics={"type": "prometheus", "conf": {"port": port}}),
        )
        assert listener_of(run(ctx)).address.socket_address.port_value == port


# -- what is generated ---------------------------------------------------------------------


def test_mesh_defaults_apply_when_the_backend_has_no_conf() -> None:
    ctx = context(mesh_doc(), dataplane_doc())
    assert prometheus_endpoint(ctx.mesh, ctx.dataplanes["backend-01"]) == PrometheusEndpoint(
        5670, "/metrics", {"kuma.io/service": "dataplane-metrics"}, False
    )


def test_the_dataplane_overrides_field_by_field_and_merges_tags() -> None:
    ctx = context(
        mesh_doc({"port": 1234, "path": "/mesh", "tags": {"kuma.io/service": "m", "team": "a"}}),
        dataplane_doc(
            metrics={
                "type": "prometheus",
                "conf": {"path": "/own", "tags": {"team": "b", "env": "x"}, "skipMTLS": True},
            }
        ),
    )
    assert prometheus_endpoint(ctx.mesh, ctx.dataplanes["backend-01"]) == PrometheusEndpoint(
        1234, "/own", {"kuma.io/service": "m", "team": "b", "env": "x"}, True
    )


def test_cluster_and_listener() -> None:
    ctx = context(mesh_doc({"port": 1234, "path": "/p"}), dataplane_doc())
    resources = run(ctx)
    assert [(r.type_url, r.name, r.origin) for r in resources] == [
        (CLUSTER, ENVOY_ADMIN_CLUSTER, ORIGIN_PROMETHEUS),
        (LISTENER, PROMETHEUS_LISTENER, ORIGIN_PROMETHEUS),
    ]
    endpoint = resources[0].message.load_assignment.endpoints[0].lb_endpoints[0].endpoint
    assert endpoint.address.socket_address.address == "127.0.0.1"
    assert endpoint.address.socket_address.port_value == 9902
    listener = listener_of(resources)
    assert listener.address.socket_address.address == "192.168.0.1"
    (chain,) = listener.filter_chains
    (route,) = hcm_of(chain).route_config.virtual_hosts[0].routes
    assert route.match.prefix == "/p"
    assert route.route.cluster == ENVOY_ADMIN_CLUSTER
    assert route.route.prefix_rewrite == "/stats/prometheus"


def test_the_admin_cluster_is_shared_between_proxies_with_the_same_admin_port() -> None:
    ctx = context(mesh_doc(), dataplane_doc())
    shared = SharedResources("default", settings=SETTINGS)
    proxy = build_proxy(ctx, ctx.dataplanes["backend-01"], ADMIN)
    first = generate_prometheus_endpoint(ctx, proxy, shared)[0]
    again = generate_prometheus_endpoint(ctx, proxy, shared)[0]
    assert first is again
    other = build_proxy(ctx, ctx.dataplanes["backend-01"], DataplaneMetadata(admin_port=9903))
    assert generate_prometheus_endpoint(ctx, other, shared)[0] is not first


def test_it_runs_first_in_the_default_profile() -> None:
    assert DEFAULT_PROXY_PROFILE[0] is generate_prometheus_endpoint
    ctx = context(mesh_doc(), dataplane_doc())
    resources = generate(
        ctx,
        build_proxy(ctx, ctx.dataplanes["backend-01"], ADMIN),
        SharedResources("default", settings=SETTINGS),
    )
    assert resources.get(LISTENER, PROMETHEUS_LISTENER) is not None
    assert resources.get(CLUSTER, ENVOY_ADMIN_CLUSTER) is not None


def test_ipv6_dataplane_address_matches_a_single_host() -> None:
    networking = {
        "address": "fd00::1",
        "inbound": [{"port": 80, "tags": {"kuma.io/service": "backend"}}],
    }
    ctx = context(mesh_doc({"port": 1234}, mtls=True), dataplane_doc(networking))
    own = listener_of(run(ctx)).filter_chains[0].filter_chain_match.source_prefix_ranges[0]
    assert (own.address_prefix, own.prefix_len.value) == ("fd00::1", 128)


# -- mTLS ------------------------------------------------------------------------------------


def permission(name: str, source: str, destination: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "TrafficPermission",
        "mesh": "default",
        "name": name,
        "sources": [{"match": {"kuma.io/service": source}}],
        "destinations": [{"match": destination}],
    }


def rbac_of(chain: Any) -> rbac_pb2.RBAC:
    assert chain.filters[0].name == "envoy.filters.network.rbac"
    config = rbac_pb2.RBAC()
    assert chain.filters[0].typed_config.Unpack(config)
    return config


def test_mtls_permission_is_selected_by_the_metrics_tags() -> None:
    ctx = context(
        mesh_doc({"tags": {"kuma.io/service": "dataplane-metrics", "team": "infra"}}, mtls=True),
        dataplane_doc(),
        permission("all-metrics", "*", {"kuma.io/service": "dataplane-metrics"}),
        permission(
            "infra-metrics", "prometheus", {"kuma.io/service": "dataplane-metrics", "team": "infra"}
        ),
        permission("to-backend", "web", {"kuma.io/service": "backend"}),
    )
    own, secured = listener_of(run(ctx)).filter_chains
    assert own.filter_chain_match.source_prefix_ranges[0].address_prefix == "192.168.0.1"
    assert not own.HasField("transport_socket")
    assert secured.transport_socket.name == "envoy.transport_sockets.tls"
    rules = rbac_of(secured).rules
    assert list(rules.policies) == ["infra-metrics"]  # the most specific destination match
    principal = rules.policies["infra-metrics"].principals[0]
    assert principal.authenticated.principal_name.exact == "spiffe://default/prometheus"


def test_mtls_without_a_permission_denies_every_mesh_peer() -> None:
    ctx = context(
        mesh_doc(mtls=True),
        dataplane_doc(),
        permission("to-backend", "*", {"kuma.io/service": "backend"}),
    )
    _, secured = listener_of(run(ctx)).filter_chains
    rules = rbac_of(secured).rules
    assert rules.action == rules.ALLOW
    assert not rules.policies  # `rules: {}`: nobody is allowed


@pytest.mark.parametrize(
    ("mesh_skip", "dp_skip", "chains"),
    [(None, None, 2), (False, None, 2), (True, None, 1), (True, False, 2), (False, True, 1)],
)
def test_skip_mtls_from_the_mesh_or_the_dataplane(
    mesh_skip: bool | None, dp_skip: bool | None, chains: int
) -> None:
    conf = {} if mesh_skip is None else {"skipMTLS": mesh_skip}
    spec = (
        {}
        if dp_skip is None
        else {"metrics": {"type": "prometheus", "conf": {"skipMTLS": dp_skip}}}
    )
    ctx = context(mesh_doc(conf, mtls=True), dataplane_doc(**spec))
    listener = listener_of(run(ctx))
    assert len(listener.filter_chains) == chains
    if chains == 1:
        assert not listener.filter_chains[0].HasField("transport_socket")
        assert not listener.filter_chains[0].HasField("filter_chain_match")


def test_a_conf_that_does_not_decode_is_a_generation_error() -> None:
    """A conf written around validation (a store that skipped the manager) is reported with
    its field path, not crashed on."""
    ctx = context(mesh_doc({"port": 1234}), dataplane_doc())
    override = resource_from_dict(dataplane_doc(metrics={"type": "prometheus"})).spec.metrics
    override.conf = pb_google.Struct.from_dict({"port": "http"})
    ctx.dataplanes["backend-01"].spec.metrics = override
    with pytest.raises(GenerationError, match=r"of the dataplane: metrics\.conf\.port"):
        run(ctx)


# -- ProxyTemplate ---------------------------------------------------------------------------


def proxy_template(conf: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "ProxyTemplate",
        "mesh": "default",
        "name": "metrics",
        "selectors": [{"match": {"kuma.io/service": "*"}}],
        "conf": conf,
    }


def generate_all(ctx: MeshContext) -> Any:
    proxy = build_proxy(ctx, ctx.dataplanes["backend-01"], ADMIN)
    return generate(ctx, proxy, SharedResources("default", settings=SETTINGS))


def test_proxy_template_modifications_select_the_prometheus_origin() -> None:
    ctx = context(
        mesh_doc({"port": 1234}),
        dataplane_doc(),
        proxy_template(
            {
                "imports": ["default-proxy"],
                "modifications": [
                    {
                        "listener": {
                            "match": {"origin": "prometheus"},
                            "operation": "patch",
                            "value": "perConnectionBufferLimitBytes: 32768",
                        }
                    },
                    {"cluster": {"match": {"origin": "prometheus"}, "operation": "remove"}},
                ],
            }
        ),
    )
    resources = generate_all(ctx)
    listener = resources.get(LISTENER, PROMETHEUS_LISTENER)
    assert listener is not None
    assert listener.message.per_connection_buffer_limit_bytes.value == 32768
    assert resources.get(CLUSTER, ENVOY_ADMIN_CLUSTER) is None
    inbound = resources.get(LISTENER, "inbound:192.168.0.1:80")
    assert inbound is not None
    assert not inbound.message.HasField("per_connection_buffer_limit_bytes")


def test_a_proxy_template_without_default_proxy_has_no_metrics() -> None:
    ctx = context(mesh_doc({"port": 1234}), dataplane_doc(), proxy_template({"imports": []}))
    assert generate_all(ctx).get(LISTENER, PROMETHEUS_LISTENER) is None
