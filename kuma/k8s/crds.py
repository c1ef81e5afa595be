"""Kuma's CustomResourceDefinitions (`kuma.io/v1alpha1`), derived from the type registry.

One `CrdType` per Kuma type stored as a CRD in Kubernetes mode. Secrets are not CRDs: Kubernetes
mode keeps them as core `v1/Secret` objects in the system namespace. Kuma 0.7.3 makes Mesh, Zone
and ZoneInsight cluster-scoped and every other type namespaced; Retry and Timeout (Kuma 1.1 shapes)
follow the other policies.

Object shape (0.7.3): `{apiVersion: kuma.io/v1alpha1, kind, metadata, mesh: <mesh>, spec: {...}}`:
the mesh of a mesh-scoped object is a top-level field, not part of `spec`; Mesh has only `spec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kuma.model import registry
from kuma.model.resource import ResourceType

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "CrdType",
    "all_crds",
    "by_kind",
    "by_plural",
    "crd_manifest",
    "for_type",
]

GROUP = "kuma.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

_CLUSTER_SCOPED = frozenset({"Mesh", "Zone", "ZoneInsight"})
_NOT_CRDS = frozenset({"Secret"})
_STATUS_KINDS = frozenset({"DataplaneInsight", "ZoneInsight"})


@dataclass(frozen=True)
class CrdType:
    """How one Kuma type appears in the Kubernetes API."""

    type: ResourceType
    kind: str
    """Kubernetes kind, the same as Kuma's type name: `TrafficRoute`."""
    plural: str
    """Resource name in API paths: `trafficroutes`."""
    singular: str
    """Lower-case kind: `trafficroute`."""
    namespaced: bool
    """True for objects living in a namespace (Dataplane and policies at 0.7.3)."""

    @property
    def name(self) -> str:
        """The CRD's own metadata.name: `trafficroutes.kuma.io`."""
        return f"{self.plural}.{GROUP}"

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The API path of the collection (or of one object when `name` is given)."""
        base = f"/apis/{API_VERSION}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("sh"):  # Mesh -> meshes
        return lower + "es"
    if lower.endswith("y"):  # Retry -> retries
        return lower[:-1] + "ies"
    return lower + "s"


_CRDS: tuple[CrdType, ...] = tuple(
    CrdType(
        type=t,
        kind=t.name,
        plural=_plural(t.name),
        singular=t.name.lower(),
        namespaced=t.name not in _CLUSTER_SCOPED,
    )
    for t in registry.all_types()
    if t.name not in _NOT_CRDS
)
_BY_TYPE = {c.type.name: c for c in _CRDS}
_BY_KIND = {c.kind: c for c in _CRDS}
_BY_PLURAL = {c.plural: c for c in _CRDS}


def all_crds() -> tuple[CrdType, ...]:
    return _CRDS


def for_type(type_name: str) -> CrdType:
    """The CRD of Kuma type `type_name`; KeyError for Secret or an unknown type."""
    return _BY_TYPE[type_name]


def by_kind(kind: str) -> CrdType | None:
    return _BY_KIND.get(kind)


def by_plural(plural: str) -> CrdType | None:
    return _BY_PLURAL.get(plural)


def crd_manifest(crd: CrdType) -> dict[str, Any]:
    """The `apiextensions.k8s.io/v1` CustomResourceDefinition object for `crd`.

    The schema keeps `spec` (and `mesh`) open (`x-kubernetes-preserve-unknown-fields`): Kuma's
    validating webhook, not the OpenAPI schema, checks specs, with Kuma's own messages.
    """
    properties: dict[str, Any] = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }
    if crd.type.mesh_scoped:
        properties["mesh"] = {"type": "string"}
    if crd.kind in _STATUS_KINDS:  # insights keep their content under `status`, as in Kuma
        properties["status"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd.name},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": crd.kind,
                "listKind": f"{crd.kind}List",
                "plural": crd.plural,
                "singular": crd.singular,
                "categories": ["kuma"],
            },
            "scope": "Namespaced" if crd.namespaced else "Cluster",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": properties}},
                }
            ],
        },
    }
