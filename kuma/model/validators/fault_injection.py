"""FaultInjection: HTTP-only selectors, at least one fault, percentages, status codes, limits."""

from __future__ import annotations

import re

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.selectors import SelectorsOpts, protocol_validator, validate_selectors
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["HTTP_STATUS_CODES", "validate_fault_injection"]

_SELECTORS = SelectorsOpts(
    require_at_least_one_selector=True,
    require_at_least_one_tag=True,
    extra_selector_checks=(protocol_validator("http"),),
)

# The codes Go's net/http has a status text for (Kuma accepts exactly these).
HTTP_STATUS_CODES = frozenset(
    (
        *(100, 101, 102, 103),
        *(200, 201, 202, 203, 204, 205, 206, 207, 208, 226),
        *(300, 301, 302, 303, 304, 305, 307, 308),
        *range(400, 419),
        *(421, 422, 423, 424, 425, 426, 428, 429, 431, 451),
        *range(500, 509),
        *(510, 511),
    )
)

# Unanchored, like Kuma's regexp.MatchString: "50kbps", "2 mbps", "1gbps".
_LIMIT = re.compile(r"[0-9]*[\t\n\f\r ]?[gmk]bps")


def _percentage(errs: Violations, path: Path, value: float | None) -> None:
    if value is None:
        errs.add(path.field("percentage"), "cannot be empty")
    elif value < 0.0 or value > 100.0:
        errs.add(path.field("percentage"), "has to be in [0.0 - 100.0] range")


def validate_fault_injection(
    name: str, mesh: str, spec: mesh_pb.FaultInjection
) -> ValidationError | None:
    errs = Violations()
    validate_selectors(errs, Path("sources"), spec.sources, _SELECTORS)
    validate_selectors(errs, Path("destinations"), spec.destinations, _SELECTORS)

    root = Path("conf")
    conf = spec.conf
    # an empty fault (`delay: {}`) counts as not configured
    delay = conf.delay if conf is not None else None
    if delay is not None and delay.percentage is None and delay.value is None:
        delay = None
    abort = conf.abort if conf is not None else None
    if abort is not None and abort.percentage is None and abort.http_status is None:
        abort = None
    bandwidth = conf.response_bandwidth if conf is not None else None
    if bandwidth is not None and bandwidth.percentage is None and bandwidth.limit is None:
        bandwidth = None

    if delay is None and abort is None and bandwidth is None:
        errs.add(root, "must have at least one of the faults configured")
    if delay is not None:
        path = root.field("delay")
        _percentage(errs, path, delay.percentage)
        if delay.value is None:
            errs.add(path.field("value"), "cannot be empty")
    if abort is not None:
        path = root.field("abort")
        _percentage(errs, path, abort.percentage)
        if abort.http_status is None:
            errs.add(path.field("httpStatus"), "cannot be empty")
        elif abort.http_status not in HTTP_STATUS_CODES:
            errs.add(path.field("httpStatus"), "http status code is incorrect")
    if bandwidth is not None:
        path = root.field("responseBandwidth")
        _percentage(errs, path, bandwidth.percentage)
        if bandwidth.limit is None:
            errs.add(path.field("limit"), "cannot be empty")
        elif not _LIMIT.search(bandwidth.limit):
            errs.add(path.field("limit"), "has to be in kbps/mbps/gbps units")
    return errs.error()
