"""Monitoring assignments become Prometheus target groups as Kuma 0.7.3's converter makes them."""

from __future__ import annotations

from kuma.pb.kuma.observability.v1alpha1 import MonitoringAssignment, MonitoringAssignmentTarget
from kuma.sd.targets import TargetGroup, sanitize_label_name, to_target_groups


def _assignment(name: str, address: str, **labels: str) -> MonitoringAssignment:
    return MonitoringAssignment(
        name=name,
        targets=[MonitoringAssignmentTarget(labels={"__address__": address})],
        labels=labels,
    )


def test_one_group_per_target_with_merged_labels() -> None:
    assignment = MonitoringAssignment(
        name="/meshes/default/dataplanes/backend-01",
        targets=[
            MonitoringAssignmentTarget(
                labels={"__address__": "192.168.0.1:5670", "instance": "backend-01", "env": "prod"}
            ),
            MonitoringAssignmentTarget(labels={"__address__": "192.168.0.1:5671"}),
        ],
        labels={"job": "backend", "mesh": "default", "instance": "shared", "kuma.io/service": "b"},
    )
    assert to_target_groups([assignment]) == [
        TargetGroup(
            "/meshes/default/dataplanes/backend-01/0",
            ("192.168.0.1:5670",),
            {
                "job": "backend",
                "mesh": "default",
                "instance": "backend-01",  # the target's label wins
                "kuma_io_service": "b",
                "env": "prod",
            },
        ),
        TargetGroup(
            "/meshes/default/dataplanes/backend-01/1",
            ("192.168.0.1:5671",),
            {"job": "backend", "mesh": "default", "instance": "shared", "kuma_io_service": "b"},
        ),
    ]


def test_groups_are_sorted_by_source_and_address_is_never_a_label() -> None:
    groups = to_target_groups(
        [
            _assignment("/meshes/m/dataplanes/web", "10.0.0.2:5670", job="web"),
            _assignment("/meshes/m/dataplanes/api", "10.0.0.1:5670", job="api"),
        ]
    )
    assert [g.source for g in groups] == [
        "/meshes/m/dataplanes/api/0",
        "/meshes/m/dataplanes/web/0",
    ]
    assert all("__address__" not in g.labels for g in groups)


def test_address_from_the_assignment_labels_and_targets_without_address() -> None:
    shared = MonitoringAssignment(
        name="a",
        targets=[MonitoringAssignmentTarget(labels={"zone": "z1"})],
        labels={"__address__": "10.0.0.9:9090"},
    )
    no_address = MonitoringAssignment(
        name="b", targets=[MonitoringAssignmentTarget(labels={"zone": "z1"})]
    )
    assert to_target_groups([shared, no_address]) == [
        TargetGroup("a/0", ("10.0.0.9:9090",), {"zone": "z1"})
    ]


def test_label_names_are_sanitised() -> None:
    assert sanitize_label_name("kuma.io/service") == "kuma_io_service"
    assert sanitize_label_name("k8s.kuma.io/namespace") == "k8s_kuma_io_namespace"
    assert sanitize_label_name("version") == "version"
    assert sanitize_label_name("héllo-wörld") == "h_llo_w_rld"
    assert sanitize_label_name("1st") == "_st"
    assert sanitize_label_name("") == "_"
    group = to_target_groups([_assignment("x", "h:1", **{"team.name": "a", "1x": "b"})])[0]
    assert group.labels == {"team_name": "a", "_x": "b"}
