"""HealthCheck: connection-policy selectors; `conf` with non-zero interval, timeout, thresholds."""

from __future__ import annotations

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.common import validate_duration, validate_threshold
from kuma.model.validators.selectors import ONLY_SERVICE_TAG_ALLOWED, validate_selectors
from kuma.model.validators.traffic_route import SOURCES
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["validate_health_check"]


def validate_health_check(
    name: str, mesh: str, spec: mesh_pb.HealthCheck
) -> ValidationError | None:
    errs = Violations()
    validate_selectors(errs, Path("sources"), spec.sources, SOURCES)
    validate_selectors(errs, Path("destinations"), spec.destinations, ONLY_SERVICE_TAG_ALLOWED)
    path = Path("conf")
    conf = spec.conf
    if conf is None:
        errs.add(path, "has to be defined")
        return errs.error()
    validate_duration(errs, path.field("interval"), conf.interval)
    validate_duration(errs, path.field("timeout"), conf.timeout)
    validate_threshold(errs, path.field("unhealthyThreshold"), conf.unhealthy_threshold)
    validate_threshold(errs, path.field("healthyThreshold"), conf.healthy_threshold)
    return errs.error()
