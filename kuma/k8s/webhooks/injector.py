"""The sidecar injector: what `/inject-sidecar` does to a Pod (Kuma 0.7.3's KumaInjector).

    pod labels match runtime.kubernetes.injector.exceptions.labels  -> left alone
    pod already injected (kuma.io/sidecar-injected: "true" or a kuma-sidecar container)
                                                                    -> left alone
    kuma.io/sidecar-injection on the pod, else on its Namespace:
        enabled -> inject;  disabled / absent -> left alone;  anything else -> InjectionError
    mesh: kuma.io/mesh on the pod, else on the Namespace, else `default`; it must exist.

Injecting appends the `kuma-sidecar` container (kuma-dp: env, probes, resources, uid/gid, the
ServiceAccount token mount), merges Kuma's annotations into the pod, then (unless CNI does the
redirection) appends the `kuma-init` init container, whose excluded ports come from the
annotations just merged (the pod's own, else the configured defaults).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from kuma.config.duration import format_duration
from kuma.config.model import Injector
from kuma.k8s.webhooks.lookup import ClusterLookup

__all__ = [
    "ANNOTATION_GATEWAY",
    "ANNOTATION_MESH",
    "ANNOTATION_SIDECAR_INJECTED",
    "ANNOTATION_SIDECAR_INJECTION",
    "INIT_CONTAINER_NAME",
    "SIDECAR_CONTAINER_NAME",
    "InjectionError",
    "SidecarInjector",
]

log = structlog.get_logger("kuma-cp.injector")

SIDECAR_CONTAINER_NAME = "kuma-sidecar"
INIT_CONTAINER_NAME = "kuma-init"

ANNOTATION_MESH = "kuma.io/mesh"
ANNOTATION_SIDECAR_INJECTION = "kuma.io/sidecar-injection"
ANNOTATION_SIDECAR_INJECTED = "kuma.io/sidecar-injected"
ANNOTATION_TRANSPARENT_PROXYING = "kuma.io/transparent-proxying"
ANNOTATION_INBOUND_PORT = "kuma.io/transparent-proxying-inbound-port"
ANNOTATION_OUTBOUND_PORT = "kuma.io/transparent-proxying-outbound-port"
ANNOTATION_GATEWAY = "kuma.io/gateway"
ANNOTATION_EXCLUDE_INBOUND = "traffic.kuma.io/exclude-inbound-ports"
ANNOTATION_EXCLUDE_OUTBOUND = "traffic.kuma.io/exclude-outbound-ports"
ANNOTATION_CNI_NETWORKS = "k8s.v1.cni.cncf.io/networks"

_ENABLED = "enabled"
_DISABLED = "disabled"
_SA_TOKEN_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
_DEFAULT_MESH = "default"


class InjectionError(Exception):
    """The pod cannot be injected (bad annotation value, unknown namespace or mesh)."""


@dataclass(frozen=True)
class SidecarInjector:
    config: Injector
    """`runtime.kubernetes.injector`."""
    control_plane_url: str
    """What kuma-dp is told to talk to: `http://<general.advertisedHostname>:<apiServer.port>`."""
    lookup: ClusterLookup

    async def inject(self, pod: Mapping[str, Any], namespace: str = "") -> dict[str, Any] | None:
        """The injected copy of `pod`, or None when this pod is not to be injected.

        `namespace` is the admission request's (a pod being created from a template has none
        in its own metadata). Raises InjectionError.
        """
        meta = pod.get("metadata") or {}
        ns_name = namespace or meta.get("namespace") or "default"
        ns = await self.lookup.namespace(ns_name)
        if ns is None:
            raise InjectionError(
                f'could not retrieve namespace for pod: namespaces "{ns_name}" not found'
            )
        ns_annotations = _annotations(ns)
        pod_name = meta.get("name") or meta.get("generateName") or ""
        if not self._need_inject(pod, ns_annotations):
            log.debug("skip injecting Kuma", name=pod_name, namespace=ns_name)
            return None
        mesh = _mesh_name(pod, ns_annotations)
        if await self.lookup.mesh(mesh) is None:
            raise InjectionError(
                f'could not retrieve mesh for pod: meshes.kuma.io "{mesh}" not found'
            )
        log.info("injecting Kuma", name=pod_name, namespace=ns_name, mesh=mesh)
        out = copy.deepcopy(dict(pod))
        spec = out.setdefault("spec", {})
        containers = spec.get("containers") or []
        spec["containers"] = [*containers, self._sidecar(pod, mesh)]
        out_meta = out.setdefault("metadata", {})
        annotations = dict(out_meta.get("annotations") or {})
        annotations.update(self._annotations(annotations, mesh))
        out_meta["annotations"] = annotations
        if not self.config.cni_enabled:
            init = spec.get("initContainers") or []
            spec["initContainers"] = [*init, self._init_container(annotations)]
        return out

    # -- decisions ------------------------------------------------------------------------------

    def _need_inject(self, pod: Mapping[str, Any], ns_annotations: Mapping[str, str]) -> bool:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        for key, value in self.config.exceptions.labels.items():
            if key in labels and (value == "*" or value == labels[key]):
                return False
        annotations = meta.get("annotations") or {}
        if annotations.get(ANNOTATION_SIDECAR_INJECTED) == "true" or any(
            c.get("name") == SIDECAR_CONTAINER_NAME
            for c in (pod.get("spec") or {}).get("containers") or []
        ):
            return False  # already injected (a re-invocation, or a pod created from one)
        for source in (annotations, ns_annotations):
            if ANNOTATION_SIDECAR_INJECTION in source:
                value = source[ANNOTATION_SIDECAR_INJECTION]
                if value == _ENABLED:
                    return True
                if value == _DISABLED:
                    return False
                raise InjectionError(
                    f"annotation {ANNOTATION_SIDECAR_INJECTION} has wrong value "
                    f"{value!r}: it must be {_ENABLED} or {_DISABLED}"
                )
        return False

    # -- what gets added ------------------------------------------------------------------------

    def _sidecar(self, pod: Mapping[str, Any], mesh: str) -> dict[str, Any]:
        sc = self.config.sidecar_container
        ready_url = f"http://127.0.0.1:{sc.admin_port}/ready"
        probe_cmd = {"command": ["wget", "-qO-", ready_url]}
        container: dict[str, Any] = {
            "name": SIDECAR_CONTAINER_NAME,
            "image": sc.image,
            "imagePullPolicy": "IfNotPresent",
            "args": ["run", "--log-level=info"],
            "env": [
                _field_env("POD_NAME", "metadata.name"),
                _field_env("POD_NAMESPACE", "metadata.namespace"),
                _field_env("INSTANCE_IP", "status.podIP"),
                {"name": "KUMA_CONTROL_PLANE_API_SERVER_URL", "value": self.control_plane_url},
                {"name": "KUMA_DATAPLANE_MESH", "value": mesh},
                # the pod's name is often unknown yet (ReplicaSets): let Kubernetes expand it
                {"name": "KUMA_DATAPLANE_NAME", "value": "$(POD_NAME).$(POD_NAMESPACE)"},
                {"name": "KUMA_DATAPLANE_ADMIN_PORT", "value": str(sc.admin_port)},
                {"name": "KUMA_DATAPLANE_DRAIN_TIME", "value": format_duration(sc.drain_time)},
                {
                    "name": "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH",
                    "value": f"{_SA_TOKEN_MOUNT_PATH}/token",
                },
            ],
            "securityContext": {"runAsUser": sc.uid, "runAsGroup": sc.gid},
            "livenessProbe": {
                "exec": probe_cmd,
                "initialDelaySeconds": sc.liveness_probe.initial_delay_seconds,
                "timeoutSeconds": sc.liveness_probe.timeout_seconds,
                "periodSeconds": sc.liveness_probe.period_seconds,
                "successThreshold": 1,
                "failureThreshold": sc.liveness_probe.failure_threshold,
            },
            "readinessProbe": {
                "exec": copy.deepcopy(probe_cmd),
                "initialDelaySeconds": sc.readiness_probe.initial_delay_seconds,
                "timeoutSeconds": sc.readiness_probe.timeout_seconds,
                "periodSeconds": sc.readiness_probe.period_seconds,
                "successThreshold": sc.readiness_probe.success_threshold,
                "failureThreshold": sc.readiness_probe.failure_threshold,
            },
            "resources": {
                "requests": {
                    "cpu": sc.resources.requests.cpu,
                    "memory": sc.resources.requests.memory,
                },
                "limits": {"cpu": sc.resources.limits.cpu, "memory": sc.resources.limits.memory},
            },
        }
        # Before Kubernetes 1.15 the ServiceAccount admission plugin ran once, before mutating
        # webhooks: a container added here has to carry the token mount itself.
        token_mount = _find_token_mount(pod)
        if token_mount is not None:
            container["volumeMounts"] = [token_mount]
        return container

    def _annotations(self, existing: Mapping[str, str], mesh: str) -> dict[str, str]:
        sc = self.config.sidecar_container
        out = {
            ANNOTATION_MESH: mesh,
            ANNOTATION_SIDECAR_INJECTED: "true",
            ANNOTATION_TRANSPARENT_PROXYING: _ENABLED,
            ANNOTATION_INBOUND_PORT: str(sc.redirect_port_inbound),
            ANNOTATION_OUTBOUND_PORT: str(sc.redirect_port_outbound),
        }
        if self.config.cni_enabled:
            out[ANNOTATION_CNI_NETWORKS] = "kuma-cni"
        traffic = self.config.sidecar_traffic
        for key, ports in (
            (ANNOTATION_EXCLUDE_INBOUND, traffic.exclude_inbound_ports),
            (ANNOTATION_EXCLUDE_OUTBOUND, traffic.exclude_outbound_ports),
        ):
            if key in existing:
                out[key] = existing[key]
            elif ports:
                out[key] = ",".join(str(p) for p in ports)
        return out

    def _init_container(self, annotations: Mapping[str, str]) -> dict[str, Any]:
        sc = self.config.sidecar_container
        inbound = "" if annotations.get(ANNOTATION_GATEWAY) == _ENABLED else "*"
        return {
            "name": INIT_CONTAINER_NAME,
            "image": self.config.init_container.image,
            "imagePullPolicy": "IfNotPresent",
            "args": [
                "-p",
                str(sc.redirect_port_outbound),
                "-z",
                str(sc.redirect_port_inbound),
                "-u",
                str(sc.uid),
                "-g",
                str(sc.gid),
                "-d",
                annotations.get(ANNOTATION_EXCLUDE_INBOUND, ""),
                "-o",
                annotations.get(ANNOTATION_EXCLUDE_OUTBOUND, ""),
                "-m",
                "REDIRECT",
                "-i",
                "*",
                "-b",
                inbound,
            ],
            "securityContext": {
                "runAsUser": 0,
                "runAsGroup": 0,
                "capabilities": {"add": ["NET_ADMIN"]},
            },
            "resources": {
                "limits": {"cpu": "100m", "memory": "50M"},
                "requests": {"cpu": "10m", "memory": "10M"},
            },
        }


def _annotations(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def _mesh_name(pod: Mapping[str, Any], ns_annotations: Mapping[str, str]) -> str:
    pod_annotations = _annotations(pod)
    if ANNOTATION_MESH in pod_annotations:
        return pod_annotations[ANNOTATION_MESH]
    if ANNOTATION_MESH in ns_annotations:
        return ns_annotations[ANNOTATION_MESH]
    return _DEFAULT_MESH


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def _find_token_mount(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    for container in (pod.get("spec") or {}).get("containers") or []:
        for mount in container.get("volumeMounts") or []:
            if mount.get("mountPath") == _SA_TOKEN_MOUNT_PATH:
                return dict(mount)
    return None
