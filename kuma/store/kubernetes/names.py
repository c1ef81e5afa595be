"""Kuma's names on Kubernetes: `<name>.<namespace>` for objects in a namespace.

Kuma 0.7.3 (`pkg/util/k8s/name_converter.go`): the core name of a namespaced object is its
Kubernetes name, a dot and its namespace; the namespace is what follows the *last* dot (a
namespace cannot contain dots, a name can). A core name without a dot has no namespace and is
rejected with Kuma's message; it is never silently moved into some default namespace, because
the name read back (`name.<that namespace>`) would not be the name written. Cluster-scoped
objects (Mesh, Zone, ZoneInsight) keep their name as is; Secrets live in the system namespace
under their core name.
"""

from __future__ import annotations

from kuma.errors import ValidationError, Violation

__all__ = ["NO_NAMESPACE", "core_name", "k8s_name"]

NO_NAMESPACE = 'name must include namespace after the dot, ex. "name.namespace"'


def k8s_name(core: str) -> tuple[str, str]:
    """(Kubernetes name, namespace) of a namespaced object's core name; ValidationError if none."""
    name, dot, namespace = core.rpartition(".")
    if not dot:
        raise ValidationError([Violation("name", NO_NAMESPACE)])
    if not namespace:
        raise ValidationError([Violation("name", "namespace must be non-empty")])
    if not name:
        raise ValidationError([Violation("name", "name must be non-empty")])
    return name, namespace


def core_name(name: str, namespace: str | None) -> str:
    """The core name of a Kubernetes object (`name.namespace`, or `name` when cluster-scoped)."""
    return f"{name}.{namespace}" if namespace else name
