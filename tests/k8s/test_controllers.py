"""The Pod controller against the in-process fake Kubernetes API server (tests/support/fake_kube).

Objects are created and changed through the fake API like kubectl would; the controller runs with
a real lightkube client over loopback HTTP; the tests watch Dataplane CRs and Events appear.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from lightkube import AsyncClient, KubeConfig

from kuma.k8s.controllers import EventRecorder, PodController
from tests.k8s.workloads import load, pod_for
from tests.support.fake_kube import FakeKube, fake_kube

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

T = TypeVar("T")
WAIT = 10.0


@pytest.fixture
def kube() -> Iterator[FakeKube]:
    with fake_kube() as k:
        yield k


@asynccontextmanager
async def controller(kube: FakeKube, kube_dir: Path, **kwargs: Any) -> AsyncIterator[PodController]:
    config = KubeConfig.from_file(kube.write_kubeconfig(kube_dir / "kubeconfig"))
    client = AsyncClient(config, trust_env=False)
    try:
        async with anyio.create_task_group() as tg:
            ctl = PodController(client, **kwargs)
            await tg.start(ctl.run)
            yield ctl
            tg.cancel_scope.cancel()
    finally:
        await client.close()


async def eventually(check: Callable[[], T | None], what: str, within: float = WAIT) -> T:
    """Poll `check` (without blocking the loop) until it returns something truthy."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        await anyio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what} (last: {last!r})")


def dataplane(kube: FakeKube, namespace: str, name: str) -> dict[str, Any] | None:
    return kube.get("dataplanes", name, namespace)


def events_for(kube: FakeKube, namespace: str, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in kube.objects("events", namespace)
        if e["involvedObject"]["name"] == name and e["involvedObject"]["kind"] == "Pod"
    ]


def seed(kube: FakeKube) -> tuple[dict[str, Any], dict[str, Any]]:
    """The issue's seed manifests: namespace kuma-test, echo-server (+ Service), echo-client."""
    kube.create(load("kuma-test/namespace.yaml", "Namespace", "kuma-test"))
    kube.create(load("kuma-test/echo-server.yaml", "Service", "echo-server"))
    server = kube.create(
        pod_for(load("kuma-test/echo-server.yaml", "Deployment", "echo-server"), ip="10.1.0.2")
    )
    client = kube.create(
        pod_for(load("kuma-test/echo-client.yaml", "Deployment", "echo-client"), ip="10.1.0.3")
    )
    return server, client


def inbound_tags(dp: dict[str, Any]) -> dict[str, str]:
    [inbound] = dp["spec"]["networking"]["inbound"]
    return dict(inbound["tags"])


