"""Where the webhooks read cluster state: namespaces and Mesh objects.

The injector needs the pod's Namespace (its `kuma.io/sidecar-injection` and `kuma.io/mesh`
annotations) and must check that the chosen Mesh exists; the owner-reference mutator needs the
Mesh object's `uid`. Both go through `ClusterLookup`, so the same handlers run against the
Kubernetes API in kuma-cp (`LightkubeLookup`) and against plain dicts in tests (`DictLookup`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["ClusterLookup", "DictLookup", "LightkubeLookup", "LookupError_"]


class LookupError_(Exception):
    """The cluster could not be asked (API server unreachable, forbidden, ...)."""


class ClusterLookup(Protocol):
    """Read access to the cluster objects the webhooks depend on.

    Both methods return the object as a Kubernetes JSON map, or None when it does not exist;
    they raise `LookupError_` when the answer is unknown (the webhook then errors).
    """

    async def namespace(self, name: str) -> Mapping[str, Any] | None: ...

    async def mesh(self, name: str) -> Mapping[str, Any] | None: ...


class DictLookup:
    """Objects held in memory: `DictLookup(namespaces={"default": {...}}, meshes={...})`.

    A value may be a whole object or just its metadata map's content shorthand
    (`{"annotations": {...}}`); shorthand is wrapped as `{"metadata": {"name": ..., ...}}`.
    """

    def __init__(
        self,
        *,
        namespaces: Mapping[str, Mapping[str, Any]] | None = None,
        meshes: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.namespaces = {k: _object(k, v) for k, v in (namespaces or {}).items()}
        self.meshes = {k: _object(k, v) for k, v in (meshes or {}).items()}

    async def namespace(self, name: str) -> Mapping[str, Any] | None:
        return self.namespaces.get(name)

    async def mesh(self, name: str) -> Mapping[str, Any] | None:
        return self.meshes.get(name)


def _object(name: str, value: Mapping[str, Any]) -> dict[str, Any]:
    if "metadata" in value:
        return dict(value)
    return {"metadata": {"name": name, **value}}


class LightkubeLookup:
    """Reads through a lightkube `AsyncClient` (kuma-cp's in-cluster or kubeconfig client)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def namespace(self, name: str) -> Mapping[str, Any] | None:
        from lightkube.resources.core_v1 import Namespace

        return await self._get(Namespace, name)

    async def mesh(self, name: str) -> Mapping[str, Any] | None:
        from lightkube.generic_resource import create_global_resource

        from kuma.k8s import crds

        crd = crds.for_type("Mesh")
        mesh_cls = create_global_resource(crds.GROUP, crds.VERSION, crd.kind, crd.plural)
        return await self._get(mesh_cls, name)

    async def _get(self, res: Any, name: str) -> Mapping[str, Any] | None:
        from lightkube import ApiError

        try:
            obj = await self.client.get(res, name=name)
        except ApiError as e:
            if e.status.code == 404:
                return None
            raise LookupError_(f"{res.__name__} {name!r}: {e.status.message}") from e
        except Exception as e:  # httpx transport errors: the API server is unreachable
            raise LookupError_(f"{getattr(res, '__name__', res)} {name!r}: {e}") from e
        out: Mapping[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
        return out
