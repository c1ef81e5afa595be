"""Monitoring assignments -> Prometheus target groups (what kuma-prometheus-sd writes).

    groups = to_target_groups(assignments)   # sorted by source, one group per target

Each target of an assignment becomes one group (Prometheus's `targetgroup.Group`):

* `source` is `<assignment name>/<index of the target>`;
* `targets` holds the target's `__address__`;
* `labels` are the assignment's labels merged with the target's (the target wins on a clash),
  without `__address__`, every name sanitised for Prometheus.

A target without an `__address__` cannot be scraped and is left out (Kuma 0.7.3 would write it
with an empty address, which Prometheus then refuses to scrape).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "ADDRESS_LABEL",
    "AssignmentLike",
    "TargetGroup",
    "TargetLike",
    "sanitize_label_name",
    "to_target_groups",
]

ADDRESS_LABEL = "__address__"

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


class TargetLike(Protocol):
    """One target of a monitoring assignment (the generated `MonitoringAssignmentTarget`)."""

    @property
    def labels(self) -> Mapping[str, str]: ...


class AssignmentLike(Protocol):
    """A monitoring assignment (the generated `MonitoringAssignment` message)."""

    @property
    def name(self) -> str: ...

    @property
    def targets(self) -> Sequence[TargetLike]: ...

    @property
    def labels(self) -> Mapping[str, str]: ...


@dataclass(frozen=True, slots=True)
class TargetGroup:
    """One entry of a file_sd file: scrape `targets`, attaching `labels` to their series."""

    source: str
    targets: tuple[str, ...]
    labels: Mapping[str, str]

    def to_json(self) -> dict[str, object]:
        """The file_sd shape: `{"targets": [...], "labels": {...}}`, labels sorted by name."""
        return {"targets": list(self.targets), "labels": dict(sorted(self.labels.items()))}


def sanitize_label_name(name: str) -> str:
    """A valid Prometheus label name for `name` (`kuma.io/service` -> `kuma_io_service`).

    Every character outside `[a-zA-Z0-9_]` becomes `_`, as Prometheus's SanitizeLabelName does;
    a leading digit becomes `_` too and an empty name becomes `_`, because Prometheus refuses a
    whole file_sd file that holds one invalid label name.
    """
    if not name:
        return "_"
    sanitized = _INVALID.sub("_", name)
    if sanitized[0].isdigit():
        sanitized = "_" + sanitized[1:]
    return sanitized


def _sanitized(labels: Mapping[str, str]) -> dict[str, str]:
    return {sanitize_label_name(k): v for k, v in labels.items()}


def to_target_groups(assignments: Iterable[AssignmentLike]) -> list[TargetGroup]:
    """Every target of every assignment as a target group, sorted by source."""
    groups: list[TargetGroup] = []
    for assignment in assignments:
        common = _sanitized(assignment.labels)
        for i, target in enumerate(assignment.targets):
            labels = {**common, **_sanitized(target.labels)}
            address = labels.pop(ADDRESS_LABEL, "")
            if not address:
                continue
            groups.append(TargetGroup(f"{assignment.name}/{i}", (address,), labels))
    groups.sort(key=lambda g: g.source)
    return groups