async def test_seed_pods_get_dataplanes_owned_by_them(kube: FakeKube, tmp_path: Path) -> None:
    async with controller(kube, tmp_path):
        server, client = seed(kube)
        s_name, c_name = server["metadata"]["name"], client["metadata"]["name"]
        # Pods and Services arrive on separate watches: if the Pod is seen first, its Dataplane
        # is service-less for a moment, then follows the Service
        server_dp = await eventually(
            lambda: (
                (dp := dataplane(kube, "kuma-test", s_name))
                and inbound_tags(dp)["kuma.io/service"] == "echo-server_kuma-test_svc_80"
                and dp
            ),
            "echo-server Dataplane",
        )
        client_dp = await eventually(
            lambda: (
                (dp := dataplane(kube, "kuma-test", c_name))
                and "outbound" in dp["spec"]["networking"]
                and dp
            ),
            "echo-client Dataplane with its outbound",
        )
        assert server_dp["mesh"] == "default"
        assert server_dp["spec"]["networking"]["address"] == "10.1.0.2"
        tags = inbound_tags(server_dp)
        assert tags["kuma.io/service"] == "echo-server_kuma-test_svc_80"
        assert tags["kuma.io/protocol"] == "http"
        assert server_dp["spec"]["networking"]["inbound"][0]["port"] == 80
        assert server_dp["spec"]["networking"]["transparentProxying"] == {
            "redirectPortInbound": 15006,
            "redirectPortOutbound": 15001,
        }
        assert server_dp["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": s_name,
                "uid": server["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert inbound_tags(client_dp)["kuma.io/service"] == "echo-client_kuma-test_svc"
        assert client_dp["spec"]["networking"]["outbound"] == [
            {
                "address": "10.96.0.80",
                "port": 80,
                "tags": {"kuma.io/service": "echo-server_kuma-test_svc_80"},
            }
        ]
        created = await eventually(
            lambda: [
                e
                for e in events_for(kube, "kuma-test", s_name)
                if e["reason"] == "CreatedKumaDataplane"
            ],
            "CreatedKumaDataplane event",
        )
        assert created[0]["type"] == "Normal"
        assert created[0]["message"] == f"Created Kuma Dataplane: {s_name}"


async def test_pod_changes_update_and_deletion_removes_the_dataplane(
    kube: FakeKube, tmp_path: Path
) -> None:
    async with controller(kube, tmp_path):
        server, _ = seed(kube)
        name = server["metadata"]["name"]
        await eventually(lambda: dataplane(kube, "kuma-test", name), "Dataplane")

        pod = kube.get("pods", name, "kuma-test")
        assert pod is not None
        pod["metadata"]["labels"]["version"] = "v2"
        kube.update(pod)
        dp = await eventually(
            lambda: (
                (d := dataplane(kube, "kuma-test", name))
                and inbound_tags(d).get("version") == "v2"
                and d
            ),
            "Dataplane with the new label",
        )
        assert inbound_tags(dp)["app"] == "echo-server"
        await eventually(
            lambda: any(
                e["reason"] == "UpdatedKumaDataplane" for e in events_for(kube, "kuma-test", name)
            ),
            "UpdatedKumaDataplane event",
        )

        kube.delete("pods", name, "kuma-test")
        await eventually(lambda: dataplane(kube, "kuma-test", name) is None, "Dataplane deleted")


async def test_service_changes_reach_inbounds_and_other_pods_outbounds(
    kube: FakeKube, tmp_path: Path
) -> None:
    async with controller(kube, tmp_path):
        server, client = seed(kube)
        s_name, c_name = server["metadata"]["name"], client["metadata"]["name"]
        await eventually(lambda: dataplane(kube, "kuma-test", c_name), "client Dataplane")

        svc = kube.get("services", "echo-server", "kuma-test")
        assert svc is not None
        svc["metadata"]["annotations"]["80.service.kuma.io/protocol"] = "http2"
        svc["spec"]["ports"].append({"name": "admin", "port": 9901, "targetPort": 9901})
        kube.update(svc)

        def server_updated() -> dict[str, Any] | None:
            dp = dataplane(kube, "kuma-test", s_name)
            if dp is None or len(dp["spec"]["networking"]["inbound"]) != 2:
                return None
            return dp

        dp = await eventually(server_updated, "echo-server with two inbounds")
        by_port = {i["port"]: i["tags"] for i in dp["spec"]["networking"]["inbound"]}
        assert by_port[80]["kuma.io/protocol"] == "http2"
        assert by_port[9901]["kuma.io/service"] == "echo-server_kuma-test_svc_9901"
        assert by_port[9901]["kuma.io/protocol"] == "tcp"
        # the client now has an outbound for the new service port too
        outbounds = await eventually(
            lambda: (
                (d := dataplane(kube, "kuma-test", c_name))
                and len(d["spec"]["networking"].get("outbound", [])) == 2
                and d["spec"]["networking"]["outbound"]
            ),
            "client outbound to the new port",
        )
        assert [o["tags"]["kuma.io/service"] for o in outbounds] == [
            "echo-server_kuma-test_svc_80",
            "echo-server_kuma-test_svc_9901",
        ]


async def test_unmeshed_pods_are_left_alone_and_unmeshing_deletes(
    kube: FakeKube, tmp_path: Path
) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "plain"}})
    deployment = copy.deepcopy(load("kuma-test/echo-client.yaml", "Deployment", "echo-client"))
    deployment["metadata"]["namespace"] = "plain"
    plain = kube.create(pod_for(deployment, ip="10.2.0.1", mesh=None))
    meshed = kube.create(pod_for(deployment, ip="10.2.0.2", replica=1))
    async with controller(kube, tmp_path) as ctl:
        m_name = meshed["metadata"]["name"]
        await eventually(lambda: dataplane(kube, "plain", m_name), "meshed pod's Dataplane")
        await eventually(lambda: not ctl.pending, "an idle queue")
        assert dataplane(kube, "plain", plain["metadata"]["name"]) is None

        # not scheduled yet: no Dataplane until the pod has an IP
        pending = pod_for(deployment, ip="", replica=2)
        pending = kube.create(pending)
        p_name = pending["metadata"]["name"]
        before = ctl.reconciles
        await eventually(lambda: ctl.reconciles > before and not ctl.pending, "pending reconciled")
        assert dataplane(kube, "plain", p_name) is None

        # a pod whose sidecar annotation goes away loses its Dataplane (no garbage collection here)
        pod = kube.get("pods", m_name, "plain")
        assert pod is not None
        pod["metadata"]["annotations"]["kuma.io/sidecar-injected"] = "false"
        kube.update(pod)
        await eventually(lambda: dataplane(kube, "plain", m_name) is None, "Dataplane deleted")
        assert kube.get("pods", m_name, "plain") is not None


