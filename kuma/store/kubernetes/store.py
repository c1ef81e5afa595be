"""KubernetesStore: the ResourceStore contract over Kuma's CRDs (and core v1 Secrets).

Lifecycle (as PostgresStore):

    store = await KubernetesStore.connect(kubeconfig=None, system_namespace="kuma-system")
    try:
        async with anyio.create_task_group() as tg:  # the control plane's root task group
            await tg.start(store.run)               # one watch per kind -> change events
            ...
    finally:
        await store.close()

`async with KubernetesStore.open(...)` does all three for callers without a task group.

Mapping (Kuma 0.7.3, `pkg/plugins/resources/k8s`, `pkg/plugins/secrets/k8s`):

* each type is the CRD `kuma.k8s.crds.for_type(...)`; its object is `{apiVersion, kind,
  metadata, mesh, spec}` (DataplaneInsight keeps its spec under `status`, as Kuma's type does);
  names follow `names.py` (`<name>.<namespace>` for namespaced kinds).
* Secrets are core v1 Secrets in the system namespace, `type: system.kuma.io/secret`, label
  `kuma.io/mesh: <mesh>`, the bytes under `data.value`.
* version = `metadata.resourceVersion`, checked by the API server on update (a stale one is a
  409 -> ResourceConflictError). Creation and modification time are both `creationTimestamp`
  (Kuma's choice; Kubernetes records no modification time). An update that changes nothing is
  a no-op for Kubernetes: the version stays and no change event is published.
* owners become `ownerReferences` (a mesh-scoped object created with its Mesh as owner goes
  away when the Mesh is deleted: the API server's garbage collector does the cascade, which on a
  real cluster completes shortly *after* the Mesh's delete returns).
* `list` reads every object of the kind (in pages of `LIST_CHUNK`), keeps the mesh asked for,
  orders by (core name, mesh) like every store and pages with numeric offsets. (Kuma pages with
  the API server's continue tokens, whose order is (namespace, name); the contract's order wins.)
* change events come from one watch per kind, resumed from the last resourceVersion seen when
  a stream ends or breaks; when the API server answers 410 Gone (history compacted) the kind is
  re-listed and subscribers get a `Resync`.

The kubeconfig comes from `kubeconfig` when given (a path or a lightkube KubeConfig), else the
usual places: the in-cluster service account, then `$KUBECONFIG`, then `~/.kube/config`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import structlog

from kuma.errors import (
    ResourceAlreadyExistsError,
    ResourceConflictError,
    ResourceNotFoundError,
    StoreError,
    ValidationError,
    Violation,
)
from kuma.k8s import crds
from kuma.model import registry
from kuma.model.resource import Resource, ResourceKey, ResourceMeta, ResourceType
from kuma.store.base import ListResult, ResourceStore, parse_offset
from kuma.store.events import ChangeEvent, ChangeOp, EventBus, Resync, Subscription
from kuma.store.kubernetes.names import core_name, k8s_name

__all__ = [
    "DEFAULT_SYSTEM_NAMESPACE",
    "LIST_CHUNK",
    "MESH_LABEL",
    "SECRET_TYPE",
    "KubernetesStore",
]

log = structlog.get_logger("kuma.store.kubernetes")

DEFAULT_SYSTEM_NAMESPACE = "kuma-system"
MESH_LABEL = "kuma.io/mesh"
"""Label naming the mesh of a Kuma Secret."""
SECRET_TYPE = "system.kuma.io/secret"
"""The `type` of the core v1 Secrets that hold Kuma Secrets."""
LIST_CHUNK = 500
"""Objects per list request (`limit`); longer lists follow `continue` tokens."""
WATCH_TIMEOUT = 300
"""Seconds the API server keeps one watch request open; the store then resumes it."""
RECONNECT_MIN = 0.1
RECONNECT_MAX = 5.0

_SPEC_FIELD = {"DataplaneInsight": "status"}


@dataclass(frozen=True)
class _Kind:
    """How one Kuma type is stored: the API paths and how to read/write its objects."""

    type: ResourceType
    api_version: str
    kind: str
    namespaced: bool
    collection: str
    """Path of the collection, without namespace: `/apis/kuma.io/v1alpha1/meshes`."""
    secret: bool = False

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = self.collection
        if self.namespaced and namespace:
            prefix, _, plural = base.rpartition("/")
            base = f"{prefix}/namespaces/{namespace}/{plural}"
        return f"{base}/{name}" if name else base


def _kinds() -> dict[str, _Kind]:
    out = {}
    for c in crds.all_crds():
        out[c.type.name] = _Kind(c.type, crds.API_VERSION, c.kind, c.namespaced, c.path())
    out[registry.SECRET.name] = _Kind(
        registry.SECRET, "v1", "Secret", True, "/api/v1/secrets", secret=True
    )
    return out


def _parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class KubernetesStore(ResourceStore):
    """See the module docstring."""

    def __init__(self, client: Any, *, system_namespace: str = DEFAULT_SYSTEM_NAMESPACE) -> None:
        """`client`: an httpx-compatible AsyncClient whose base URL is the API server."""
        self._client = client
        self.system_namespace = system_namespace
        self._kinds = _kinds()
        self._bus = EventBus()
        self._start_versions: dict[str, str] = {}
        self._closed = anyio.Event()

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        kubeconfig: Any = None,
        *,
        system_namespace: str = DEFAULT_SYSTEM_NAMESPACE,
        context: str | None = None,
    ) -> KubernetesStore:
        """Connect with `kubeconfig` (path, lightkube KubeConfig, or None for the usual places)
        and record where change events start (writes from now on are never missed)."""
        store = cls(_client_from_kubeconfig(kubeconfig, context), system_namespace=system_namespace)
        try:
            await store.start_versions()
        except BaseException:
            await store._client.aclose()
            raise
        return store

    @classmethod
    @asynccontextmanager
    async def open(cls, kubeconfig: Any = None, **kwargs: Any) -> AsyncIterator[KubernetesStore]:
        """connect + run (in a task group of its own) + close."""
        store = await cls.connect(kubeconfig, **kwargs)
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(store.run)
                try:
                    yield store
                finally:
                    tg.cancel_scope.cancel()
        finally:
            await store.close()

    async def start_versions(self) -> None:
        """The resourceVersion each kind's watch starts from (a list with limit=1 per kind)."""
        for kind in self._kinds.values():
            body = await self._list_page(kind, limit=1, cont=None)
            self._start_versions[kind.type.name] = body["metadata"]["resourceVersion"]

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Watch every kind and publish change events until `close()` (or cancellation)."""
        if not self._start_versions:
            await self.start_versions()
        async with anyio.create_task_group() as tg:
            for kind in self._kinds.values():
                tg.start_soon(self._watch, kind, name=f"k8s-watch-{kind.kind}")
            task_status.started()
            await self._closed.wait()
            tg.cancel_scope.cancel()

    async def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._bus.close()
        await self._client.aclose()

    # -- HTTP -----------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        content = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":"))
            headers["Content-Type"] = content_type
        try:
            resp = await self._client.request(
                method, path, params=params, content=content, headers=headers
            )
        except Exception as e:  # httpx2's transport errors: the API server is unreachable
            if not _is_http_error(e):
                raise
            raise StoreError(f"kubernetes API server: {method} {path}: {e!r}") from e
        try:
            payload = resp.json()
        except ValueError:
            payload = {"message": resp.text}
        return resp.status_code, payload

    @staticmethod
    def _fail(method: str, path: str, status: int, payload: Any) -> StoreError:
        message = payload.get("message") if isinstance(payload, dict) else None
        return StoreError(f"kubernetes API server: {method} {path}: {status} {message or payload}")

    async def _list_page(self, kind: _Kind, *, limit: int, cont: str | None) -> Any:
        params = {"limit": str(limit)}
        if cont:
            params["continue"] = cont
        namespace = None
        if kind.secret:
            namespace = self.system_namespace
            params["fieldSelector"] = f"type={SECRET_TYPE}"
        path = kind.path(namespace)
        status, body = await self._request("GET", path, params=params)
        if status == 404 and not kind.secret:
            raise StoreError(
                f"kubernetes API server: GET {path}: 404: the {kind.kind} custom resource is not"
                " served; are Kuma's CRDs installed?"
            )
        if status != 200:
            raise self._fail("GET", path, status, body)
        return body

    async def _list_all(self, kind: _Kind, mesh: str | None) -> list[Any]:
        items: list[Any] = []
        cont: str | None = None
        while True:
            body = await self._list_page(kind, limit=LIST_CHUNK, cont=cont)
            items.extend(body.get("items") or [])
            cont = (body.get("metadata") or {}).get("continue")
            if not cont:
                break
        if mesh is None:
            return items
        return [o for o in items if self._mesh_of(kind, o) == mesh]

    # -- mapping --------------------------------------------------------------------------------

    def _kind(self, rtype: ResourceType) -> _Kind:
        kind = self._kinds.get(rtype.name)
        if kind is None:
            raise StoreError(f"{rtype.name} cannot be stored in Kubernetes")
        return kind

    def _locate(self, kind: _Kind, name: str) -> tuple[str, str | None]:
        """(Kubernetes name, namespace) of a core name."""
        if kind.secret:
            return name, self.system_namespace
        if kind.namespaced:
            return k8s_name(name)
        return name, None

    def _mesh_of(self, kind: _Kind, obj: Any) -> str:
        if kind.secret:
            labels = obj.get("metadata", {}).get("labels") or {}
            return str(labels.get(MESH_LABEL, "default"))
        if not kind.type.mesh_scoped:
            return ""
        return str(obj.get("mesh") or "")

    def _core_name(self, kind: _Kind, obj: Any) -> str:
        meta = obj["metadata"]
        if kind.secret:
            return str(meta["name"])
        return core_name(meta["name"], meta.get("namespace") if kind.namespaced else None)

    def _to_resource(self, kind: _Kind, obj: Any) -> Resource:
        meta = obj["metadata"]
        created = _parse_time(meta.get("creationTimestamp"))
        rmeta = ResourceMeta(
            name=self._core_name(kind, obj),
            mesh=self._mesh_of(kind, obj),
            version=str(meta.get("resourceVersion", "")),
            creation_time=created,
            modification_time=created,
        )
        if kind.secret:
            data = (obj.get("data") or {}).get("value")
            spec: dict[str, Any] = {"data": data} if data is not None else {}
        else:
            spec = obj.get(_SPEC_FIELD.get(kind.kind, "spec")) or {}
        return Resource(kind.type, rmeta, spec_json=json.dumps(spec, separators=(",", ":")))

    def _object(self, kind: _Kind, resource: Resource, name: str, namespace: str | None) -> Any:
        meta: dict[str, Any] = {"name": name}
        if namespace:
            meta["namespace"] = namespace
        obj: dict[str, Any] = {"apiVersion": kind.api_version, "kind": kind.kind, "metadata": meta}
        if kind.secret:
            meta["labels"] = {MESH_LABEL: resource.meta.mesh}
            obj["type"] = SECRET_TYPE
            value = resource.spec_dict().get("data")
            obj["data"] = {"value": value} if value is not None else {}
            return obj
        if kind.type.mesh_scoped:
            obj["mesh"] = resource.meta.mesh
        obj[_SPEC_FIELD.get(kind.kind, "spec")] = resource.spec_dict()
        return obj

    def _invalid(self, payload: Any) -> ValidationError:
        details = payload.get("details") or {} if isinstance(payload, dict) else {}
        causes = details.get("causes") or []
        if causes:
            return ValidationError(
                Violation(
                    "name" if c.get("field") == "metadata.name" else str(c.get("field", "")),
                    str(c.get("message", "")),
                )
                for c in causes
            )
        return ValidationError([Violation("", str(payload.get("message", payload)))])

    # -- writes ---------------------------------------------------------------------------------

    async def create(self, resource: Resource, *, owner: ResourceKey | None = None) -> None:
        kind = self._kind(resource.type)
        name, namespace = self._locate(kind, resource.meta.name)
        obj = self._object(kind, resource, name, namespace)
        if owner is not None:
            owner_obj = await self._get_object(owner.type, owner.name, owner.mesh)
            owner_kind = self._kinds[owner.type]
            obj["metadata"]["ownerReferences"] = [
                {
                    "apiVersion": owner_kind.api_version,
                    "kind": owner_kind.kind,
                    "name": owner_obj["metadata"]["name"],
                    "uid": owner_obj["metadata"]["uid"],
                }
            ]
        path = kind.path(namespace)
        status, body = await self._request("POST", path, body=obj)
        if status == 409:
            raise ResourceAlreadyExistsError(
                resource.type.name, resource.meta.name, resource.meta.mesh
            )
        if status == 422:
            raise self._invalid(body)
        if status == 404 and namespace is not None:
            raise ValidationError(
                [Violation("name", f'namespace "{namespace}" does not exist in Kubernetes')]
            )
        if status != 201 and status != 200:
            raise self._fail("POST", path, status, body)
        self._set_meta(resource, body)

    @staticmethod
    def _set_meta(resource: Resource, obj: Any) -> None:
        meta = obj["metadata"]
        created = _parse_time(meta.get("creationTimestamp"))
        resource.meta.version = str(meta["resourceVersion"])
        resource.meta.creation_time = created
        resource.meta.modification_time = created

    async def update(self, resource: Resource) -> None:
        kind = self._kind(resource.type)
        key = resource.key
        current = await self._get_object(key.type, key.name, key.mesh)
        if current["metadata"]["resourceVersion"] != resource.meta.version:
            raise ResourceConflictError(key.type, key.name, key.mesh)
        name, namespace = self._locate(kind, key.name)
        obj = self._object(kind, resource, name, namespace)
        meta = dict(current["metadata"])
        meta["resourceVersion"] = resource.meta.version
        if kind.secret:
            meta["labels"] = {**(meta.get("labels") or {}), MESH_LABEL: key.mesh}
        obj["metadata"] = meta
        if not kind.secret:
            # keep what others (kubectl users, controllers) put beside spec and mesh
            obj = {**current, **obj}
        path = kind.path(namespace, name)
        status, body = await self._request("PUT", path, body=obj)
        if status == 409:
            raise ResourceConflictError(key.type, key.name, key.mesh)
        if status == 404:
            raise ResourceNotFoundError(key.type, key.name, key.mesh)
        if status == 422:
            raise self._invalid(body)
        if status != 200:
            raise self._fail("PUT", path, status, body)
        self._set_meta(resource, body)

    async def delete(self, rtype: ResourceType, name: str, mesh: str = "") -> None:
        kind = self._kind(rtype)
        current = await self._get_object(rtype.name, name, mesh)
        k8s, namespace = self._locate(kind, name)
        path = kind.path(namespace, k8s)
        options = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "propagationPolicy": "Background",
            "preconditions": {"uid": current["metadata"]["uid"]},
        }
        status, body = await self._request("DELETE", path, body=options)
        if status in (404, 409):  # gone meanwhile, or replaced by another object of that name
            raise ResourceNotFoundError(rtype.name, name, mesh)
        if status not in (200, 202):
            raise self._fail("DELETE", path, status, body)

    # -- reads ----------------------------------------------------------------------------------

    async def _get_object(self, type_name: str, name: str, mesh: str) -> Any:
        kind = self._kinds.get(type_name)
        if kind is None:
            raise ResourceNotFoundError(type_name, name, mesh)
        try:
            k8s, namespace = self._locate(kind, name)
        except ValidationError:
            raise ResourceNotFoundError(type_name, name, mesh) from None
        path = kind.path(namespace, k8s)
        status, body = await self._request("GET", path)
        if status == 404:
            raise ResourceNotFoundError(type_name, name, mesh)
        if status != 200:
            raise self._fail("GET", path, status, body)
        if kind.secret and body.get("type") != SECRET_TYPE:
            raise ResourceNotFoundError(type_name, name, mesh)  # not one of Kuma's Secrets
        if self._mesh_of(kind, body) != mesh:
            raise ResourceNotFoundError(type_name, name, mesh)
        return body

    async def get(self, rtype: ResourceType, name: str, mesh: str = "") -> Resource:
        kind = self._kind(rtype)
        return self._to_resource(kind, await self._get_object(rtype.name, name, mesh))

    async def list(
        self,
        rtype: ResourceType,
        mesh: str | None = None,
        *,
        size: int | None = None,
        offset: str | None = None,
    ) -> ListResult:
        start = parse_offset(offset)
        kind = self._kind(rtype)
        objects = await self._list_all(kind, mesh)
        objects.sort(key=lambda o: (self._core_name(kind, o), self._mesh_of(kind, o)))
        total = len(objects)
        end = total if not size else min(total, start + size)
        items = [self._to_resource(kind, o) for o in objects[start:end]]
        next_offset = str(end) if size and end < total else None
        return ListResult(items, total, next_offset)

    # -- change events --------------------------------------------------------------------------

    def subscribe(self, *, max_buffer: int = 10_000) -> Subscription:
        return self._bus.subscribe(max_buffer=max_buffer)

    async def _watch(self, kind: _Kind) -> None:
        """Follow one kind's watch forever, resuming where it stopped."""
        version = self._start_versions[kind.type.name]
        delay = RECONNECT_MIN
        namespace = self.system_namespace if kind.secret else None
        path = kind.path(namespace)
        params = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_TIMEOUT),
        }
        if kind.secret:
            params["fieldSelector"] = f"type={SECRET_TYPE}"
        while True:
            try:
                expired = False
                lines = 0
                async with self._client.stream(
                    "GET",
                    path,
                    params={**params, "resourceVersion": version},
                    timeout=_watch_timeout(),
                ) as resp:
                    if resp.status_code == 410:
                        expired = True
                    elif resp.status_code != 200:
                        raise StoreError(f"watch {path}: HTTP {resp.status_code}")
                    else:
                        lines = 0
                        async for line in resp.aiter_lines():
                            if not line.strip():
                                continue
                            lines += 1
                            event = json.loads(line)
                            obj = event.get("object") or {}
                            if event.get("type") == "ERROR":
                                if obj.get("code") == 410:
                                    expired = True
                                    break
                                raise StoreError(f"watch {path}: {obj.get('message', obj)}")
                            version = obj["metadata"]["resourceVersion"]
                            self._publish(kind, event["type"], obj)
                if expired:
                    log.info("watch expired, listing again", kind=kind.kind, version=version)
                    body = await self._list_page(kind, limit=1, cont=None)
                    version = body["metadata"]["resourceVersion"]
                    self._bus.publish(Resync(f"kubernetes watch of {kind.kind} expired"))
                elif lines:
                    delay = RECONNECT_MIN
                else:  # ended without a single event: do not hammer the API server
                    await anyio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX)
            except (StoreError, ValueError, KeyError) as e:
                log.warning("watch failed", kind=kind.kind, error=str(e), retry_in=delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)
            except Exception as e:
                if not _is_http_error(e):
                    raise
                log.warning("watch disconnected", kind=kind.kind, error=repr(e), retry_in=delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX)

    def _publish(self, kind: _Kind, event_type: str, obj: Any) -> None:
        op = {"ADDED": ChangeOp.CREATE, "MODIFIED": ChangeOp.UPDATE, "DELETED": ChangeOp.DELETE}
        change = op.get(event_type)
        if change is None:  # BOOKMARK: only the version moves on
            return
        if kind.secret and obj.get("type") != SECRET_TYPE:
            return
        self._bus.publish(
            ChangeEvent(
                change, kind.type.name, self._mesh_of(kind, obj), self._core_name(kind, obj)
            )
        )


