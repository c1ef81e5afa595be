"""Pod -> Dataplane conversion (kuma.k8s.convert), table-driven from testdata/convert/cases.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from kuma.k8s import convert
from kuma.model.codec import decode
from kuma.model.validators.dataplane import validate_dataplane
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb
from tests.k8s.workloads import load, load_all, pod_for

CASES = load_all("convert/cases.yaml")


def _validation(name: str, mesh: str, spec: dict[str, Any]) -> str | None:
    err = validate_dataplane(name, mesh, decode(mesh_pb.Dataplane, spec))
    return None if err is None else str(err)


def _valid(name: str, mesh: str, spec: dict[str, Any]) -> None:
    """The Dataplanes the converter makes pass Kuma's own Dataplane validation."""
    assert _validation(name, mesh, spec) is None


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_conversion_table(case: dict[str, Any]) -> None:
    def run() -> convert.DataplaneObject:
        return convert.dataplane_for(
            case["pod"],
            case.get("services") or [],
            case.get("dataplanes") or [],
            namespace=case.get("namespace"),
            zone=case.get("zone", ""),
        )

    if "error" in case:
        with pytest.raises(convert.ConversionError) as info:
            run()
        assert str(info.value) == case["error"]
        return
    result = run()
    assert result == convert.DataplaneObject(case["expected"]["mesh"], case["expected"]["spec"])
    # tag order is deterministic (sorted), like Kuma's JSON maps
    for inbound in result.spec["networking"].get("inbound", []):
        assert list(inbound.get("tags", {})) == sorted(inbound.get("tags", {}))
    problem = _validation(case["pod"]["metadata"]["name"], result.mesh, result.spec)
    assert problem == case.get("validation_error")


def test_seed_manifests_echo_server_and_service_less_echo_client() -> None:
    """The issue's example: kuma-test/echo-server (HTTP on 80) and a service-less echo-client."""
    namespace = load("kuma-test/namespace.yaml", "Namespace", "kuma-test")
    service = load("kuma-test/echo-server.yaml", "Service", "echo-server")
    server = pod_for(load("kuma-test/echo-server.yaml", "Deployment", "echo-server"), ip="10.1.0.2")
    client = pod_for(load("kuma-test/echo-client.yaml", "Deployment", "echo-client"), ip="10.1.0.3")
    assert client["metadata"]["name"].startswith("echo-client-")

    server_dp = convert.dataplane_for(server, [service], namespace=namespace)
    assert server_dp.mesh == "default"
    [inbound] = server_dp.spec["networking"]["inbound"]
    assert inbound["port"] == 80
    assert inbound["tags"]["kuma.io/service"] == "echo-server_kuma-test_svc_80"
    assert inbound["tags"]["kuma.io/protocol"] == "http"
    assert inbound["tags"]["app"] == "echo-server"
    assert server_dp.spec["networking"]["transparentProxying"] == {
        "redirectPortInbound": 15006,
        "redirectPortOutbound": 15001,
    }

    server_cr = {"mesh": "default", "metadata": server["metadata"], "spec": server_dp.spec}
    others = [server_cr]
    client_dp = convert.dataplane_for(client, [service], others, namespace=namespace)
    [inbound] = client_dp.spec["networking"]["inbound"]
    assert inbound["tags"]["kuma.io/service"] == "echo-client_kuma-test_svc"
    assert inbound["tags"]["kuma.io/protocol"] == "tcp"
    assert inbound["port"] == convert.SERVICELESS_PORT
    # the client reaches the echo server through the Service's ClusterIP
    assert client_dp.spec["networking"]["outbound"] == [
        {
            "address": "10.96.0.80",
            "port": 80,
            "tags": {"kuma.io/service": "echo-server_kuma-test_svc_80"},
        }
    ]
    for name, dp in (("server", server_dp), ("client", client_dp)):
        _valid(name, dp.mesh, dp.spec)


@pytest.mark.parametrize(
    ("pod_name", "base"),
    [
        ("echo-client-6b9f8d7c4d-x2k9p", "echo-client"),
        ("web-7d9c6b5f4-abcde", "web"),
        ("my-client", "my-client"),
        ("client", "client"),
        ("db-0", "db-0"),
        ("a-b-c", "a"),  # Kuma's rule reads any 3-part name as <name>-<rs>-<pod>
    ],
)
def test_pod_base_name_follows_kumas_rule(pod_name: str, base: str) -> None:
    assert convert.pod_base_name(pod_name) == base


@pytest.mark.parametrize(
    ("tag", "parsed"),
    [
        ("web_demo_svc_80", ("web", "demo", 80)),
        ("web_demo_svc", ("web", "demo", None)),
        ("web_demo_svc_x", None),
        ("web", None),
        ("a_b_c_d_e", None),
    ],
)
def test_parse_service_tag(tag: str, parsed: tuple[str, str, int | None] | None) -> None:
    assert convert.parse_service_tag(tag) == parsed


@pytest.mark.parametrize(
    ("pod_annotations", "ns_annotations", "mesh"),
    [
        (None, None, "default"),
        ({"kuma.io/mesh": ""}, None, "default"),
        ({"kuma.io/mesh": "demo"}, None, "demo"),
        (None, {"kuma.io/mesh": "ns-mesh"}, "ns-mesh"),
        ({"kuma.io/mesh": ""}, {"kuma.io/mesh": "ns-mesh"}, "ns-mesh"),
        ({"kuma.io/mesh": "demo"}, {"kuma.io/mesh": "ns-mesh"}, "demo"),
    ],
)
def test_mesh_for(
    pod_annotations: dict[str, str] | None, ns_annotations: dict[str, str] | None, mesh: str
) -> None:
    pod = {"metadata": {"annotations": pod_annotations}}
    namespace = {"metadata": {"annotations": ns_annotations}}
    assert convert.mesh_for(pod, namespace) == mesh


def test_only_injected_pods_have_a_sidecar() -> None:
    assert convert.has_sidecar({"metadata": {"annotations": {"kuma.io/sidecar-injected": "true"}}})
    assert not convert.has_sidecar(
        {"metadata": {"annotations": {"kuma.io/sidecar-injected": "false"}}}
    )
    assert not convert.has_sidecar({"metadata": {}})