async def test_pod_that_cannot_be_converted_gets_a_warning_event(
    kube: FakeKube, tmp_path: Path
) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}})
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "web", "namespace": "demo"},
            "spec": {
                "selector": {"app": "web"},
                "ports": [{"port": 53, "targetPort": 53, "protocol": "UDP"}],
            },
        }
    )
    deployment = {
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web"}]},
            }
        },
    }
    pod = kube.create(pod_for(deployment, ip="10.3.0.1"))
    name = pod["metadata"]["name"]
    async with controller(kube, tmp_path):
        warnings = await eventually(
            lambda: [e for e in events_for(kube, "demo", name) if e["type"] == "Warning"],
            "a Warning event",
        )
        assert warnings[0]["reason"] == "FailedToGenerateKumaDataplane"
        assert warnings[0]["message"] == (
            "Failed to generate Kuma Dataplane: unable to translate a Pod into a Dataplane: "
            "Kuma requires every Pod in a Mesh to be a part of at least one Service. However, "
            "this Pod doesn't have any container ports that would satisfy matching Service(s)."
        )
        assert dataplane(kube, "demo", name) is None

        # an annotation with a protocol Kuma does not know fails validation, like Kuma's webhook
        svc = kube.get("services", "web", "demo")
        assert svc is not None
        svc["spec"]["ports"] = [{"port": 80, "targetPort": 8080}]
        svc["metadata"]["annotations"] = {"80.service.kuma.io/protocol": "mongo"}
        kube.update(svc)
        await eventually(
            lambda: any(
                'invalid value "mongo"' in e["message"] for e in events_for(kube, "demo", name)
            ),
            "a validation Warning",
        )
        assert dataplane(kube, "demo", name) is None

        # fixed: the Dataplane appears
        svc = kube.get("services", "web", "demo")
        assert svc is not None
        svc["metadata"]["annotations"] = {"80.service.kuma.io/protocol": "http"}
        kube.update(svc)
        dp = await eventually(lambda: dataplane(kube, "demo", name), "Dataplane once fixed")
        assert inbound_tags(dp)["kuma.io/protocol"] == "http"


