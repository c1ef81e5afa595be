"""The fake Kubernetes API server's semantics (what the Kubernetes store and controllers rely on)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.fake_kube import (
    FakeKube,
    LabelSelector,
    fake_kube,
    json_patch,
    merge_patch,
    serve_app,
)

MESHES = "/apis/kuma.io/v1alpha1/meshes"
TRS = "/apis/kuma.io/v1alpha1/namespaces/default/trafficroutes"
PODS = "/api/v1/namespaces/default/pods"


@pytest.fixture(scope="module")
def kube() -> Iterator[FakeKube]:
    with fake_kube() as k:
        yield k


@pytest.fixture
def http(kube: FakeKube) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=kube.url, timeout=5) as c:
        yield c


def mesh(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "Mesh",
        "metadata": {"name": name},
        "spec": spec,
    }


def tr(name: str, **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kuma.io/v1alpha1",
        "kind": "TrafficRoute",
        "mesh": "default",
        "metadata": {"name": name, **meta},
        "spec": {"conf": {"split": [{"weight": 100, "destination": {"kuma.io/service": "*"}}]}},
    }


def watch_lines(kube: FakeKube, path: str, n: int, **params: str) -> list[dict[str, Any]]:
    """The first `n` events of a watch on `path`."""
    out: list[dict[str, Any]] = []
    with (
        httpx.Client(base_url=kube.url, timeout=5) as c,
        c.stream("GET", path, params={"watch": "true", **params}) as resp,
    ):
        assert resp.status_code == 200
        for line in resp.iter_lines():
            out.append(json.loads(line))
            if len(out) == n:
                break
    return out


def test_create_get_metadata_and_already_exists(http: httpx.Client) -> None:
    r = http.post(MESHES, json=mesh("create-1", mtls={"enabledBackend": "ca"}))
    assert r.status_code == 201
    meta = r.json()["metadata"]
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > 0
    assert http.get(f"{MESHES}/create-1").json() == r.json()

    again = http.post(MESHES, json=mesh("create-1"))
    assert again.status_code == 409
    assert again.json() | {"details": None} == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'meshes.kuma.io "create-1" already exists',
        "reason": "AlreadyExists",
        "code": 409,
        "details": None,
    }
    missing = http.get(f"{MESHES}/nope")
    assert (missing.status_code, missing.json()["reason"]) == (404, "NotFound")
    assert missing.json()["message"] == 'meshes.kuma.io "nope" not found'


def test_names_namespaces_and_paths_are_checked(http: httpx.Client) -> None:
    bad = http.post(MESHES, json=mesh("Not_DNS"))
    assert bad.status_code == 422
    assert bad.json()["reason"] == "Invalid"
    assert bad.json()["details"]["causes"][0]["field"] == "metadata.name"
    nons = http.post("/apis/kuma.io/v1alpha1/namespaces/ghost/trafficroutes", json=tr("x"))
    assert nons.status_code == 404
    assert nons.json()["message"] == 'namespaces "ghost" not found'
    assert http.get("/apis/kuma.io/v1alpha1/namespaces/default/meshes").status_code == 404
    assert http.get("/apis/kuma.io/v1alpha1/nothings").status_code == 404
    wrong_kind = http.post(MESHES, json={**mesh("k"), "kind": "TrafficRoute"})
    assert wrong_kind.status_code == 400
    with_rv = mesh("k")
    with_rv["metadata"]["resourceVersion"] = "5"
    assert http.post(MESHES, json=with_rv).status_code == 400
    gen = http.post(PODS, json={"kind": "Pod", "metadata": {"generateName": "web-"}})
    assert gen.status_code == 201
    assert gen.json()["metadata"]["name"].startswith("web-")


def test_resource_version_is_cluster_wide_and_increasing(http: httpx.Client) -> None:
    a = int(http.post(MESHES, json=mesh("rv-a")).json()["metadata"]["resourceVersion"])
    b = int(http.post(TRS, json=tr("rv-b")).json()["metadata"]["resourceVersion"])
    c = int(
        http.post(PODS, json={"kind": "Pod", "metadata": {"name": "rv-c"}}).json()["metadata"][
            "resourceVersion"
        ]
    )
    assert a < b < c
    listed = http.get(MESHES).json()
    assert int(listed["metadata"]["resourceVersion"]) >= c


def test_update_optimistic_concurrency(http: httpx.Client) -> None:
    created = http.post(MESHES, json=mesh("upd")).json()
    changed = {**created, "spec": {"logging": {"defaultBackend": "file"}}}
    r = http.put(f"{MESHES}/upd", json=changed)
    assert r.status_code == 200
    assert r.json()["metadata"]["generation"] == 2
    assert r.json()["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(r.json()["metadata"]["resourceVersion"]) > int(
        created["metadata"]["resourceVersion"]
    )
    stale = http.put(f"{MESHES}/upd", json={**created, "spec": {}})
    assert stale.status_code == 409
    assert stale.json()["reason"] == "Conflict"
    assert "the object has been modified" in stale.json()["message"]
    # custom resources need a resourceVersion on update
    unconditional = {**changed, "metadata": {"name": "upd"}}
    assert http.put(f"{MESHES}/upd", json=unconditional).status_code == 422
    # an update that changes nothing keeps the version
    same = http.put(f"{MESHES}/upd", json=r.json())
    assert same.json()["metadata"]["resourceVersion"] == r.json()["metadata"]["resourceVersion"]
    assert http.put(f"{MESHES}/ghost", json=mesh("ghost")).status_code == 404


def test_patches(http: httpx.Client) -> None:
    http.post(MESHES, json=mesh("patched", logging={"defaultBackend": "a"}))
    merge = http.patch(
        f"{MESHES}/patched",
        content=json.dumps({"metadata": {"labels": {"x": "1"}}, "spec": {"logging": None}}),
        headers={"content-type": "application/merge-patch+json"},
    )
    assert merge.status_code == 200
    assert merge.json()["metadata"]["labels"] == {"x": "1"}
    assert merge.json()["spec"] == {}
    jp = http.patch(
        f"{MESHES}/patched",
        content=json.dumps([{"op": "add", "path": "/metadata/labels/y", "value": "2"}]),
        headers={"content-type": "application/json-patch+json"},
    )
    assert jp.json()["metadata"]["labels"] == {"x": "1", "y": "2"}
    failing = http.patch(
        f"{MESHES}/patched",
        content=json.dumps([{"op": "test", "path": "/metadata/labels/y", "value": "3"}]),
        headers={"content-type": "application/json-patch+json"},
    )
    assert failing.status_code == 422
    stale = http.patch(
        f"{MESHES}/patched",
        content=json.dumps({"metadata": {"resourceVersion": "1"}}),
        headers={"content-type": "application/merge-patch+json"},
    )
    assert stale.status_code == 409
    smp = http.patch(
        f"{MESHES}/patched",
        content="{}",
        headers={"content-type": "application/strategic-merge-patch+json"},
    )
    assert smp.status_code == 415


def test_merge_and_json_patch_rfc_examples() -> None:
    assert merge_patch({"a": "b", "c": {"d": "e", "f": "g"}}, {"a": "z", "c": {"f": None}}) == {
        "a": "z",
        "c": {"d": "e"},
    }
    assert merge_patch({"a": [1]}, {"a": [2, 3]}) == {"a": [2, 3]}
    doc = {"foo": ["bar", "baz"], "a/b": 1}
    assert json_patch(doc, [{"op": "add", "path": "/foo/1", "value": "qux"}]) == {
        "foo": ["bar", "qux", "baz"],
        "a/b": 1,
    }
    assert json_patch(doc, [{"op": "remove", "path": "/a~1b"}]) == {"foo": ["bar", "baz"]}
    assert json_patch(doc, [{"op": "move", "from": "/foo/0", "path": "/foo/-"}])["foo"] == [
        "baz",
        "bar",
    ]
    with pytest.raises(ValueError):
        json_patch(doc, [{"op": "replace", "path": "/missing", "value": 1}])
    assert doc == {"foo": ["bar", "baz"], "a/b": 1}  # never mutated


def test_label_selectors() -> None:
    obj = {"metadata": {"labels": {"app": "web", "tier": "front"}}}
    assert LabelSelector("app=web").matches(obj)
    assert LabelSelector("app==web,tier=front").matches(obj)
    assert not LabelSelector("app=web,tier=back").matches(obj)
    assert LabelSelector("app!=db").matches(obj)
    assert LabelSelector("app in (db, web)").matches(obj)
    assert not LabelSelector("app notin (db,web)").matches(obj)
    assert LabelSelector("tier,!missing").matches(obj)
    assert not LabelSelector("missing").matches(obj)


def test_list_selectors_and_paging(http: httpx.Client) -> None:
    for i in range(5):
        body = {
            "kind": "Pod",
            "metadata": {"name": f"page-{i}", "labels": {"page": "yes", "n": str(i % 2)}},
        }
        http.post(PODS, json=body)
    r = http.get(PODS, params={"labelSelector": "page=yes,n=0"}).json()
    assert [p["metadata"]["name"] for p in r["items"]] == ["page-0", "page-2", "page-4"]
    assert r["kind"] == "PodList"
    assert "kind" not in r["items"][0]
    names, cont = [], None
    while True:
        params = {"labelSelector": "page=yes", "limit": "2"}
        if cont:
            params["continue"] = cont
        page = http.get(PODS, params=params).json()
        names.append([p["metadata"]["name"] for p in page["items"]])
        cont = page["metadata"].get("continue")
        if not cont:
            break
    assert names == [["page-0", "page-1"], ["page-2", "page-3"], ["page-4"]]
    by_field = http.get("/api/v1/pods", params={"fieldSelector": "metadata.name=page-3"}).json()
    assert [p["metadata"]["name"] for p in by_field["items"]] == ["page-3"]
    assert http.get(PODS, params={"labelSelector": "a in b"}).status_code == 400
    assert http.get(PODS, params={"continue": "garbage"}).status_code == 400


def test_watch_initial_state_then_changes(kube: FakeKube, http: httpx.Client) -> None:
    ns = "watch-ns"
    http.post("/api/v1/namespaces", json={"kind": "Namespace", "metadata": {"name": ns}})
    path = f"/apis/kuma.io/v1alpha1/namespaces/{ns}/trafficroutes"
    http.post(path, json=tr("w-1"))

    def writer() -> None:
        time.sleep(0.2)
        with httpx.Client(base_url=kube.url) as c:
            cur = c.post(path, json=tr("w-2")).json()
            cur["spec"] = {"conf": {}}
            c.put(f"{path}/w-2", json=cur)
            c.delete(f"{path}/w-2")

    t = threading.Thread(target=writer)
    t.start()
    events = watch_lines(kube, path, 4)
    t.join()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "w-1"),
        ("ADDED", "w-2"),
        ("MODIFIED", "w-2"),
        ("DELETED", "w-2"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)
    assert len(set(rvs)) == 4


def test_watch_resumes_from_resource_version_and_410_when_too_old(
    kube: FakeKube, http: httpx.Client
) -> None:
    first = http.post(MESHES, json=mesh("resume-1")).json()
    http.post(MESHES, json=mesh("resume-2"))
    http.delete(f"{MESHES}/resume-1")
    since = first["metadata"]["resourceVersion"]
    events = watch_lines(kube, MESHES, 2, resourceVersion=since)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "resume-2"),
        ("DELETED", "resume-1"),
    ]
    kube.compact()
    (gone,) = watch_lines(kube, MESHES, 1, resourceVersion=since)
    assert gone["type"] == "ERROR"
    assert (gone["object"]["code"], gone["object"]["reason"]) == (410, "Expired")
    # resuming from the current version after compaction is fine (no replay, no error)
    current = http.get(MESHES).json()["metadata"]["resourceVersion"]
    with httpx.Client(base_url=kube.url, timeout=5) as c:
        r = c.get(
            MESHES, params={"watch": "true", "resourceVersion": current, "timeoutSeconds": "0.3"}
        )
    assert r.status_code == 200
    assert r.text == ""


def test_watch_label_selector_transitions(kube: FakeKube, http: httpx.Client) -> None:
    obj = http.post(
        PODS, json={"kind": "Pod", "metadata": {"name": "sel", "labels": {"a": "1"}}}
    ).json()
    since = obj["metadata"]["resourceVersion"]
    patch_hdr = {"content-type": "application/merge-patch+json"}
    http.patch(f"{PODS}/sel", content='{"metadata":{"labels":{"a":"2"}}}', headers=patch_hdr)
    http.patch(f"{PODS}/sel", content='{"metadata":{"labels":{"a":"1"}}}', headers=patch_hdr)
    events = watch_lines(kube, PODS, 2, resourceVersion=since, labelSelector="a=1")
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


def test_watch_bookmarks_and_drop(kube: FakeKube) -> None:
    (bookmark,) = watch_lines(
        kube, MESHES, 1, allowWatchBookmarks="true", resourceVersion=str(kube.resource_version)
    )
    assert bookmark["type"] == "BOOKMARK"
    assert int(bookmark["object"]["metadata"]["resourceVersion"]) >= 1

    connected, ended = threading.Event(), threading.Event()

    def watch() -> None:
        with (
            httpx.Client(base_url=kube.url, timeout=10) as c,
            c.stream(
                "GET",
                MESHES,
                params={"watch": "true", "resourceVersion": str(kube.resource_version)},
            ) as r,
        ):
            connected.set()  # the response has started: a drop from now on ends it
            for _ in r.iter_lines():
                pass
        ended.set()

    t = threading.Thread(target=watch)
    t.start()
    assert connected.wait(5)
    kube.drop_watches()
    assert ended.wait(5)
    t.join()
    # streams whose client went away (the earlier tests broke out of theirs) are closed too
    deadline = time.monotonic() + 5
    while kube.open_watches and time.monotonic() < deadline:
        time.sleep(0.02)
    assert kube.open_watches == 0


def test_delete_garbage_collects_owned_objects(http: httpx.Client, kube: FakeKube) -> None:
    owner = http.post(MESHES, json=mesh("gc-owner")).json()
    other = http.post(MESHES, json=mesh("gc-other")).json()

    def ref(o: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "kuma.io/v1alpha1",
            "kind": "Mesh",
            "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"],
        }

    http.post(TRS, json=tr("gc-only", ownerReferences=[ref(owner)]))
    http.post(TRS, json=tr("gc-both", ownerReferences=[ref(owner), ref(other)]))
    http.post(TRS, json=tr("gc-none"))
    r = http.request("DELETE", f"{MESHES}/gc-owner", json={"propagationPolicy": "Background"})
    assert r.status_code == 200
    names = {o["metadata"]["name"]: o for o in kube.objects("trafficroutes", "default")}
    assert "gc-only" not in names
    assert "gc-none" in names
    assert names["gc-both"]["metadata"]["ownerReferences"] == [ref(other)]

    # Orphan keeps dependents and drops the reference
    http.post(TRS, json=tr("gc-orphan", ownerReferences=[ref(other)]))
    http.delete(f"{MESHES}/gc-other", params={"propagationPolicy": "Orphan"})
    orphan = kube.get("trafficroutes", "gc-orphan", "default")
    assert orphan is not None
    assert "ownerReferences" not in orphan["metadata"]
    assert kube.get("trafficroutes", "gc-both", "default") is not None


def test_delete_preconditions_finalizers_and_namespaces(http: httpx.Client, kube: FakeKube) -> None:
    m = http.post(MESHES, json=mesh("pre")).json()
    r = http.request("DELETE", f"{MESHES}/pre", json={"preconditions": {"uid": "other"}})
    assert r.status_code == 409
    assert (
        http.request(
            "DELETE", f"{MESHES}/pre", json={"preconditions": {"uid": m["metadata"]["uid"]}}
        ).status_code
        == 200
    )
    assert http.delete(f"{MESHES}/pre").status_code == 404

    fin = mesh("fin")
    fin["metadata"]["finalizers"] = ["kuma.io/test"]
    http.post(MESHES, json=fin)
    held = http.delete(f"{MESHES}/fin").json()
    assert held["metadata"]["deletionTimestamp"]
    assert kube.get("meshes", "fin") is not None
    held["metadata"]["finalizers"] = []
    assert http.put(f"{MESHES}/fin", json=held).status_code == 200
    assert kube.get("meshes", "fin") is None

    http.post("/api/v1/namespaces", json={"kind": "Namespace", "metadata": {"name": "doomed"}})
    http.post(
        "/api/v1/namespaces/doomed/secrets",
        json={"kind": "Secret", "metadata": {"name": "s"}, "data": {}},
    )
    http.delete("/api/v1/namespaces/doomed")
    assert kube.objects("secrets", "doomed") == []


def test_patch_helper(kube: FakeKube) -> None:
    kube.create(
        {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "helper", "namespace": "default"}}
    )
    running = kube.patch(
        "pods", "helper", {"status": {"podIP": "10.1.1.1"}}, "default", status=True
    )
    assert running["status"] == {"podIP": "10.1.1.1"}
    labelled = kube.patch(
        "pods", "helper", {"metadata": {"labels": {"a": "b"}}, "status": {"podIP": "x"}}, "default"
    )
    assert labelled["metadata"]["labels"] == {"a": "b"}
    assert labelled["status"] == {"podIP": "10.1.1.1"}  # main resource writes keep the status


def test_status_subresource_on_pods(http: httpx.Client) -> None:
    pod = {"kind": "Pod", "metadata": {"name": "stat"}, "status": {"podIP": "10.0.0.1"}}
    created = http.post(PODS, json=pod).json()
    assert created["status"] == {"podIP": "10.0.0.1"}  # kept on create (documented deviation)
    created["status"] = {"podIP": "10.9.9.9"}
    created["metadata"]["labels"] = {"l": "v"}
    main = http.put(f"{PODS}/stat", json=created).json()
    assert main["status"] == {"podIP": "10.0.0.1"}
    assert main["metadata"]["labels"] == {"l": "v"}
    status = http.put(f"{PODS}/stat/status", json={**main, "status": {"podIP": "10.0.0.2"}}).json()
    assert status["status"] == {"podIP": "10.0.0.2"}


def test_helpers_and_lightkube_client(kube: FakeKube, tmp_path: Any) -> None:
    """lightkube (what the store and controllers use) talks to the fake through a kubeconfig."""
    import anyio
    from lightkube import AsyncClient, KubeConfig
    from lightkube.generic_resource import create_global_resource

    Mesh = create_global_resource("kuma.io", "v1alpha1", "Mesh", "meshes")
    kube.create(mesh("lk-seen"))
    config = KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "kubeconfig"))

    async def main() -> tuple[list[str], str]:
        client = AsyncClient(config)
        try:
            names = [m.metadata.name async for m in client.list(Mesh)]
            created = await client.create(Mesh(metadata={"name": "lk-made"}, spec={}))
            async for typ, obj in client.watch(
                Mesh, resource_version=created.metadata.resourceVersion
            ):
                if obj.metadata.name == "lk-late":
                    return names, typ
            raise AssertionError("unreachable")
        finally:
            await client.close()

    def later() -> None:
        time.sleep(0.3)
        kube.create(mesh("lk-late"))

    t = threading.Thread(target=later)
    t.start()
    names, typ = anyio.run(main)
    t.join()
    assert "lk-seen" in names
    assert typ == "ADDED"
    assert kube.get("meshes", "lk-made") is not None


# -- admission webhooks and apply -------------------------------------------------------------


def webhook_app(
    seen: list[dict[str, Any]], decide: Callable[[dict[str, Any]], dict[str, Any]]
) -> Starlette:
    """An admission webhook server: records each AdmissionReview, answers with `decide`."""

    async def review(request: Request) -> JSONResponse:
        body = await request.json()
        seen.append(body)
        response = {"uid": body["request"]["uid"], **decide(body["request"])}
        return JSONResponse({**body, "response": response})

    return Starlette(routes=[Route("/{path:path}", review, methods=["POST"])])


def webhook_config(kind: str, name: str, url: str, ca_pem: bytes, **extra: Any) -> dict[str, Any]:
    webhook = {
        "name": name,
        "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_pem).decode()},
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        **extra,
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "webhooks": [webhook],
    }


@pytest.fixture(scope="module")
def tls() -> Iterator[tuple[bytes, str, str]]:
    """(CA PEM, cert file, key file) for a webhook server on 127.0.0.1."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    with cert.cert_chain_pems[0].tempfile() as certfile, cert.private_key_pem.tempfile() as keyfile:
        yield ca.cert_pem.bytes(), certfile, keyfile


