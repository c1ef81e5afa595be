"""/inject-sidecar: AdmissionReviews of Pods in, JSON patches out (Kuma's injector cases)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.k8s.webhook_support import (
    TESTDATA,
    apply_patch,
    check_golden,
    decoded_patch,
    make_app,
    post,
)

pytestmark = pytest.mark.anyio

ENABLED = {"annotations": {"kuma.io/sidecar-injection": "enabled"}}
MESH = {"metadata": {"name": "default", "uid": "9a1e5c1e-0000-4000-8000-000000000001"}}
MESH_MAP = {"default": MESH}


def load_review(num: str) -> dict[str, Any]:
    data = json.loads((TESTDATA / f"inject.{num}.review.json").read_text())
    assert isinstance(data, dict)
    return data


# (case, namespace metadata, meshes, config file)
INJECTED = [
    ("01", ENABLED, ["default"], "inject.config.yaml"),  # no init containers, no annotations
    ("02", ENABLED, ["default"], "inject.config.yaml"),  # init containers and annotations
    ("03", ENABLED, ["default"], "inject.config.yaml"),  # no name (generateName), no namespace
    ("04", ENABLED, ["demo"], "inject.config.yaml"),  # kuma.io/mesh on the pod
    ("05", ENABLED, ["default"], "inject.config.yaml"),  # no ServiceAccount token mount
    ("06", ENABLED, ["default"], "inject.config.yaml"),  # kuma.io/gateway: enabled
    ("07", ENABLED, ["default"], "inject.config.yaml"),
    ("08", ENABLED, ["default"], "inject.config.yaml"),  # prometheus.io annotations kept
    ("09", ENABLED, ["default"], "inject.config.yaml"),  # Kuma metrics annotations kept
    (
        "11",  # namespace disabled, pod enabled
        {"annotations": {"kuma.io/sidecar-injection": "disabled"}},
        ["default"],
        "inject.config.yaml",
    ),
    (
        "12",  # mesh from the namespace
        {
            "annotations": {
                "kuma.io/sidecar-injection": "enabled",
                "kuma.io/mesh": "mesh-name-from-ns",
            }
        },
        ["mesh-name-from-ns"],
        "inject.config.yaml",
    ),
    (
        "13",  # the pod's mesh beats the namespace's
        {
            "annotations": {
                "kuma.io/sidecar-injection": "enabled",
                "kuma.io/mesh": "mesh-name-from-ns",
            }
        },
        ["mesh-name-from-pod"],
        "inject.config.yaml",
    ),
    ("17", ENABLED, ["default"], "inject.config.yaml"),  # excluded ports from annotations
    ("18", ENABLED, ["default"], "inject.config-ports.yaml"),  # excluded ports from config
    ("19", ENABLED, ["default"], "inject.config-ports.yaml"),  # annotations beat config
]


@pytest.mark.parametrize(("num", "ns", "meshes", "config"), INJECTED, ids=[c[0] for c in INJECTED])
async def test_injects_kuma_into_the_pod(
    num: str, ns: dict[str, Any], meshes: list[str], config: str
) -> None:
    app = make_app(config, namespaces={"default": ns}, meshes={m: {} for m in meshes})
    body = load_review(num)
    response = await post(app, "/inject-sidecar", body)
    assert response["allowed"] is True
    pod = apply_patch(body["request"]["object"], decoded_patch(response))
    check_golden(f"inject.{num}.golden.yaml", pod)


async def test_cni_leaves_redirection_to_the_plugin() -> None:
    app = make_app(
        "inject.config-cni.yaml", namespaces={"default": ENABLED}, meshes={"default": {}}
    )
    body = load_review("01")
    response = await post(app, "/inject-sidecar", body)
    pod = apply_patch(body["request"]["object"], decoded_patch(response))
    assert "initContainers" not in pod["spec"]
    assert pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] == "kuma-cni"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["busybox", "kuma-sidecar"]


LEFT_ALONE = [
    ("10", ENABLED, "pod annotated disabled"),
    ("20", ENABLED, "label in exceptions.labels"),
    ("01", {"annotations": {}}, "namespace not annotated"),
    ("01", {"annotations": {"kuma.io/sidecar-injection": "disabled"}}, "namespace disabled"),
]


@pytest.mark.parametrize(("num", "ns", "why"), LEFT_ALONE, ids=[c[2] for c in LEFT_ALONE])
async def test_pods_left_alone_get_no_patch(num: str, ns: dict[str, Any], why: str) -> None:
    app = make_app(namespaces={"default": ns}, meshes={"default": {}})
    response = await post(app, "/inject-sidecar", load_review(num))
    assert response["allowed"] is True
    assert "patch" not in response
    assert "patchType" not in response


async def test_an_injected_pod_is_not_injected_twice() -> None:
    app = make_app(namespaces={"default": ENABLED}, meshes={"default": {}})
    body = load_review("01")
    first = await post(app, "/inject-sidecar", body)
    injected = apply_patch(body["request"]["object"], decoded_patch(first))
    body["request"]["object"] = injected
    again = await post(app, "/inject-sidecar", body)
    assert again["allowed"] is True
    assert "patch" not in again


async def test_the_namespace_of_the_request_is_the_one_consulted() -> None:
    body = load_review("01")
    body["request"]["namespace"] = "kuma-demo"
    app = make_app(
        namespaces={"default": {"annotations": {}}, "kuma-demo": ENABLED},
        meshes={"default": {}},
    )
    response = await post(app, "/inject-sidecar", body)
    pod = apply_patch(body["request"]["object"], decoded_patch(response))
    assert pod["metadata"]["annotations"]["kuma.io/sidecar-injected"] == "true"


@pytest.mark.parametrize("where", ["pod", "namespace"])
async def test_a_wrong_injection_annotation_is_refused(where: str) -> None:
    body = load_review("01")
    ns: dict[str, Any] = {"annotations": {}}
    if where == "pod":
        body["request"]["object"]["metadata"]["annotations"] = {"kuma.io/sidecar-injection": "yes"}
    else:
        ns = {"annotations": {"kuma.io/sidecar-injection": "yes"}}
    app = make_app(namespaces={"default": ns}, meshes={"default": {}})
    response = await post(app, "/inject-sidecar", body)
    assert response["allowed"] is False
    assert response["status"]["code"] == 500
    assert (
        "annotation kuma.io/sidecar-injection has wrong value 'yes'"
        in (response["status"]["message"])
    )


async def test_a_missing_mesh_is_refused() -> None:
    app = make_app(namespaces={"default": ENABLED}, meshes={"default": {}})
    response = await post(app, "/inject-sidecar", load_review("04"))  # kuma.io/mesh: demo
    assert response["allowed"] is False
    assert response["status"]["message"] == (
        'could not retrieve mesh for pod: meshes.kuma.io "demo" not found'
    )


async def test_a_missing_namespace_is_refused() -> None:
    app = make_app(namespaces={}, meshes={"default": {}})
    response = await post(app, "/inject-sidecar", load_review("01"))
    assert response["allowed"] is False
    assert 'namespaces "default" not found' in response["status"]["message"]


async def test_sidecar_is_told_where_the_control_plane_is() -> None:
    app = make_app("inject.config-cni.yaml", namespaces={"default": ENABLED}, meshes=MESH_MAP)
    body = load_review("01")
    response = await post(app, "/inject-sidecar", body)
    pod = apply_patch(body["request"]["object"], decoded_patch(response))
    sidecar = pod["spec"]["containers"][-1]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["KUMA_CONTROL_PLANE_API_SERVER_URL"] == "http://kuma-control-plane.kuma-system:5681"
    assert env["KUMA_DATAPLANE_DRAIN_TIME"] == "31s"
    assert sidecar["securityContext"] == {"runAsUser": 5678, "runAsGroup": 5678}


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        {"apiVersion": "v1", "kind": "Pod"},
        {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
    ],
)
async def test_a_body_that_is_not_an_admission_review_is_refused(body: Any) -> None:
    import httpx

    app = make_app(namespaces={"default": ENABLED}, meshes=MESH_MAP)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://webhook"
    ) as client:
        if isinstance(body, str):
            r = await client.post("/inject-sidecar", content=body)
        else:
            r = await client.post("/inject-sidecar", json=body)
    answer = r.json()["response"]
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 400
    assert "invalid AdmissionReview" in answer["status"]["message"]
