"""A list+watch cache of one Kubernetes kind (a small client-go informer, on lightkube).

`Informer.run` lists the kind, then watches from the list's resourceVersion. Whenever the watch
fails (the connection drops, the API server is away, a 410 Gone because the version was
compacted), it waits (exponential backoff, capped) and lists again; a relist is diffed against
the cache, so handlers see exactly the ADDED / MODIFIED / DELETED changes that were missed.

Objects are kept as plain JSON dicts (the API's shape), keyed by (namespace, name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import httpx
import structlog
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.core.resource import NamespacedResource

from kuma.errors import KumaError

__all__ = ["Change", "Handler", "Informer", "Key", "NotServedError", "key_of"]

log = structlog.get_logger("kuma.k8s.controllers")

Key = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped kinds."""


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


Change = tuple[dict[str, Any] | None, dict[str, Any] | None]
"""(old, new): old is None when added, new is None when deleted."""
Handler = Callable[[dict[str, Any] | None, dict[str, Any] | None], None]


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return dict(obj)
    out: dict[str, Any] = obj.to_dict()
    return out


class NotServedError(KumaError):
    """The API server does not know the kind at all (a CRD that is not installed)."""


class Informer:
    """Keeps `cache` in step with the API server and calls `handler(old, new)` on every change.

    `resource` is a lightkube resource class (typed, or generic for CRDs). Handlers run in the
    informer's task and must not block.
    """

    WATCH_TIMEOUT_SECONDS = 290
    """The server ends each watch after this long; lightkube then resumes it where it stopped."""

    def __init__(
        self,
        client: AsyncClient,
        resource: Any,
        handler: Handler,
        *,
        name: str,
        min_backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.client = client
        self.resource = resource
        self.handler = handler
        self.name = name
        self.cache: dict[Key, dict[str, Any]] = {}
        self.relists = 0
        """How many times the kind was listed (1 after start-up; more after watch failures)."""
        # namespaced kinds are listed and watched across all namespaces
        self._scope: dict[str, Any] = (
            {"namespace": "*"} if issubclass(resource, NamespacedResource) else {}
        )
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.cache.get((namespace, name))

    def items(self) -> list[dict[str, Any]]:
        return list(self.cache.values())

    def _notify(self, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        try:
            self.handler(old, new)
        except Exception:  # a handler bug must not stop the watch (and every later event)
            log.exception("change handler failed", kind=self.name, object=key_of(new or old or {}))

    async def _relist(self) -> str:
        """List everything, update the cache (notifying the differences), return the version."""
        listing = self.client.list(self.resource, **self._scope)
        fresh: dict[Key, dict[str, Any]] = {}
        async for item in listing:
            obj = _as_dict(item)
            fresh[key_of(obj)] = obj
        version = listing.resourceVersion
        self.relists += 1
        old_cache, self.cache = self.cache, fresh
        for key, gone in old_cache.items():
            if key not in fresh:
                self._notify(gone, None)
        for key, new in fresh.items():
            old = old_cache.get(key)
            if old is None:
                self._notify(None, new)
            elif _version(old) != _version(new):
                self._notify(old, new)
        return version

    def _apply(self, event: str, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        old = self.cache.get(key)
        if event == "DELETED":
            if old is not None:
                del self.cache[key]
                self._notify(old, None)
        elif event in ("ADDED", "MODIFIED"):
            if old is not None and _older(obj, old):
                return  # the cache already holds our own later write of this object
            self.cache[key] = obj
            if old is None or _version(old) != _version(obj):
                self._notify(old, obj)

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """List, report started, then watch forever (relisting after any failure).

        NotServedError when the very first list finds the kind unknown to the API server; any
        other failure is retried with backoff, before and after start-up."""
        backoff = self._min_backoff
        started = False
        while True:
            try:
                version = await self._relist()
                if not started:
                    started = True
                    task_status.started()
                log.debug("listed", kind=self.name, objects=len(self.cache), version=version)
                watch = self.client.watch(
                    self.resource,
                    **self._scope,
                    resource_version=version,
                    server_timeout=self.WATCH_TIMEOUT_SECONDS,
                )
                async for event, item in watch:
                    self._apply(event, _as_dict(item))
                    backoff = self._min_backoff
            except ApiError as e:
                code = e.status.code if e.status is not None else None
                if code == 410:
                    log.info("watch expired, relisting", kind=self.name)
                    continue  # relist at once
                if code == 404 and not started:
                    raise NotServedError(
                        f"the Kubernetes API server does not serve {self.name} objects; "
                        "are Kuma's CRDs installed?"
                    ) from e
                log.warning("watch failed", kind=self.name, code=code, error=str(e))
            except (httpx.HTTPError, OSError) as e:
                log.warning("watch connection failed", kind=self.name, error=repr(e))
            await anyio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)


def _version(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def _older(obj: dict[str, Any], than: dict[str, Any]) -> bool:
    """True when `obj` is an earlier version than `than` (resourceVersions are opaque strings to
    clients, but every API server backed by etcd issues increasing integers; others never match)."""
    a, b = _version(obj), _version(than)
    return a.isdigit() and b.isdigit() and int(a) < int(b)