async def test_mesh_from_namespace_annotation_follows_the_namespace(
    kube: FakeKube, tmp_path: Path
) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "team", "annotations": {"kuma.io/mesh": "team-mesh"}},
        }
    )
    deployment = {
        "metadata": {"name": "app", "namespace": "team"},
        "spec": {
            "template": {"metadata": {"labels": {"app": "app"}}, "spec": {"containers": [{}]}}
        },
    }
    pod = pod_for(deployment, ip="10.4.0.1")
    del pod["metadata"]["annotations"]["kuma.io/mesh"]  # injected by hand, no pod-level mesh
    pod = kube.create(pod)
    name = pod["metadata"]["name"]
    async with controller(kube, tmp_path):
        dp = await eventually(lambda: dataplane(kube, "team", name), "Dataplane")
        assert dp["mesh"] == "team-mesh"
        ns = kube.get("namespaces", "team")
        assert ns is not None
        ns["metadata"]["annotations"]["kuma.io/mesh"] = "other"
        kube.update(ns)
        await eventually(
            lambda: (d := dataplane(kube, "team", name)) and d["mesh"] == "other",
            "Dataplane moved to the namespace's new mesh",
        )


async def test_watches_resume_after_drops_and_relist_after_compaction(
    kube: FakeKube, tmp_path: Path
) -> None:
    async with controller(kube, tmp_path) as ctl:
        server, _ = seed(kube)
        name = server["metadata"]["name"]
        await eventually(lambda: dataplane(kube, "kuma-test", name), "Dataplane")
        lists = ctl.pods.relists

        kube.drop_watches()
        pod = kube.get("pods", name, "kuma-test")
        assert pod is not None
        pod["metadata"]["labels"]["track"] = "after-drop"
        kube.update(pod)
        await eventually(
            lambda: (
                (d := dataplane(kube, "kuma-test", name))
                and inbound_tags(d).get("track") == "after-drop"
            ),
            "change seen after a dropped watch",
        )

        # history forgotten while the watch is down: 410 Gone -> relist, nothing missed (the
        # unrelated write makes the pod watch's last version older than the compaction point)
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "unrelated"}})
        kube.compact()
        kube.drop_watches()
        await eventually(lambda: ctl.pods.relists > lists, "pods listed again after 410 Gone")
        pod = kube.get("pods", name, "kuma-test")
        assert pod is not None
        pod["metadata"]["labels"]["track"] = "after-compaction"
        kube.update(pod)
        await eventually(
            lambda: (
                (d := dataplane(kube, "kuma-test", name))
                and inbound_tags(d).get("track") == "after-compaction"
            ),
            "change seen after a compaction",
        )


async def test_dataplane_edited_or_deleted_by_hand_is_put_back(
    kube: FakeKube, tmp_path: Path
) -> None:
    async with controller(kube, tmp_path):
        server, _ = seed(kube)
        name = server["metadata"]["name"]
        dp = await eventually(lambda: dataplane(kube, "kuma-test", name), "Dataplane")
        dp["spec"]["networking"]["inbound"][0]["tags"]["kuma.io/service"] = "hijacked"
        kube.update(dp)
        await eventually(
            lambda: (
                (d := dataplane(kube, "kuma-test", name))
                and inbound_tags(d)["kuma.io/service"] == "echo-server_kuma-test_svc_80"
            ),
            "Dataplane restored",
        )
        uid = dp["metadata"]["uid"]
        kube.delete("dataplanes", name, "kuma-test")
        await eventually(
            lambda: (d := dataplane(kube, "kuma-test", name)) and d["metadata"]["uid"] != uid,
            "Dataplane recreated",
        )


async def test_repeated_events_bump_the_count(kube: FakeKube, tmp_path: Path) -> None:
    config = KubeConfig.from_file(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    client = AsyncClient(config, trust_env=False)
    try:
        recorder = EventRecorder(client)
        pod = kube.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"containers": [{"name": "web"}]},
            }
        )
        await recorder.record(pod, "Warning", "FailedToGenerateKumaDataplane", "broken")
        await recorder.record(pod, "Warning", "FailedToGenerateKumaDataplane", "broken")
        await recorder.record(pod, "Normal", "CreatedKumaDataplane", "Created Kuma Dataplane: web")
        events = sorted(events_for(kube, "default", "web"), key=lambda e: e["reason"])
        assert [(e["reason"], e["count"]) for e in events] == [
            ("CreatedKumaDataplane", 1),
            ("FailedToGenerateKumaDataplane", 2),
        ]
        assert events[1]["involvedObject"]["uid"] == pod["metadata"]["uid"]
        assert events[1]["source"] == {"component": "k8s.kuma.io/dataplane-generator"}
    finally:
        await client.close()


