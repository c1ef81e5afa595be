"""Monitoring assignments from meshes and dataplanes (Kuma's assignments_test.go cases, and the
per-dataplane override, name extensions, IPv6 and clashes)."""

from __future__ import annotations

import pytest

from kuma.mads import assignment_for, sanitize_label_name
from kuma.model.metrics import dataplane_prometheus, mesh_prometheus
from kuma.model.resource import Resource

from .harness import PROMETHEUS, dataplane, mesh, resource

MANDATORY = {"__scheme__", "__metrics_path__", "job", "instance", "mesh", "dataplane"}


def monitored(name: str = "demo") -> Resource:
    return mesh(name, PROMETHEUS)


def generate(m: Resource, dp: Resource, extensions: dict[str, str] | None = None) -> dict:  # type: ignore[type-arg]
    assignment = assignment_for(mesh_prometheus(m), dp, extensions)
    assert assignment is not None
    return {
        "name": assignment.name,
        "targets": [dict(t.labels) for t in assignment.targets],
        "labels": dict(assignment.labels),
    }


@pytest.mark.parametrize(
    ("name", "sanitized"),
    [
        ("kuma.io/service", "kuma_io_service"),
        ("app:description", "app_description"),
        ("com.company/tag", "com_company_tag"),
        ("already_fine_09", "already_fine_09"),
        ("zone-é", "zone__"),  # one underscore per character, as Go's regexp does per rune
    ],
)
def test_label_names_are_sanitised(name: str, sanitized: str) -> None:
    assert sanitize_label_name(name) == sanitized


def test_a_mesh_without_an_enabled_prometheus_backend_has_no_assignments() -> None:
    dp = dataplane(
        "backend-01",
        "demo",
        extra="metrics:\n  name: own\n  type: prometheus\n  conf: {port: 8765}\n",
    )
    assert mesh_prometheus(mesh("demo")) is None
    assert assignment_for(mesh_prometheus(mesh("demo")), dp) is None
    # metrics section present but nothing enabled
    disabled = mesh("demo", PROMETHEUS.replace("enabledBackend: prom-1", "enabledBackend: ''"))
    assert assignment_for(mesh_prometheus(disabled), dp) is None


def test_a_gateway_without_address_and_inbounds() -> None:
    gateway = resource(
        """
type: Dataplane
name: gateway-01
mesh: demo
networking:
  gateway:
    tags: {kuma.io/service: gateway, region: eu}
"""
    )
    assert generate(monitored(), gateway) == {
        "name": "/meshes/demo/dataplanes/gateway-01",
        "targets": [{"__address__": ":1234"}],
        "labels": {
            "__scheme__": "http",
            "__metrics_path__": "/non-standard-path",
            "job": "gateway",
            "instance": "gateway-01",
            "mesh": "demo",
            "dataplane": "gateway-01",
            "region": "eu",
            "regions": ",eu,",
            "kuma_io_service": "gateway",
            "kuma_io_services": ",gateway,",
        },
    }


def test_multiple_inbounds_give_first_values_and_plural_multi_values() -> None:
    dp = resource(
        """
type: Dataplane
name: backend-01
mesh: demo
networking:
  address: 192.168.0.1
  inbound:
  - port: 80
    servicePort: 8080
    tags: {kuma.io/service: backend, env: prod, version: v1}
  - address: 192.168.0.2
    port: 443
    servicePort: 8443
    tags: {kuma.io/service: backend-https, env: prod, version: v2}
"""
    )
    got = generate(monitored(), dp)
    assert got["targets"] == [{"__address__": "192.168.0.1:1234"}]
    assert got["labels"] == {
        "__scheme__": "http",
        "__metrics_path__": "/non-standard-path",
        "job": "backend",
        "instance": "backend-01",
        "mesh": "demo",
        "dataplane": "backend-01",
        "env": "prod",
        "envs": ",prod,",
        "kuma_io_service": "backend",
        "kuma_io_services": ",backend,backend-https,",
        "version": "v1",
        "versions": ",v1,v2,",
    }


def test_a_user_defined_plural_tag_wins_over_the_generated_one() -> None:
    dp = dataplane("backend-01", "demo", extra="")
    dp.spec.networking.inbound[0].tags.update({"version": "v1", "versions": "v1+v1.0.1"})
    labels = generate(monitored(), dp)["labels"]
    assert labels["version"] == "v1"
    assert labels["versions"] == "v1+v1.0.1"
    assert labels["versionss"] == ",v1+v1.0.1,"


def test_unsafe_tag_names_are_sanitised_and_values_kept() -> None:
    dp = dataplane("backend-01", "demo")
    dp.spec.networking.inbound[0].tags.update(
        {"app:description": "?!,.:;", "com.company/tag": "&*()-+"}
    )
    labels = generate(monitored(), dp)["labels"]
    assert {k: v for k, v in labels.items() if k not in MANDATORY} == {
        "kuma_io_service": "backend",
        "kuma_io_services": ",backend,",
        "app_description": "?!,.:;",
        "app_descriptions": ",?!,.:;,",
        "com_company_tag": "&*()-+",
        "com_company_tags": ",&*()-+,",
    }


