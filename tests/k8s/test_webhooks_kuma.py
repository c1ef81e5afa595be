"""Webhooks for Kuma's own kinds: validation, Mesh defaults, owner references; and Services,
Secrets."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.k8s.webhook_support import apply_patch, decoded_patch, make_app, post, review

pytestmark = pytest.mark.anyio

MESH_UID = "5d6c9f0e-1111-4a2b-9c3d-000000000042"
APP = make_app(
    namespaces={"default": {}},
    meshes={"default": {"metadata": {"name": "default", "uid": MESH_UID}}},
)


def route(spec: dict[str, Any], *, mesh: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "TrafficRoute",
        "mesh": mesh,
        "metadata": {"name": "route-1", "namespace": "kuma-demo"},
        "spec": spec,
    }


GOOD_ROUTE = {
    "sources": [{"match": {"kuma.io/service": "*"}}],
    "destinations": [{"match": {"kuma.io/service": "backend"}}],
    "conf": [{"weight": 100, "destination": {"kuma.io/service": "backend"}}],
}


# -- /validate-kuma-io-v1alpha1 -----------------------------------------------------------------


async def test_a_valid_traffic_route_is_admitted() -> None:
    body = review("TrafficRoute", route(GOOD_ROUTE), namespace="kuma-demo")
    response = await post(APP, "/validate-kuma-io-v1alpha1", body)
    assert response["allowed"] is True


async def test_a_traffic_route_without_destinations_is_rejected_with_kumas_message() -> None:
    spec = {k: v for k, v in GOOD_ROUTE.items() if k != "destinations"}
    body = review("TrafficRoute", route(spec), namespace="kuma-demo")
    response = await post(APP, "/validate-kuma-io-v1alpha1", body)
    assert response["allowed"] is False
    status = response["status"]
    assert status["code"] == 422
    assert status["reason"] == "Invalid"
    assert status["status"] == "Failure"
    assert status["message"] == "spec.destinations: must have at least one element"
    assert status["details"] == {
        "name": "route-1",
        "kind": "TrafficRoute",
        "causes": [
            {
                "type": "FieldValueInvalid",
                "message": "must have at least one element",
                "field": "spec.destinations",
            }
        ],
    }


async def test_every_violation_becomes_a_cause() -> None:
    body = review("TrafficRoute", route({}), namespace="kuma-demo")
    response = await post(APP, "/validate-kuma-io-v1alpha1", body)
    fields = [c["field"] for c in response["status"]["details"]["causes"]]
    assert fields == ["spec.sources", "spec.destinations", "spec.conf"]


async def test_a_spec_of_the_wrong_shape_is_rejected_with_its_path() -> None:
    body = review("TrafficRoute", route({**GOOD_ROUTE, "sources": "all"}), namespace="kuma-demo")
    response = await post(APP, "/validate-kuma-io-v1alpha1", body)
    assert response["allowed"] is False
    assert response["status"]["details"]["causes"] == [
        {
            "type": "FieldValueInvalid",
            "message": "must be a list, got a string",
            "field": "spec.sources",
        }
    ]


async def test_an_invalid_dataplane_is_rejected() -> None:
    dataplane = {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "Dataplane",
        "mesh": "default",
        "metadata": {"name": "web-1", "namespace": "kuma-demo"},
        "spec": {"networking": {"address": "10.0.0.1", "inbound": [{"port": 0, "tags": {}}]}},
    }
    response = await post(
        APP, "/validate-kuma-io-v1alpha1", review("Dataplane", dataplane, namespace="kuma-demo")
    )
    assert response["allowed"] is False
    fields = {c["field"] for c in response["status"]["details"]["causes"]}
    assert "spec.networking.inbound[0].port" in fields


async def test_deletes_and_the_default_mesh_are_always_admitted() -> None:
    bad = route({})
    deleted = await post(
        APP, "/validate-kuma-io-v1alpha1", review("TrafficRoute", bad, operation="DELETE")
    )
    assert deleted["allowed"] is True
    default_mesh = {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "Mesh",
        "metadata": {"name": "default"},
    }
    assert (await post(APP, "/validate-kuma-io-v1alpha1", review("Mesh", default_mesh)))["allowed"]


async def test_an_invalid_mesh_is_rejected() -> None:
    mesh = {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "Mesh",
        "metadata": {"name": "demo"},
        "spec": {"mtls": {"enabledBackend": "ca-1", "backends": []}},
    }
    response = await post(APP, "/validate-kuma-io-v1alpha1", review("Mesh", mesh))
    assert response["allowed"] is False
    assert response["status"]["details"]["kind"] == "Mesh"
    assert response["status"]["details"]["causes"][0]["field"].startswith("spec.mtls")


async def test_an_unknown_kind_is_an_error() -> None:
    obj = {"apiVersion": "kuma.io/v1alpha1", "kind": "Gizmo", "metadata": {"name": "x"}}
    response = await post(APP, "/validate-kuma-io-v1alpha1", review("Gizmo", obj))
    assert response["allowed"] is False
    assert response["status"]["code"] == 400


# -- /default-kuma-io-v1alpha1-mesh -------------------------------------------------------------


async def test_mesh_defaults_fill_the_prometheus_backend() -> None:
    mesh = {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "Mesh",
        "metadata": {"name": "demo"},
        "spec": {
            "metrics": {
                "enabledBackend": "prom-1",
                "backends": [{"name": "prom-1", "type": "prometheus"}],
            }
        },
    }
    response = await post(APP, "/default-kuma-io-v1alpha1-mesh", review("Mesh", mesh))
    assert response["allowed"] is True
    defaulted = apply_patch(mesh, decoded_patch(response))
    assert defaulted["spec"]["metrics"]["backends"][0]["conf"] == {
        "port": 5670,
        "path": "/metrics",
        "tags": {"kuma.io/service": "dataplane-metrics"},
    }
    assert defaulted["metadata"] == mesh["metadata"]


async def test_a_mesh_needing_no_defaults_gets_no_patch() -> None:
    mesh = {"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "metadata": {"name": "demo"}}
    response = await post(APP, "/default-kuma-io-v1alpha1-mesh", review("Mesh", mesh))
    assert response["allowed"] is True
    assert "patch" not in response


# -- /owner-reference-kuma-io-v1alpha1 ----------------------------------------------------------


async def test_policies_get_their_mesh_as_owner() -> None:
    obj = route(GOOD_ROUTE)
    obj["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "keep-me", "uid": "1"}
    ]
    response = await post(
        APP, "/owner-reference-kuma-io-v1alpha1", review("TrafficRoute", obj, namespace="kuma-demo")
    )
    assert response["allowed"] is True
    owned = apply_patch(obj, decoded_patch(response))
    assert owned["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "keep-me", "uid": "1"},
        {"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh", "name": "default", "uid": MESH_UID},
    ]
    assert owned["spec"] == obj["spec"]


async def test_owner_of_an_unknown_mesh_is_an_error() -> None:
    response = await post(
        APP,
        "/owner-reference-kuma-io-v1alpha1",
        review("TrafficRoute", route(GOOD_ROUTE, mesh="nope"), namespace="kuma-demo"),
    )
    assert response["allowed"] is False
    assert response["status"]["message"] == 'meshes.kuma.io "nope" not found'


# -- /validate-v1-service and /validate-v1-secret -----------------------------------------------


async def test_service_protocol_annotations_must_be_known() -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "kuma-demo",
            "annotations": {"80.service.kuma.io/protocol": "carrier-pigeon"},
        },
        "spec": {"ports": [{"port": 80}, {"port": 81}]},
    }
    body = review("Service", svc, group="", version="v1", namespace="kuma-demo")
    response = await post(APP, "/validate-v1-service", body)
    assert response["allowed"] is False
    assert response["status"]["details"]["causes"] == [
        {
            "type": "FieldValueInvalid",
            "field": 'metadata.annotations["80.service.kuma.io/protocol"]',
            "message": 'value "carrier-pigeon" is not valid. Allowed values: grpc, http, http2, tcp',
        }
    ]
    svc["metadata"]["annotations"]["80.service.kuma.io/protocol"] = "http"
    assert (await post(APP, "/validate-v1-service", body))["allowed"] is True


async def test_kuma_secrets_need_an_existing_mesh_and_a_value() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "system.kuma.io/secret",
        "metadata": {"name": "s1", "namespace": "kuma-system", "labels": {"kuma.io/mesh": "nope"}},
        "data": {},
    }
    body = review("Secret", secret, group="", version="v1", namespace="kuma-system")
    response = await post(APP, "/validate-v1-secret", body)
    assert response["allowed"] is False
    assert [(c["field"], c["message"]) for c in response["status"]["details"]["causes"]] == [
        ('metadata.labels["kuma.io/mesh"]', "mesh does not exist"),
        ("data.value", "cannot be empty."),
    ]
    secret["metadata"]["labels"] = {}
    secret["data"] = {"value": base64.b64encode(b"s3cr3t").decode()}
    assert (await post(APP, "/validate-v1-secret", body))["allowed"] is True
    other = {**secret, "type": "Opaque", "data": {}}
    assert (
        await post(APP, "/validate-v1-secret", review("Secret", other, group="", version="v1"))
    )["allowed"]


# -- Mesh rules that need kuma-cp's state (ManagerMeshChecks over a real ResourceManager) -------


def _manager_app() -> tuple[Any, Any]:
    from kuma.config import KumaCpConfig
    from kuma.k8s.webhooks import (
        DictLookup,
        ManagerMeshChecks,
        build_webhook_app,
        injector_from_config,
    )
    from kuma.manager import ResourceManager
    from kuma.manager.ca import enable_mesh_ca
    from kuma.store.memory import MemoryStore

    manager = ResourceManager(MemoryStore())
    enable_mesh_ca(manager)
    lookup = DictLookup()
    app = build_webhook_app(
        injector_from_config(KumaCpConfig(), lookup),
        lookup,
        mesh_checks=ManagerMeshChecks(manager),
    )
    return app, manager


def _mesh(name: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "kuma.io/v1alpha1", "kind": "Mesh"}
    obj["metadata"] = {"name": name}
    if spec is not None:
        obj["spec"] = spec
    return obj


async def test_a_mesh_with_dataplanes_cannot_be_deleted() -> None:
    from kuma.model import codec, registry
    from kuma.model.resource import Resource, ResourceMeta

    app, manager = _manager_app()
    await manager.create(Resource(registry.MESH, ResourceMeta("demo")))
    mesh_review = review("Mesh", None, operation="DELETE", old=_mesh("demo"))
    mesh_review["request"]["name"] = "demo"
    assert (await post(app, "/validate-kuma-io-v1alpha1", mesh_review))["allowed"] is True
    dataplane = codec.decode(
        registry.DATAPLANE.spec_cls,
        {
            "networking": {
                "address": "10.0.0.1",
                "inbound": [{"port": 8080, "tags": {"kuma.io/service": "web"}}],
            }
        },
    )
    await manager.create(Resource(registry.DATAPLANE, ResourceMeta("web-1", "demo"), dataplane))
    response = await post(app, "/validate-kuma-io-v1alpha1", mesh_review)
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert response["status"]["message"] == (
        "unable to delete mesh, there are still some dataplanes attached"
    )


async def test_switching_the_enabled_ca_of_a_mesh_is_refused() -> None:
    app, _ = _manager_app()
    builtin = {"name": "ca-1", "type": "builtin"}
    other = {"name": "ca-2", "type": "builtin"}
    old = _mesh("demo", {"mtls": {"enabledBackend": "ca-1", "backends": [builtin, other]}})
    new = _mesh("demo", {"mtls": {"enabledBackend": "ca-2", "backends": [builtin, other]}})
    created = await post(app, "/validate-kuma-io-v1alpha1", review("Mesh", old))
    assert created["allowed"] is True
    response = await post(
        app, "/validate-kuma-io-v1alpha1", review("Mesh", new, operation="UPDATE", old=old)
    )
    assert response["allowed"] is False
    assert response["status"]["details"]["causes"][0]["field"] == "spec.mtls.enabledBackend"


async def test_zones_belong_to_a_global_control_plane() -> None:
    zone = {"apiVersion": "kuma.io/v1alpha1", "kind": "Zone", "metadata": {"name": "zone-1"}}
    zone["spec"] = {"ingress": {"address": "10.0.0.1:10001"}}
    response = await post(APP, "/validate-kuma-io-v1alpha1", review("Zone", zone))
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    assert response["status"]["message"] == (
        "Zone resource can only be applied on CP with mode: [global]"
    )
