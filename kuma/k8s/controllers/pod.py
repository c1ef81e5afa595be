"""The Pod controller: one `Dataplane` CR per meshed Pod (Kuma's PodReconciler, §9.4).

It watches Namespaces, Pods, Services and Dataplanes (each an `Informer`) and reconciles Pods
from a de-duplicating work queue:

* a Pod with `kuma.io/sidecar-injected: "true"` (or `kuma.io/ingress: enabled`) and a pod IP gets a
  Dataplane with the same name and namespace, `mesh` and `spec` from `kuma.k8s.convert`, and a
  controller ownerReference to the Pod (so Kubernetes garbage-collects it with the Pod);
* when such a Pod goes away (or stops being meshed), the Dataplane it controls is deleted;
* what triggers a Pod's reconciliation: the Pod itself; any Service (its inbounds and every pod's
  outbounds depend on Services); its Namespace (the `kuma.io/mesh` fallback); a change in the
  services offered by any Dataplane of a mesh (the outbounds of that mesh's pods); its own
  Dataplane being edited or deleted by someone else (it is put back).
* Events on the Pod, with Kuma's reasons: `CreatedKumaDataplane`, `UpdatedKumaDataplane` (Normal)
  and `FailedToGenerateKumaDataplane` (Warning: the pod cannot be converted, the Dataplane would
  not pass Kuma's validation, or the API server refused it).

API failures are retried with exponential backoff per Pod; a Pod that cannot be converted waits
for its next change.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Iterable
from typing import Any

import anyio
import anyio.abc
import httpx
import structlog
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

from kuma.errors import KumaError
from kuma.k8s import convert, crds
from kuma.k8s.controllers.events import EventRecorder
from kuma.k8s.controllers.informer import Informer, Key, key_of
from kuma.k8s.controllers.resources import (
    DataplaneResource,
    NamespaceResource,
    PodResource,
    ServiceResource,
)
from kuma.model.codec import decode
from kuma.model.validators.dataplane import validate_dataplane
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = [
    "CREATED_REASON",
    "FAILED_REASON",
    "UPDATED_REASON",
    "DataplaneResource",
    "PodController",
]

log = structlog.get_logger("kuma.k8s.controllers")

CREATED_REASON = "CreatedKumaDataplane"
UPDATED_REASON = "UpdatedKumaDataplane"
FAILED_REASON = "FailedToGenerateKumaDataplane"

_DATAPLANE_CRD = crds.for_type("Dataplane")


class _Retry(Exception):
    """The reconciliation hit a transient problem: try the pod again after a backoff."""


def _owner_ref(pod: dict[str, Any]) -> dict[str, Any]:
    meta = pod["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": meta["name"],
        "uid": meta.get("uid") or "",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _keep_available_services(
    desired: convert.DataplaneObject, current: dict[str, Any]
) -> convert.DataplaneObject:
    """An ingress Dataplane's `availableServices` are maintained by the control plane (multizone),
    not derived from the Pod: keep them (as Kuma 1.1+ does) instead of wiping them on update."""
    ingress = desired.spec.get("networking", {}).get("ingress")
    spec = current.get("spec")
    networking = spec.get("networking") if isinstance(spec, dict) else None
    old = networking.get("ingress") if isinstance(networking, dict) else None
    if ingress is None or not isinstance(old, dict) or "availableServices" not in old:
        return desired
    merged = copy.deepcopy(desired.spec)
    merged["networking"]["ingress"] = {**ingress, "availableServices": old["availableServices"]}
    return convert.DataplaneObject(desired.mesh, merged)


def _what(pod: dict[str, Any]) -> str:
    """How Kuma's events name the object: an ingress pod's Dataplane is "Ingress"."""
    return "Ingress" if convert.is_ingress(pod) else "Dataplane"


def _controller_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return dict(ref)
    return None


def _service_signature(dp: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What other pods' outbounds read from a Dataplane (its mesh and its service endpoints)."""
    if dp is None:
        return None
    spec = dp.get("spec")
    networking = spec.get("networking") if isinstance(spec, dict) else None
    if not isinstance(networking, dict):
        return (dp.get("mesh") or convert.DEFAULT_MESH, repr(spec))
    if networking.get("ingress") is not None:
        return None
    inbounds = networking.get("inbound")

    def endpoint(inbound: Any) -> str:
        # repr: a hand-written Dataplane may hold anything, and sorting must not fail
        if not isinstance(inbound, dict):
            return repr(inbound)
        tags = inbound.get("tags")
        tags = tags if isinstance(tags, dict) else {}
        return repr(
            (
                tags.get(convert.SERVICE_TAG),
                inbound.get("address") or networking.get("address"),
                inbound.get("port"),
                tags.get(convert.INSTANCE_TAG),
            )
        )

    return (
        dp.get("mesh") or convert.DEFAULT_MESH,
        tuple(sorted(endpoint(i) for i in inbounds)) if isinstance(inbounds, list) else None,
    )


