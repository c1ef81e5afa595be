"""Timeout (Kuma 1.1): connection-policy selectors; `conf` required, each section it has non-empty.

`conf.tcp`, `conf.http` and `conf.grpc` are optional, but one that is given must set at least one
of its timeouts, and a timeout that is set must not be zero. `conf.connectTimeout` is not checked.
"""

from __future__ import annotations

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.retry import (
    HAS_TO_BE_DEFINED,
    validate_positive_duration,
    validate_positive_duration_if_set,
)
from kuma.model.validators.selectors import ONLY_SERVICE_TAG_ALLOWED, validate_selectors
from kuma.model.validators.traffic_route import SOURCES
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["EMPTY_SECTION", "validate_timeout"]

EMPTY_SECTION = "at least one timeout in section has to be defined"


def _tcp(errs: Violations, path: Path, tcp: mesh_pb.TimeoutConfTcp | None) -> None:
    if tcp is None:
        return
    if tcp.idle_timeout is None:
        errs.add(path, EMPTY_SECTION)
        return
    validate_positive_duration(errs, path.field("idleTimeout"), tcp.idle_timeout)


def _http(errs: Violations, path: Path, http: mesh_pb.TimeoutConfHttp | None) -> None:
    if http is None:
        return
    if http.request_timeout is None and http.idle_timeout is None:
        errs.add(path, EMPTY_SECTION)
        return
    validate_positive_duration_if_set(errs, path.field("requestTimeout"), http.request_timeout)
    validate_positive_duration_if_set(errs, path.field("idleTimeout"), http.idle_timeout)


def _grpc(errs: Violations, path: Path, grpc: mesh_pb.TimeoutConfGrpc | None) -> None:
    if grpc is None:
        return
    if grpc.stream_idle_timeout is None and grpc.max_stream_duration is None:
        errs.add(path, EMPTY_SECTION)
        return
    validate_positive_duration_if_set(
        errs, path.field("streamIdleTimeout"), grpc.stream_idle_timeout
    )
    validate_positive_duration_if_set(
        errs, path.field("maxStreamDuration"), grpc.max_stream_duration
    )


def validate_timeout(name: str, mesh: str, spec: mesh_pb.Timeout) -> ValidationError | None:
    errs = Violations()
    validate_selectors(errs, Path("sources"), spec.sources, SOURCES)
    validate_selectors(errs, Path("destinations"), spec.destinations, ONLY_SERVICE_TAG_ALLOWED)
    path = Path("conf")
    conf = spec.conf
    if conf is None:
        errs.add(path, HAS_TO_BE_DEFINED)
    else:
        _tcp(errs, path.field("tcp"), conf.tcp)
        _http(errs, path.field("http"), conf.http)
        _grpc(errs, path.field("grpc"), conf.grpc)
    return errs.error()