def test_mutating_webhook_patches_matching_objects_only(
    http: httpx.Client, tls: tuple[bytes, str, str]
) -> None:
    ca_pem, certfile, keyfile = tls
    seen: list[dict[str, Any]] = []

    def inject(request: dict[str, Any]) -> dict[str, Any]:
        patch = [{"op": "add", "path": "/metadata/labels", "value": {"injected": "yes"}}]
        return {
            "allowed": True,
            "patchType": "JSONPatch",
            "patch": base64.b64encode(json.dumps(patch).encode()).decode(),
        }

    http.post(
        "/api/v1/namespaces",
        json={
            "kind": "Namespace",
            "metadata": {"name": "meshed", "labels": {"kuma.io/sidecar-injection": "enabled"}},
        },
    )
    with serve_app(webhook_app(seen, inject), certfile=certfile, keyfile=keyfile) as url:
        config = webhook_config(
            "MutatingWebhookConfiguration",
            "inject.kuma.io",
            f"{url}/inject-sidecar",
            ca_pem,
            rules=[
                {
                    "apiGroups": [""],
                    "apiVersions": ["v1"],
                    "operations": ["CREATE"],
                    "resources": ["pods"],
                }
            ],
            namespaceSelector={"matchLabels": {"kuma.io/sidecar-injection": "enabled"}},
        )
        assert (
            http.post(
                "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", json=config
            ).status_code
            == 201
        )
        try:
            meshed = http.post(
                "/api/v1/namespaces/meshed/pods", json={"kind": "Pod", "metadata": {"name": "web"}}
            )
            plain = http.post(PODS, json={"kind": "Pod", "metadata": {"name": "not-meshed"}})
            svc = http.post(
                "/api/v1/namespaces/meshed/services",
                json={"kind": "Service", "metadata": {"name": "web"}},
            )
        finally:
            http.delete(
                "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/inject.kuma.io"
            )
    assert meshed.status_code == 201
    assert meshed.json()["metadata"]["labels"] == {"injected": "yes"}
    assert "labels" not in plain.json()["metadata"]
    assert "labels" not in svc.json()["metadata"]
    (review,) = seen  # only the Pod in the labelled namespace went to the webhook
    assert review["apiVersion"] == "admission.k8s.io/v1"
    req = review["request"]
    assert (req["operation"], req["namespace"], req["name"]) == ("CREATE", "meshed", "web")
    assert req["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert req["object"]["metadata"]["name"] == "web"
    assert req["oldObject"] is None


def test_validating_webhook_refusals_and_failure_policy(
    http: httpx.Client, kube: FakeKube, tls: tuple[bytes, str, str]
) -> None:
    ca_pem, certfile, keyfile = tls
    seen: list[dict[str, Any]] = []

    def validate(request: dict[str, Any]) -> dict[str, Any]:
        obj = request["object"] or request["oldObject"]
        if obj["spec"].get("conf") == {} or request["operation"] == "DELETE":
            return {"allowed": False, "status": {"code": 403, "message": "spec.conf: must be set"}}
        return {"allowed": True}

    tr_rules = [
        {
            "apiGroups": ["kuma.io"],
            "apiVersions": ["*"],
            "operations": ["*"],
            "resources": ["*"],
            "scope": "Namespaced",
        }
    ]
    with serve_app(webhook_app(seen, validate), certfile=certfile, keyfile=keyfile) as url:
        config = webhook_config(
            "ValidatingWebhookConfiguration",
            "validator.kuma.io",
            f"{url}/validate",
            ca_pem,
            rules=tr_rules,
        )
        http.post(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", json=config
        )
        try:
            ok = http.post(TRS, json=tr("valid"))
            assert ok.status_code == 201
            bad = tr("invalid")
            bad["spec"]["conf"] = {}
            refused = http.post(TRS, json=bad)
            cur = ok.json()
            cur["spec"]["conf"] = {}
            refused_update = http.put(f"{TRS}/valid", json=cur)
            refused_delete = http.delete(f"{TRS}/valid")
            mesh_ok = http.post(MESHES, json=mesh("not-namespaced"))  # scope: Namespaced only
        finally:
            http.delete(
                "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/validator.kuma.io"
            )
    assert refused.status_code == 403
    assert (
        refused.json()["message"]
        == 'admission webhook "validator.kuma.io" denied the request: spec.conf: must be set'
    )
    assert kube.get("trafficroutes", "invalid", "default") is None
    assert refused_update.status_code == 403
    assert refused_delete.status_code == 403
    stored = kube.get("trafficroutes", "valid", "default")
    assert stored is not None
    assert stored["spec"]["conf"] != {}
    assert mesh_ok.status_code == 201
    assert [r["request"]["operation"] for r in seen] == ["CREATE", "CREATE", "UPDATE", "DELETE"]
    assert seen[2]["request"]["oldObject"]["spec"]["conf"] != {}

    # nobody listening: Fail refuses the write, Ignore lets it through
    for policy, expected in (("Fail", 500), ("Ignore", 201)):
        config = webhook_config(
            "ValidatingWebhookConfiguration",
            "gone.kuma.io",
            "https://127.0.0.1:9/validate",
            ca_pem,
            rules=tr_rules,
            failurePolicy=policy,
        )
        http.post(
            "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", json=config
        )
        try:
            r = http.post(TRS, json=tr(f"policy-{policy.lower()}"))
        finally:
            http.delete(
                "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/gone.kuma.io"
            )
        assert r.status_code == expected
        if expected == 500:
            assert r.json()["message"].startswith(
                'Internal error occurred: failed calling webhook "gone.kuma.io"'
            )


def test_server_side_apply_is_approximated(http: httpx.Client) -> None:
    apply_hdr = {"content-type": "application/apply-patch+yaml"}
    doc = "apiVersion: kuma.io/v1alpha1\nkind: Mesh\nmetadata:\n  name: applied\nspec:\n  logging: {defaultBackend: a}\n"
    assert http.patch(f"{MESHES}/applied", content=doc, headers=apply_hdr).status_code == 422
    created = http.patch(
        f"{MESHES}/applied", content=doc, headers=apply_hdr, params={"fieldManager": "t"}
    )
    assert created.status_code == 201
    again = doc.replace("a}", "b}") + "metadata:\n  name: applied\n  labels: {x: y}\n"
    updated = http.patch(
        f"{MESHES}/applied", content=again, headers=apply_hdr, params={"fieldManager": "t"}
    )
    assert updated.status_code == 200
    assert updated.json()["spec"] == {"logging": {"defaultBackend": "b"}}
    assert updated.json()["metadata"]["labels"] == {"x": "y"}


def test_token_reviews_authenticate_issued_tokens_only(kube: FakeKube, http: httpx.Client) -> None:
    path = "/apis/authentication.k8s.io/v1/tokenreviews"

    def review(token: str) -> httpx.Response:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview"}
        return http.post(path, json={**body, "spec": {"token": token}})

    token = kube.issue_service_account_token("shop", "web")
    assert token != kube.issue_service_account_token("shop", "web")  # each issue is a new token
    answer = review(token)
    assert answer.status_code == 201
    assert answer.json()["kind"] == "TokenReview"
    status = answer.json()["status"]
    assert status["authenticated"] is True
    assert status["user"]["username"] == "system:serviceaccount:shop:web"
    assert status["user"]["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:shop",
        "system:authenticated",
    ]
    user = review(kube.issue_token("jane", ("developers",))).json()["status"]["user"]
    assert (user["username"], user["groups"]) == ("jane", ["developers", "system:authenticated"])

    unknown = review(token + "x").json()["status"]
    assert not unknown.get("authenticated")
    assert unknown["user"] == {}
    assert "invalid bearer token" in unknown["error"]
    empty = review("")
    assert empty.status_code == 400
    assert empty.json()["message"] == "token is required for TokenReview in authentication"
    assert http.get(path).status_code == 405
