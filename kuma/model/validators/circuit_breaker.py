"""CircuitBreaker: connection-policy selectors; at least one detector; percentages <= 100."""

from __future__ import annotations

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.selectors import ONLY_SERVICE_TAG_ALLOWED, validate_selectors
from kuma.model.validators.traffic_route import SOURCES
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["has_detectors", "validate_circuit_breaker"]


def has_detectors(spec: mesh_pb.CircuitBreaker) -> bool:
    """True when at least one detector is configured (an empty one, `totalErrors: {}`, counts)."""
    detectors = spec.conf.detectors if spec.conf is not None else None
    if detectors is None:
        return False
    return any(
        d is not None
        for d in (
            detectors.total_errors,
            detectors.gateway_errors,
            detectors.local_errors,
            detectors.standard_deviation,
            detectors.failure,
        )
    )


def _percentage(errs: Violations, path: Path, value: int | None) -> None:
    if value is not None and value > 100:
        errs.add(path, "has to be in [0.0 - 100.0] range")


def validate_circuit_breaker(
    name: str, mesh: str, spec: mesh_pb.CircuitBreaker
) -> ValidationError | None:
    errs = Violations()
    validate_selectors(errs, Path("sources"), spec.sources, SOURCES)
    validate_selectors(errs, Path("destinations"), spec.destinations, ONLY_SERVICE_TAG_ALLOWED)
    root = Path("conf")
    if not has_detectors(spec):
        errs.add(root, "must have at least one of the detectors configured")
    conf = spec.conf
    if conf is not None:
        _percentage(errs, root.field("maxEjectionPercent"), conf.max_ejection_percent)
        failure = conf.detectors.failure if conf.detectors is not None else None
        if failure is not None:
            _percentage(
                errs, root.field("detectors").field("failure").field("threshold"), failure.threshold
            )
    return errs.error()
