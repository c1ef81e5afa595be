"""ProxyTemplate: selection, profiles, raw resources and modifications, and their errors."""

from __future__ import annotations

from typing import Any

import pytest

from kuma.model.rest import resource_from_dict
from kuma.xds.core import CLUSTER, LISTENER
from kuma.xds.generators import ProxyTemplateError, SharedResources
from kuma.xds.generators.proxy_template import check_proxy_template
from tests.xds.generators.harness import SETTINGS
from tests.xds.policies.support import cluster, ctx_of, dp, gen, listener, policy, sel

WEB = {"kuma.io/service": "web"}


def template(name: str = "t", **conf: Any) -> dict[str, Any]:
    return policy("ProxyTemplate", name, selectors=sel(WEB), conf=conf)


def web(*templates: dict[str, Any]) -> Any:
    return ctx_of(dp("web-1", "10.0.0.1", [(8080, WEB)], [(1, "backend")]), *templates)


RAW_CLUSTER = """
'@type': type.googleapis.com/envoy.config.cluster.v3.Cluster
connectTimeout: 1s
"""


def test_no_imports_means_only_the_raw_resources() -> None:
    resources = gen(
        web(template(resources=[{"name": "c", "version": "1", "resource": RAW_CLUSTER}])), "web-1"
    )
    assert [(r.name, r.origin) for r in resources] == [("c", "proxy-template-raw")]
    assert cluster(resources, "c") == {"name": "c", "connectTimeout": "1s"}


def test_default_template_and_imports() -> None:
    default = gen(web(), "web-1")
    imported = gen(web(template(imports=["default-proxy"])), "web-1")
    assert sorted((r.type_url, r.name) for r in default) == sorted(
        (r.type_url, r.name) for r in imported
    )
    assert default.get(LISTENER, "outbound:127.0.0.1:1") is not None


def error(ctx: Any) -> str:
    with pytest.raises(ProxyTemplateError) as e:
        gen(ctx, "web-1")
    return str(e.value)


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            "'@type': type.googleapis.com/envoy.config.cluster.v3.Cluster\nnoSuchField: 1",
            'has no field named "noSuchField"',
        ),
        (
            "'@type': type.googleapis.com/envoy.api.v2.Cluster\nhosts: []",
            'has no field named "hosts"',
        ),
        ("'@type': type.googleapis.com/google.protobuf.Empty", "unsupported @type"),
        (
            "'@type': type.googleapis.com/envoy.config.cluster.v3.Cluster\nname: other",
            "its name 'other' differs from the raw resource's name 'c'",
        ),
    ],
)
def test_raw_resource_errors_name_the_template_and_field(resource: str, message: str) -> None:
    text = error(web(template(resources=[{"name": "c", "version": "1", "resource": resource}])))
    assert text.startswith("proxytemplate{name='t'}: conf.resources[0]{name='c'}.resource: ")
    assert message in text


def test_modification_errors_name_the_modification() -> None:
    mods = [
        {"cluster": {"operation": "patch", "value": "connectTimeout: 2s"}},
        {"listener": {"operation": "patch", "value": "bogus: true"}},
    ]
    text = error(web(template(imports=["default-proxy"], modifications=mods)))
    assert text.startswith(
        "proxytemplate{name='t'}: could not apply conf.modifications[1].listener"
    )
    assert 'has no field named "bogus"' in text


def test_patching_a_typed_config_with_another_type_is_refused() -> None:
    mods = [
        {
            "networkFilter": {
                "match": {"name": "envoy.filters.network.tcp_proxy"},
                "operation": "patch",
                "value": "name: x\ntypedConfig:\n  '@type': type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC\n  statPrefix: x\n",
            }
        }
    ]
    text = error(web(template(imports=["default-proxy"], modifications=mods)))
    assert "cannot patch a typed_config of type" in text