def _is_http_error(e: BaseException) -> bool:
    import httpx
    import httpx2

    return isinstance(e, httpx2.HTTPError | httpx.HTTPError)


def _watch_timeout() -> Any:
    import httpx2

    return httpx2.Timeout(10.0, read=WATCH_TIMEOUT + 30.0)


def _client_from_kubeconfig(kubeconfig: Any, context: str | None) -> Any:
    """An AsyncClient (lightkube's httpx2 client: TLS, tokens, exec plugins) for `kubeconfig`."""
    from lightkube import KubeConfig
    from lightkube.config.client_adapter import AsyncClient, ConnectionParams
    from lightkube.core.exceptions import ConfigError as KubeConfigError

    try:
        if kubeconfig is None:
            config = KubeConfig.from_env()
        elif isinstance(kubeconfig, str | Path):
            config = KubeConfig.from_file(kubeconfig)
        else:
            config = kubeconfig
    except (KubeConfigError, OSError, ValueError) as e:
        where = (
            "in-cluster service account, $KUBECONFIG or ~/.kube/config"
            if kubeconfig is None
            else str(kubeconfig)
        )
        raise StoreError(f"could not load the kubeconfig ({where}): {e}") from e
    single = config.get(context_name=context)
    if single is None:
        raise StoreError(f"kubeconfig: no context {context or '(current-context)'} to use")
    return AsyncClient(single, ConnectionParams())
