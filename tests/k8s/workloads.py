"""Kubernetes test objects: load YAML fixtures, and make the Pods a Deployment would get.

No kubelet or ReplicaSet controller runs in tests, so `pod_for` builds the Pod Kubernetes would
create from a Deployment's template (`<deployment>-<replicaset hash>-<5 chars>`, with the
`pod-template-hash` label), as admitted by Kuma's injector (the annotations it adds, §9.3) and
scheduled (a pod IP).
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import yaml

__all__ = ["TESTDATA", "inject_annotations", "load", "load_all", "pod_for"]

TESTDATA = Path(__file__).parent / "testdata"

_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' SafeEncodeString alphabet


def load_all(relative: str) -> list[dict[str, Any]]:
    with open(TESTDATA / relative) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def load(relative: str, kind: str, name: str) -> dict[str, Any]:
    for doc in load_all(relative):
        if doc.get("kind") == kind and doc["metadata"]["name"] == name:
            return doc
    raise KeyError(f"{kind} {name} not in {relative}")


def _safe(seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(_ALPHABET[b % len(_ALPHABET)] for b in digest[:length])


def inject_annotations(mesh: str = "default") -> dict[str, str]:
    """The annotations Kuma's sidecar injector puts on a pod it meshes."""
    return {
        "kuma.io/mesh": mesh,
        "kuma.io/sidecar-injected": "true",
        "kuma.io/transparent-proxying": "enabled",
        "kuma.io/transparent-proxying-inbound-port": "15006",
        "kuma.io/transparent-proxying-outbound-port": "15001",
    }


def pod_for(
    deployment: dict[str, Any],
    *,
    ip: str,
    replica: int = 0,
    mesh: str | None = "default",
) -> dict[str, Any]:
    """A running Pod of `deployment`; `mesh=None` leaves it un-injected."""
    name = deployment["metadata"]["name"]
    template = copy.deepcopy(deployment["spec"]["template"])
    rs_hash = _safe(repr(template), 10)
    meta = template.get("metadata") or {}
    labels = {**(meta.get("labels") or {}), "pod-template-hash": rs_hash}
    annotations = dict(meta.get("annotations") or {})
    if mesh is not None:
        annotations.update(inject_annotations(mesh))
    pod_meta: dict[str, Any] = {
        "name": f"{name}-{rs_hash}-{_safe(f'{name}/{replica}', 5)}",
        "namespace": deployment["metadata"]["namespace"],
        "labels": labels,
    }
    if annotations:
        pod_meta["annotations"] = annotations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": template["spec"],
        "status": {"phase": "Running", "podIP": ip},
    }
