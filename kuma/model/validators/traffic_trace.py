"""TrafficTrace: at least one selector with at least one tag; `conf.backend` may be empty."""

from __future__ import annotations

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.selectors import SelectorsOpts, validate_selectors
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["validate_traffic_trace"]

_SELECTORS = SelectorsOpts(require_at_least_one_selector=True, require_at_least_one_tag=True)


def validate_traffic_trace(
    name: str, mesh: str, spec: mesh_pb.TrafficTrace
) -> ValidationError | None:
    errs = Violations()
    validate_selectors(errs, Path("selectors"), spec.selectors, _SELECTORS)
    return errs.error()