def test_modifications_never_touch_shared_resources() -> None:
    shared = SharedResources("default", settings=SETTINGS)
    plain_ctx = ctx_of(
        dp("web-1", "10.0.0.1", [(8080, WEB)], [(1, "backend")]),
        dp("web-2", "10.0.0.2", [(8080, {"kuma.io/service": "other"})], [(1, "backend")]),
        template(
            imports=["default-proxy"],
            modifications=[
                {
                    "cluster": {
                        "match": {"name": "backend"},
                        "operation": "patch",
                        "value": "connectTimeout: 9s",
                    }
                }
            ],
        ),
    )
    patched = gen(plain_ctx, "web-1", shared)
    untouched = gen(plain_ctx, "web-2", shared)  # no template applies to `other`
    assert cluster(patched, "backend")["connectTimeout"] == "9s"
    assert cluster(untouched, "backend")["connectTimeout"] == "5s"
    again = gen(plain_ctx, "web-1", shared)
    assert cluster(again, "backend")["connectTimeout"] == "9s"


def test_filter_operations() -> None:
    router = "envoy.filters.http.router"
    cors = "name: envoy.filters.http.cors\ntypedConfig:\n  '@type': type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors\n"
    ctx = ctx_of(
        dp("web-1", "10.0.0.1", [(8080, {**WEB, "kuma.io/protocol": "http"})]),
        template(
            imports=["default-proxy"],
            modifications=[
                {"httpFilter": {"operation": "addFirst", "value": cors}},
                {
                    "httpFilter": {
                        "match": {"name": router},
                        "operation": "addAfter",
                        "value": cors.replace("cors\n", "cors\n", 1),
                    }
                },
                {
                    "httpFilter": {
                        "match": {"name": "nope"},
                        "operation": "addBefore",
                        "value": cors,
                    }
                },
                {
                    "networkFilter": {
                        "match": {"listenerName": "inbound:10.0.0.1:8080"},
                        "operation": "addLast",
                        "value": "name: envoy.filters.network.echo",
                    }
                },
                {
                    "networkFilter": {
                        "match": {"name": "envoy.filters.network.echo"},
                        "operation": "remove",
                    }
                },
            ],
        ),
    )
    chain = listener(gen(ctx, "web-1"), "inbound:10.0.0.1:8080")["filterChains"][0]
    assert [f["name"] for f in chain["filters"]] == [
        "envoy.filters.network.http_connection_manager"
    ]
    http_filters = chain["filters"][0]["typedConfig"]["httpFilters"]
    assert [f["name"] for f in http_filters] == [
        "envoy.filters.http.cors",
        router,
        "envoy.filters.http.cors",
    ]


def test_removing_clusters_and_virtual_hosts_by_match() -> None:
    ctx = ctx_of(
        dp("web-1", "10.0.0.1", [(8080, {**WEB, "kuma.io/protocol": "http"})], [(1, "backend")]),
        template(
            imports=["default-proxy"],
            modifications=[
                {"cluster": {"match": {"origin": "outbound"}, "operation": "remove"}},
                {
                    "virtualHost": {
                        "match": {"origin": "inbound", "name": "web"},
                        "operation": "remove",
                    }
                },
            ],
        ),
    )
    resources = gen(ctx, "web-1")
    assert resources.get(CLUSTER, "backend") is None
    assert resources.get(CLUSTER, "localhost:8080") is not None
    route_config = listener(resources, "inbound:10.0.0.1:8080")["filterChains"][0]["filters"][0][
        "typedConfig"
    ]["routeConfig"]
    assert "virtualHosts" not in route_config


def test_check_proxy_template_reports_what_envoy_would_reject() -> None:
    resource = resource_from_dict(
        template(
            resources=[
                {"name": "ok", "version": "1", "resource": RAW_CLUSTER},
                {
                    "name": "bad",
                    "version": "1",
                    "resource": "'@type': type.googleapis.com/envoy.config.cluster.v3.Cluster\nfoo: 1",
                },
            ],
            modifications=[
                {"cluster": {"operation": "patch", "value": "connectTimeout: 1s"}},
                {"virtualHost": {"operation": "add", "value": "name: v\nroutez: []"}},
            ],
        )
    )
    problems = check_proxy_template(resource.spec)
    assert [path for path, _ in problems] == [
        "conf.resources[1].resource",
        "conf.modifications[1].virtualHost.value",
    ]
    assert all(m.startswith("native Envoy resource is not valid: ") for _, m in problems)
