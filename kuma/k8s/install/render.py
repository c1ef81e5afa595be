"""Turning manifests (plain dicts) into the multi-document YAML `kumactl install` prints.

Documents come out in Helm's install order by kind (Namespace, Secret, ConfigMap,
ServiceAccount, CustomResourceDefinition, RBAC, Service, Deployment, ...; kinds Helm does not
know, such as webhook configurations, last and by kind name), each after a `---` line, keys in
the order they were built, multi-line strings as literal blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

__all__ = ["INSTALL_ORDER", "dump_documents", "sort_by_kind"]

INSTALL_ORDER = (
    "Namespace",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "Secret",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ServiceAccount",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "Ingress",
    "APIService",
)
_RANK = {kind: i for i, kind in enumerate(INSTALL_ORDER)}


def sort_by_kind(docs: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Stable sort into INSTALL_ORDER; unknown kinds after every known one, by kind name."""

    def key(doc: Mapping[str, Any]) -> tuple[int, str]:
        kind = str(doc.get("kind", ""))
        return (_RANK[kind], "") if kind in _RANK else (len(_RANK), kind)

    return sorted(docs, key=key)


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def _indent_lists(dumper: type[yaml.SafeDumper]) -> None:
    def increase_indent(self: Any, flow: bool = False, indentless: bool = False) -> Any:
        return yaml.SafeDumper.increase_indent(self, flow, False)

    dumper.increase_indent = increase_indent  # type: ignore[method-assign]


_indent_lists(_Dumper)


def dump_documents(docs: Iterable[Mapping[str, Any]]) -> str:
    """`---`-separated YAML documents, sorted by kind."""
    out = []
    for doc in sort_by_kind(docs):
        text = yaml.dump(
            dict(doc), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 16
        )
        out.append("---\n" + text)
    return "".join(out)
