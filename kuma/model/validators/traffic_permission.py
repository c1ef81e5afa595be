"""TrafficPermission: sources are exactly `{kuma.io/service}`; destinations need a service tag."""

from __future__ import annotations

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.selectors import (
    ONLY_SERVICE_TAG_ALLOWED,
    SelectorsOpts,
    validate_selectors,
)
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["validate_traffic_permission"]

_DESTINATIONS = SelectorsOpts(
    require_at_least_one_selector=True, require_at_least_one_tag=True, require_service=True
)


def validate_traffic_permission(
    name: str, mesh: str, spec: mesh_pb.TrafficPermission
) -> ValidationError | None:
    errs = Violations()
    validate_selectors(errs, Path("sources"), spec.sources, ONLY_SERVICE_TAG_ALLOWED)
    validate_selectors(errs, Path("destinations"), spec.destinations, _DESTINATIONS)
    return errs.error()