def test_mandatory_labels_win_over_tags_with_the_same_name() -> None:
    dp = dataplane("backend-01", "demo")
    dp.spec.networking.inbound[0].tags.update({"job": "mine", "mesh": "other", "instance": "x"})
    labels = generate(monitored(), dp)["labels"]
    assert (labels["job"], labels["mesh"], labels["instance"]) == ("backend", "demo", "backend-01")
    assert labels["jobs"] == ",mine,"


def test_a_dataplane_without_service_tag_is_job_unknown() -> None:
    gateway = resource(
        "type: Dataplane\nname: gw\nmesh: demo\nnetworking:\n  gateway:\n    tags: {role: edge}\n"
    )
    assert generate(monitored(), gateway)["labels"]["job"] == "unknown"


@pytest.mark.parametrize(
    ("own", "expected"),
    [
        (
            "conf: {port: 8765, path: /even-more-non-standard-path}",
            (8765, "/even-more-non-standard-path"),
        ),
        ("conf: {port: 8765}", (8765, "/non-standard-path")),
        ("conf: {path: /own}", (1234, "/own")),
        ("conf: {}", (1234, "/non-standard-path")),
    ],
)
def test_a_dataplane_overrides_the_mesh_port_and_path_field_by_field(
    own: str, expected: tuple[int, str]
) -> None:
    dp = dataplane(
        "backend-01", "demo", extra=f"metrics:\n  name: own\n  type: prometheus\n  {own}\n"
    )
    config = mesh_prometheus(monitored())
    assert config is not None
    endpoint = dataplane_prometheus(config, dp)
    assert (endpoint.port, endpoint.path) == expected
    got = generate(monitored(), dp)
    assert got["targets"] == [{"__address__": f"192.168.0.1:{expected[0]}"}]
    assert got["labels"]["__metrics_path__"] == expected[1]


def test_an_unreadable_dataplane_metrics_config_leaves_only_that_dataplane_out() -> None:
    dp = dataplane("backend-01", "demo")
    bad = dataplane(
        "backend-02",
        "demo",
        extra="metrics:\n  name: own\n  type: prometheus\n  conf: {port: not-a-number}\n",
    )
    config = mesh_prometheus(monitored())
    assert assignment_for(config, bad) is None
    assert assignment_for(config, dp) is not None


def test_ipv6_addresses_are_bracketed() -> None:
    dp = dataplane("backend-01", "demo", address="fd00::1")
    assert generate(monitored(), dp)["targets"] == [{"__address__": "[fd00::1]:1234"}]


def test_name_extensions_become_labels_below_the_mandatory_ones() -> None:
    dp = dataplane("backend-01", "demo")
    labels = generate(
        monitored(),
        dp,
        {"k8s.kuma.io/name": "backend-01-pod", "k8s.kuma.io/namespace": "kuma-demo"},
    )["labels"]
    assert labels["k8s_kuma_io_name"] == "backend-01-pod"
    assert labels["k8s_kuma_io_namespace"] == "kuma-demo"


def test_mesh_defaults_fill_port_and_path() -> None:
    # the manager applies Kuma's defaults (5670, /metrics) to a backend without conf
    from kuma.manager.defaults import apply_mesh_defaults

    m = mesh(
        "demo", "metrics:\n  enabledBackend: p\n  backends:\n  - name: p\n    type: prometheus\n"
    )
    apply_mesh_defaults(m.spec)
    got = generate(m, dataplane("backend-01", "demo"))
    assert got["targets"] == [{"__address__": "192.168.0.1:5670"}]
    assert got["labels"]["__metrics_path__"] == "/metrics"


def test_labels_are_serialised_in_sorted_order() -> None:
    dp = dataplane("backend-01", "demo")
    assignment = assignment_for(mesh_prometheus(monitored()), dp)
    assert assignment is not None
    assert list(assignment.labels) == sorted(assignment.labels)


def test_unset_port_and_path_get_the_defaults_even_when_not_stored() -> None:
    m = mesh(
        "demo", "metrics:\n  enabledBackend: p\n  backends:\n  - name: p\n    type: prometheus\n"
    )
    got = generate(m, dataplane("backend-01", "demo"))
    assert got["targets"] == [{"__address__": "192.168.0.1:5670"}]
    assert got["labels"]["__metrics_path__"] == "/metrics"


@pytest.mark.parametrize(
    "mesh_conf", ["conf: {port: 1234, path: /m}", "conf: {path: /only-path}", "conf: {}", ""]
)
@pytest.mark.parametrize(
    "own", ["", "conf: {port: 8765}", "conf: {path: /own}", "conf: {port: 1, path: /both}"]
)
def test_the_published_address_is_where_the_envoy_listener_serves(mesh_conf: str, own: str) -> None:
    from kuma.xds.generators.prometheus import prometheus_endpoint as listener_endpoint

    m = mesh(
        "demo",
        "metrics:\n  enabledBackend: p\n  backends:\n  - name: p\n    type: prometheus\n"
        + (f"    {mesh_conf}\n" if mesh_conf else ""),
    )
    extra = f"metrics:\n  name: own\n  type: prometheus\n  {own}\n" if own else ""
    dp = dataplane("backend-01", "demo", extra=extra)
    listener = listener_endpoint(m, dp)
    assert listener is not None
    got = generate(m, dp)
    assert got["targets"] == [{"__address__": f"192.168.0.1:{listener.port}"}]
    assert got["labels"]["__metrics_path__"] == listener.path
