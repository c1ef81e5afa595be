"""lightkube resource classes whose objects stay plain JSON dicts.

lightkube decodes its typed core models strictly (msgspec): one object with an unexpected shape
would fail a whole list or watch. The controllers only read a few fields and pass objects to
`kuma.k8s.convert` as dicts anyway, so they use these untyped ("generic") classes for core kinds
too. They are not registered in lightkube's resource registry (the typed classes stay there).
"""

from __future__ import annotations

from typing import Any

from lightkube.generic_resource import (
    GenericGlobalResource,
    GenericNamespacedResource,
    create_api_info,
    create_namespaced_resource,
)

from kuma.k8s import crds

__all__ = [
    "DataplaneResource",
    "EventResource",
    "NamespaceResource",
    "PodResource",
    "ServiceResource",
]


def _core(kind: str, plural: str, *, namespaced: bool) -> Any:
    base: Any = GenericNamespacedResource if namespaced else GenericGlobalResource
    return type(f"Raw{kind}", (base,), {"_api_info": create_api_info("", "v1", kind, plural)})


PodResource: Any = _core("Pod", "pods", namespaced=True)
ServiceResource: Any = _core("Service", "services", namespaced=True)
EventResource: Any = _core("Event", "events", namespaced=True)
NamespaceResource: Any = _core("Namespace", "namespaces", namespaced=False)

_DATAPLANE = crds.for_type("Dataplane")
DataplaneResource: Any = create_namespaced_resource(
    crds.GROUP, crds.VERSION, _DATAPLANE.kind, _DATAPLANE.plural
)
"""Kuma's Dataplane CR (registered with lightkube, idempotently, like any generic resource)."""
