"""The hand-written MADS wire encoding gives the bytes betterproto2 gives, and they parse back
(with betterproto2, and inside a DiscoveryResponse with the upb protobuf runtime)."""

from __future__ import annotations

import pytest
from envoy.service.discovery.v3 import discovery_pb2

from kuma.mads import MONITORING_ASSIGNMENT_TYPE, encode_assignment
from kuma.mads.wire import resource_entry
from kuma.pb.kuma.observability.v1alpha1 import MonitoringAssignment, MonitoringAssignmentTarget

CASES = [
    MonitoringAssignment(),
    MonitoringAssignment(name="/meshes/default/dataplanes/backend-01"),
    MonitoringAssignment(
        name="/meshes/default/dataplanes/backend-01",
        targets=[MonitoringAssignmentTarget(labels={"__address__": "192.168.0.1:5670"})],
        labels={"job": "backend", "kuma_io_services": ",backend,", "empty": "", "": "no-key"},
    ),
    MonitoringAssignment(
        name="n" * 300,  # multi-byte lengths
        targets=[
            MonitoringAssignmentTarget(),
            MonitoringAssignmentTarget(labels={"a": "b" * 20_000}),
        ],
        labels={"zone": "zürich-東京", "x" * 200: "y" * 129},
    ),
]


@pytest.mark.parametrize("assignment", CASES)
def test_bytes_match_betterproto2_and_parse_back(assignment: MonitoringAssignment) -> None:
    data = encode_assignment(assignment)
    assert data == bytes(assignment)
    back = MonitoringAssignment.parse(data)
    assert back.name == assignment.name
    assert [dict(t.labels) for t in back.targets] == [dict(t.labels) for t in assignment.targets]
    assert dict(back.labels) == dict(assignment.labels)


def test_a_resource_entry_is_an_any_inside_a_discovery_response() -> None:
    value = encode_assignment(CASES[2])
    body = resource_entry(MONITORING_ASSIGNMENT_TYPE, value) * 2
    response = discovery_pb2.DiscoveryResponse.FromString(body)
    assert [(r.type_url, r.value) for r in response.resources] == [
        (MONITORING_ASSIGNMENT_TYPE, value)
    ] * 2
