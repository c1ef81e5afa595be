"""TrafficLog: `conf.backend` may be empty (the mesh's default logging backend is used)."""

from __future__ import annotations

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.selectors import ONLY_SERVICE_TAG_ALLOWED, validate_selectors
from kuma.model.validators.traffic_route import SOURCES
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["validate_traffic_log"]


def validate_traffic_log(name: str, mesh: str, spec: mesh_pb.TrafficLog) -> ValidationError | None:
    errs = Violations()
    validate_selectors(errs, Path("sources"), spec.sources, SOURCES)
    validate_selectors(errs, Path("destinations"), spec.destinations, ONLY_SERVICE_TAG_ALLOWED)
    # Kuma does not check that conf.backend names one of the mesh's backends.
    return errs.error()