class PodController:
    """Reconciles a Dataplane CR per meshed Pod; see the module docstring.

    `zone` adds `kuma.io/zone` to inbound tags (Kuma's remote control planes).
    """

    def __init__(
        self,
        client: AsyncClient,
        *,
        zone: str = "",
        min_backoff: float = 0.2,
        max_backoff: float = 10.0,
    ) -> None:
        self.client = client
        self.zone = zone
        self.events = EventRecorder(client)
        self.namespaces = Informer(client, NamespaceResource, self._on_namespace, name="Namespace")
        self.pods = Informer(client, PodResource, self._on_pod, name="Pod")
        self.services = Informer(client, ServiceResource, self._on_service, name="Service")
        self.dataplanes = Informer(client, DataplaneResource, self._on_dataplane, name="Dataplane")
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._queue: deque[Key] = deque()
        self._queued: set[Key] = set()
        # Outbounds to refresh once the queue drains (a mesh's services changed): deferring
        # this fan-out keeps a burst of N new Dataplanes at ~2N reconciliations, not N^2.
        self._stale_meshes: set[str] = set()
        self._stale_all = False
        self._failures: dict[Key, int] = {}
        self._wake = anyio.Event()
        self._synced = False
        self._tg: anyio.abc.TaskGroup | None = None
        self.reconciles = 0
        """Completed reconciliations (any outcome); for tests and diagnostics."""

    # -- the queue -------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Pods waiting to be reconciled (not counting retries still in their backoff)."""
        return len(self._queue)

    def enqueue(self, key: Key) -> None:
        if key in self._queued:
            return
        self._queued.add(key)
        self._queue.append(key)
        self._wake.set()

    def _enqueue_pods(self, pods: Iterable[dict[str, Any]]) -> None:
        for pod in pods:
            if convert.has_sidecar(pod) or convert.is_ingress(pod):
                self.enqueue(key_of(pod))

    async def _requeue_later(self, key: Key, delay: float) -> None:
        await anyio.sleep(delay)
        self.enqueue(key)

    # -- watch handlers (synchronous, in the informers' tasks) ------------------------------

    def _on_pod(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        self.enqueue(key_of(new or old or {}))

    def _on_service(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if not self._synced:
            return
        # inbounds of the Service's namespace now; every pod's outbounds once the queue drains
        namespace = key_of(new or old or {})[0]
        self._enqueue_pods(p for p in self.pods.items() if key_of(p)[0] == namespace)
        self._stale_all = True
        self._wake.set()

    def _on_namespace(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if not self._synced:
            return
        name = key_of(new or old or {})[1]
        self._enqueue_pods(p for p in self.pods.items() if key_of(p)[0] == name)

    def _on_dataplane(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if not self._synced:
            return
        current = new or old or {}
        owner = _controller_of(current)
        if owner is not None and owner.get("kind") == "Pod":
            # someone else changed or deleted a Dataplane we control: converge it again
            self.enqueue((key_of(current)[0], str(owner.get("name"))))
        self._services_changed(old, new)

    def _services_changed(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        before, after = _service_signature(old), _service_signature(new)
        if before == after:
            return
        self._stale_meshes.update(s[0] for s in (before, after) if s is not None)
        self._wake.set()

    def _refresh_outbounds(self) -> None:
        """Enqueue the pods of the meshes whose services changed (see `_stale_meshes`)."""
        meshes, everything = self._stale_meshes, self._stale_all
        self._stale_meshes, self._stale_all = set(), False
        for pod in self.pods.items():
            if not (convert.has_sidecar(pod) or convert.is_ingress(pod)):
                continue
            if (
                everything
                or convert.mesh_for(pod, self.namespaces.get("", key_of(pod)[0])) in meshes
            ):
                self.enqueue(key_of(pod))

    def _remember(self, key: Key, saved: dict[str, Any] | None) -> None:
        """Put our own write into the cache at once (its watch event then changes nothing), and
        refresh the outbounds it affects."""
        old = self.dataplanes.cache.get(key)
        if saved is None:
            self.dataplanes.cache.pop(key, None)
        else:
            self.dataplanes.cache[key] = saved
        self._services_changed(old, saved)

    # -- reconciliation ----------------------------------------------------------------------

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Sync the four caches, reconcile every meshed Pod, then follow changes until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for informer in (self.namespaces, self.services, self.dataplanes, self.pods):
                await tg.start(informer.run)
            self._synced = True
            self._enqueue_pods(self.pods.items())
            # Dataplanes whose pod is gone (deleted while we were away, without GC)
            for dp in self.dataplanes.items():
                owner = _controller_of(dp)
                if owner is not None and owner.get("kind") == "Pod":
                    self.enqueue((key_of(dp)[0], str(owner.get("name"))))
            log.info(
                "pod controller started",
                pods=len(self.pods.cache),
                services=len(self.services.cache),
                dataplanes=len(self.dataplanes.cache),
            )
            task_status.started()
            await self._work()

    async def _work(self) -> None:
        assert self._tg is not None
        while True:
            if not self._queue:
                if self._stale_meshes or self._stale_all:
                    self._refresh_outbounds()
                    continue
                self._wake = anyio.Event()
                await self._wake.wait()
                continue
            key = self._queue.popleft()
            self._queued.discard(key)
            try:
                await self.reconcile(key)
            except Exception as e:  # one pod must never stop the controller
                failures = self._failures.get(key, 0) + 1
                self._failures[key] = failures
                delay = min(self._min_backoff * math.pow(2, failures - 1), self._max_backoff)
                if isinstance(e, _Retry):
                    log.info("will retry pod", pod=f"{key[1]}.{key[0]}", delay=delay, error=str(e))
                else:
                    log.exception(
                        "pod reconciliation failed", pod=f"{key[1]}.{key[0]}", delay=delay
                    )
                self._tg.start_soon(self._requeue_later, key, delay)
            else:
                self._failures.pop(key, None)
            finally:
                self.reconciles += 1

    async def reconcile(self, key: Key) -> None:
        """Bring the Dataplane of pod `key` (namespace, name) in line with the caches."""
        namespace, name = key
        pod = self.pods.get(namespace, name)
        current = self.dataplanes.get(namespace, name)
        if pod is None or not (convert.has_sidecar(pod) or convert.is_ingress(pod)):
            if pod is None:
                self.events.forget(namespace, name)
            await self._delete_owned(key, pod, current)
            return
        if not ((pod.get("status") or {}).get("podIP")):
            return  # not scheduled yet: Kuma waits for the pod IP
        try:
            desired = convert.dataplane_for(
                pod,
                self.services.items(),
                self.dataplanes.items(),
                namespace=self.namespaces.get("", namespace),
                zone=self.zone,
            )
            self._validate(f"{name}.{namespace}", desired)
        except KumaError as e:
            log.info("cannot generate a Dataplane", pod=f"{name}.{namespace}", error=str(e))
            why = f"unable to translate a Pod into a Dataplane: {e}"
            if not isinstance(e, convert.ConversionError):
                why = f"the Dataplane is not valid: {e}"
            await self.events.record(
                pod, "Warning", FAILED_REASON, f"Failed to generate Kuma {_what(pod)}: {why}"
            )
            return
        await self._apply(pod, current, desired)

    @staticmethod
    def _validate(name: str, desired: convert.DataplaneObject) -> None:
        """Kuma's validating webhook rejects invalid Dataplanes; check before writing."""
        err = validate_dataplane(name, desired.mesh, decode(mesh_pb.Dataplane, desired.spec))
        if err is not None:
            raise err

    async def _apply(
        self,
        pod: dict[str, Any],
        current: dict[str, Any] | None,
        desired: convert.DataplaneObject,
    ) -> None:
        meta = pod["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        owner = _owner_ref(pod)
        if current is None:
            body = {
                "apiVersion": crds.API_VERSION,
                "kind": _DATAPLANE_CRD.kind,
                "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner]},
                "mesh": desired.mesh,
                "spec": desired.spec,
            }
            try:
                saved = await self.client.create(DataplaneResource(body))
            except ApiError as e:
                await self._api_failure(pod, e)
                return
            except (httpx.HTTPError, OSError) as e:
                raise _Retry(repr(e)) from e
            self._remember(key_of(body), saved.to_dict())
            log.info("Dataplane created", pod=f"{name}.{namespace}", mesh=desired.mesh)
            await self.events.record(
                pod, "Normal", CREATED_REASON, f"Created Kuma {_what(pod)}: {name}"
            )
            return
        cur_meta = current.get("metadata") or {}
        desired = _keep_available_services(desired, current)
        refs = [
            r
            for r in cur_meta.get("ownerReferences") or []
            if not r.get("controller") and r.get("uid") != owner["uid"]
        ]
        refs.append(owner)
        if (
            current.get("mesh") == desired.mesh
            and current.get("spec") == desired.spec
            and cur_meta.get("ownerReferences") == refs
        ):
            return
        body = dict(current)
        body["metadata"] = {**cur_meta, "ownerReferences": refs}
        body["mesh"] = desired.mesh
        body["spec"] = desired.spec
        try:
            saved = await self.client.replace(DataplaneResource(body))
        except ApiError as e:
            await self._api_failure(pod, e)
            return
        except (httpx.HTTPError, OSError) as e:
            raise _Retry(repr(e)) from e
        self._remember(key_of(body), saved.to_dict())
        log.info("Dataplane updated", pod=f"{name}.{namespace}", mesh=desired.mesh)
        await self.events.record(
            pod, "Normal", UPDATED_REASON, f"Updated Kuma {_what(pod)}: {name}"
        )

    async def _api_failure(self, pod: dict[str, Any], e: ApiError) -> None:
        code = e.status.code if e.status is not None else None
        if code in (404, 409, 429) or (code is not None and code >= 500):
            # a stale cache (gone, conflict, already exists) or an overloaded server: try again
            raise _Retry(f"{code}: {e}") from e
        await self.events.record(
            pod, "Warning", FAILED_REASON, f"Failed to generate Kuma {_what(pod)}: {e}"
        )

    async def _delete_owned(
        self, key: Key, pod: dict[str, Any] | None, current: dict[str, Any] | None
    ) -> None:
        """Delete the Dataplane of a gone (or no longer meshed) pod, if that pod controlled it."""
        if current is None:
            return
        owner = _controller_of(current)
        if owner is None or owner.get("kind") != "Pod" or owner.get("name") != key[1]:
            return  # not ours (a user's Dataplane, or orphaned on purpose)
        if pod is not None and owner.get("uid") not in ("", (pod.get("metadata") or {}).get("uid")):
            return
        try:
            await self.client.delete(DataplaneResource, key[1], namespace=key[0])
        except ApiError as e:
            if e.status is None or e.status.code != 404:
                raise _Retry(str(e)) from e
        except (httpx.HTTPError, OSError) as e:
            raise _Retry(repr(e)) from e
        self._remember(key, None)
        log.info("Dataplane deleted", pod=f"{key[1]}.{key[0]}")
