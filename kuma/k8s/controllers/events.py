"""Kubernetes Events about Pods (what `kubectl describe pod` shows under "Events").

Like client-go's recorder, a repeat of the last event about the same object (same type, reason
and message) bumps that Event's `count` and `lastTimestamp` instead of creating another one.
Recording never raises: an Event that cannot be written is logged and dropped.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import httpx
import structlog
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

from kuma.k8s.controllers.resources import EventResource

__all__ = ["COMPONENT", "EventRecorder"]

log = structlog.get_logger("kuma.k8s.controllers")

COMPONENT = "k8s.kuma.io/dataplane-generator"
"""The event source Kuma's pod controller reports as."""


def _event(body: dict[str, Any]) -> Any:
    return EventResource(body)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(self, client: AsyncClient, component: str = COMPONENT) -> None:
        self.client = client
        self.component = component
        self._last: dict[tuple[str, str], tuple[tuple[str, str, str], dict[str, Any]]] = {}

    def forget(self, namespace: str, name: str) -> None:
        self._last.pop((namespace, name), None)

    async def record(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """An Event of `type_` (Normal/Warning) about `obj` (a Pod)."""
        meta = obj.get("metadata") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name") or ""
        what = (type_, reason, message)
        now = _now()
        last = self._last.get((namespace, name))
        try:
            if last is not None and last[0] == what:
                body = dict(last[1])
                body["count"] = int(body.get("count") or 1) + 1
                body["lastTimestamp"] = now
                saved = await self.client.replace(_event(body))
            else:
                body = {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {
                        "name": f"{name}.{secrets.token_hex(8)}",
                        "namespace": namespace,
                    },
                    "involvedObject": {
                        "apiVersion": obj.get("apiVersion") or "v1",
                        "kind": obj.get("kind") or "Pod",
                        "namespace": namespace,
                        "name": name,
                        "uid": meta.get("uid"),
                        "resourceVersion": meta.get("resourceVersion"),
                    },
                    "type": type_,
                    "reason": reason,
                    "message": message,
                    "source": {"component": self.component},
                    "reportingComponent": self.component,
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                }
                saved = await self.client.create(_event(body))
            self._last[(namespace, name)] = (what, saved.to_dict())
        except (ApiError, httpx.HTTPError, OSError) as e:
            self._last.pop((namespace, name), None)
            log.warning(
                "could not record an event",
                pod=f"{name}.{namespace}",
                reason=reason,
                error=str(e),
            )
