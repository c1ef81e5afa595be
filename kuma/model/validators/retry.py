"""Retry (Kuma 1.1): connection-policy selectors; `conf` with at least one of http, grpc, tcp.

Within each protocol section a field left out is fine, but one given must be usable: counts and
durations greater than 0, a back-off with a non-zero `baseInterval`, no gRPC status repeated in
`retryOn`. Violations come in Kuma's order: sources, destinations, then `conf.http`,
`conf.grpc`, `conf.tcp`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.golang import go_quote
from kuma.model.validators.selectors import ONLY_SERVICE_TAG_ALLOWED, validate_selectors
from kuma.model.validators.traffic_route import SOURCES
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = [
    "EMPTY_FIELD",
    "GREATER_THAN_0",
    "GREATER_THAN_0_WHEN_DEFINED",
    "HAS_TO_BE_DEFINED",
    "retry_on_name",
    "validate_positive_duration",
    "validate_positive_duration_if_set",
    "validate_retry",
]

EMPTY_FIELD = "field cannot be empty"
HAS_TO_BE_DEFINED = "has to be defined"
GREATER_THAN_0 = "has to be greater than 0"
GREATER_THAN_0_WHEN_DEFINED = "has to be greater than 0 when defined"

_ZERO = dt.timedelta(0)


def validate_positive_duration(errs: Violations, path: Path, value: dt.timedelta) -> None:
    """A given duration must not be zero (negative ones pass, as in Kuma)."""
    if value == _ZERO:
        errs.add(path, GREATER_THAN_0)


def validate_positive_duration_if_set(
    errs: Violations, path: Path, value: dt.timedelta | None
) -> None:
    """An optional duration, when given, must not be zero."""
    if value is not None and value == _ZERO:
        errs.add(path, GREATER_THAN_0_WHEN_DEFINED)


def _positive_count_if_set(errs: Violations, path: Path, value: int | None) -> None:
    if value is not None and value == 0:
        errs.add(path, GREATER_THAN_0_WHEN_DEFINED)


def retry_on_name(value: mesh_pb.RetryConfGrpcRetryOn) -> str:
    """The name of a `retryOn` entry (`deadline_exceeded`); a number Kuma does not know as is."""
    return value.name or str(int(value))


def _repeated_retry_on(values: Sequence[mesh_pb.RetryConfGrpcRetryOn]) -> list[str]:
    positions: dict[str, list[int]] = {}
    for i, value in enumerate(values):
        positions.setdefault(retry_on_name(value), []).append(i)
    return sorted(
        f"repeated value {go_quote(name)} at indexes [{', '.join(map(str, indexes))}]"
        for name, indexes in positions.items()
        if len(indexes) > 1
    )


def _back_off(errs: Violations, path: Path, back_off: mesh_pb.RetryConfBackOff | None) -> None:
    if back_off is None:
        return
    base = path.field("baseInterval")
    if back_off.base_interval is None:
        errs.add(base, HAS_TO_BE_DEFINED)
    elif back_off.base_interval == _ZERO:
        validate_positive_duration(errs, base, back_off.base_interval)
    else:
        # Kuma looks at maxInterval only once baseInterval is usable.
        validate_positive_duration_if_set(errs, path.field("maxInterval"), back_off.max_interval)


def _http(errs: Violations, path: Path, http: mesh_pb.RetryConfHttp | None) -> None:
    if http is None:
        return
    if (
        http.num_retries is None
        and http.per_try_timeout is None
        and http.back_off is None
        and not http.retriable_status_codes
    ):
        errs.add(path, EMPTY_FIELD)
    _positive_count_if_set(errs, path.field("numRetries"), http.num_retries)
    validate_positive_duration_if_set(errs, path.field("perTryTimeout"), http.per_try_timeout)
    _back_off(errs, path.field("backOff"), http.back_off)


def _grpc(errs: Violations, path: Path, grpc: mesh_pb.RetryConfGrpc | None) -> None:
    if grpc is None:
        return
    if (
        grpc.num_retries is None
        and grpc.per_try_timeout is None
        and grpc.back_off is None
        and not grpc.retry_on
    ):
        errs.add(path, EMPTY_FIELD)
    for message in _repeated_retry_on(grpc.retry_on):
        errs.add(path.field("retryOn"), message)
    _positive_count_if_set(errs, path.field("numRetries"), grpc.num_retries)
    validate_positive_duration_if_set(errs, path.field("perTryTimeout"), grpc.per_try_timeout)
    _back_off(errs, path.field("backOff"), grpc.back_off)


def _tcp(errs: Violations, path: Path, tcp: mesh_pb.RetryConfTcp | None) -> None:
    if tcp is not None and tcp.max_connect_attempts == 0:
        errs.add(path.field("maxConnectAttempts"), GREATER_THAN_0)


def validate_retry(name: str, mesh: str, spec: mesh_pb.Retry) -> ValidationError | None:
    errs = Violations()
    validate_selectors(errs, Path("sources"), spec.sources, SOURCES)
    validate_selectors(errs, Path("destinations"), spec.destinations, ONLY_SERVICE_TAG_ALLOWED)
    path = Path("conf")
    conf = spec.conf
    if conf is None:
        errs.add(path, HAS_TO_BE_DEFINED)
    elif conf.http is None and conf.grpc is None and conf.tcp is None:
        errs.add(path, "missing protocol [grpc|http|tcp] configuration")
    else:
        _http(errs, path.field("http"), conf.http)
        _grpc(errs, path.field("grpc"), conf.grpc)
        _tcp(errs, path.field("tcp"), conf.tcp)
    return errs.error()