async def test_a_malformed_dataplane_does_not_stop_the_controller(
    kube: FakeKube, tmp_path: Path
) -> None:
    kube.create(
        {
            "apiVersion": "kuma.io/v1alpha1",
            "kind": "Dataplane",
            "mesh": "default",
            "metadata": {"name": "handmade", "namespace": "default"},
            "spec": {"networking": {"inbound": [{"port": "eighty", "tags": "none"}]}},
        }
    )
    async with controller(kube, tmp_path):
        server, _ = seed(kube)
        name = server["metadata"]["name"]
        await eventually(lambda: dataplane(kube, "kuma-test", name), "Dataplane")
        # a user's Dataplane (no owner) is left alone
        handmade = dataplane(kube, "default", "handmade")
        assert handmade is not None
        assert handmade["spec"]["networking"]["inbound"][0]["port"] == "eighty"


async def test_an_ingress_pod_gets_an_ingress_dataplane(kube: FakeKube, tmp_path: Path) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kuma-system"}})
    pod = kube.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "kuma-ingress-5c8f9d7b6-zzzzz",
                "namespace": "kuma-system",
                "annotations": {"kuma.io/ingress": "enabled"},
            },
            "spec": {"containers": [{"name": "ingress"}]},
            "status": {"podIP": "10.5.0.1"},
        }
    )
    name = pod["metadata"]["name"]
    async with controller(kube, tmp_path) as ctl:
        dp = await eventually(lambda: dataplane(kube, "kuma-system", name), "ingress Dataplane")
        assert dp["mesh"] == "default"
        assert dp["spec"] == {
            "networking": {"ingress": {}, "address": "10.5.0.1", "inbound": [{"port": 10001}]}
        }
        created = await eventually(
            lambda: [e for e in events_for(kube, "kuma-system", name) if e["type"] == "Normal"],
            "Created event",
        )
        assert created[0]["message"] == f"Created Kuma Ingress: {name}"

        # the services an ingress offers are the control plane's to maintain: kept on updates
        dp["spec"]["networking"]["ingress"] = {
            "availableServices": [{"tags": {"kuma.io/service": "web_demo_svc_80"}, "instances": 1}]
        }
        before = ctl.reconciles
        kube.update(dp)
        await eventually(lambda: ctl.reconciles > before and not ctl.pending, "edit reconciled")
        kept = dataplane(kube, "kuma-system", name)
        assert kept is not None
        assert kept["spec"]["networking"]["ingress"]["availableServices"][0]["instances"] == 1


async def test_crds_not_served_is_an_error_at_start(tmp_path: Path) -> None:
    """Against an API server without Kuma's CRDs, the controller says what is missing."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from kuma.k8s.controllers.informer import Informer, NotServedError
    from kuma.k8s.controllers.resources import DataplaneResource
    from tests.support.fake_kube import serve_app

    async def not_found(request: Any) -> JSONResponse:
        return JSONResponse({"kind": "Status", "code": 404, "reason": "NotFound"}, status_code=404)

    with serve_app(Starlette(routes=[Route("/{path:path}", not_found)])) as url:
        config = KubeConfig.from_dict(
            {
                "current-context": "c",
                "clusters": [{"name": "k", "cluster": {"server": url}}],
                "users": [{"name": "u", "user": {}}],
                "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            }
        )
        client = AsyncClient(config, trust_env=False)
        try:
            informer = Informer(client, DataplaneResource, lambda old, new: None, name="Dataplane")
            with pytest.raises(NotServedError, match="does not serve Dataplane objects; are Kuma"):
                await informer.run()
        finally:
            await client.close()
