"""TrafficRoute (0.7.x shape: `conf` is a list of weighted destinations)."""

from __future__ import annotations

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.selectors import (
    ONLY_SERVICE_TAG_ALLOWED,
    SelectorOpts,
    SelectorsOpts,
    validate_selector,
    validate_selectors,
)
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["SOURCES", "validate_traffic_route"]

SOURCES = SelectorsOpts(
    require_at_least_one_selector=True, require_at_least_one_tag=True, require_service=True
)
"""Sources of the connection policies: at least one selector, each with a service tag."""

_DESTINATION = SelectorOpts(require_at_least_one_tag=True, require_service=True)


def validate_traffic_route(
    name: str, mesh: str, spec: mesh_pb.TrafficRoute
) -> ValidationError | None:
    errs = Violations()
    validate_selectors(errs, Path("sources"), spec.sources, SOURCES)
    validate_selectors(errs, Path("destinations"), spec.destinations, ONLY_SERVICE_TAG_ALLOWED)
    conf = Path("conf")
    if not spec.conf:
        errs.add(conf, "must have at least one element")
    for i, entry in enumerate(spec.conf):
        validate_selector(errs, conf.index(i).field("destination"), entry.destination, _DESTINATION)
    return errs.error()
