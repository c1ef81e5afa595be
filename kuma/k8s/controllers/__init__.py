"""Kubernetes controllers of kuma-cp: meshed Pods (+ Services, Namespaces) -> Dataplane CRs.

`PodController(client).run(task_status=...)` is the whole thing; `kuma.k8s.convert` holds the
conversion rules. See docs/kubernetes.md ("Pods, Services and Dataplanes").
"""

from kuma.k8s.controllers.events import EventRecorder
from kuma.k8s.controllers.informer import Informer
from kuma.k8s.controllers.pod import (
    CREATED_REASON,
    FAILED_REASON,
    UPDATED_REASON,
    DataplaneResource,
    PodController,
)
from kuma.k8s.controllers.runner import kube_client, run_controllers

__all__ = [
    "CREATED_REASON",
    "FAILED_REASON",
    "UPDATED_REASON",
    "DataplaneResource",
    "EventRecorder",
    "Informer",
    "PodController",
    "kube_client",
    "run_controllers",
]
