"""MADS: the Monitoring Assignment Discovery Service of kuma-cp (port 5676). See docs/mads.md.

`generator` turns a dataplane of a mesh with Prometheus metrics into a `MonitoringAssignment`,
`wire` serialises them, `index` keeps the current set of them from store change events, `stream` is the sans-IO state of
one xDS stream, and `server` serves them over grpclib.
"""

from kuma.mads.generator import (
    MONITORING_ASSIGNMENT_TYPE,
    assignment_for,
    assignment_name,
    sanitize_label_name,
)
from kuma.mads.index import AssignmentIndex, AssignmentSet, NameExtensions
from kuma.mads.server import (
    MADS_FETCH_METHOD,
    MADS_SERVICE,
    MADS_STREAM_METHOD,
    EncodedResponse,
    MadsServer,
    MadsStream,
)
from kuma.mads.wire import encode_assignment

__all__ = [
    "MADS_FETCH_METHOD",
    "MADS_SERVICE",
    "MADS_STREAM_METHOD",
    "MONITORING_ASSIGNMENT_TYPE",
    "AssignmentIndex",
    "AssignmentSet",
    "EncodedResponse",
    "MadsServer",
    "MadsStream",
    "NameExtensions",
    "assignment_for",
    "assignment_name",
    "encode_assignment",
    "sanitize_label_name",
]
