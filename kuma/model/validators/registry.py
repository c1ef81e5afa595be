"""Type name -> spec validator.

Types Kuma 0.7.3 does not validate (DataplaneInsight, Secret, ZoneInsight: their Validate()
returns nil) have no entry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kuma.errors import ValidationError
from kuma.model.validators.circuit_breaker import validate_circuit_breaker
from kuma.model.validators.dataplane import validate_dataplane
from kuma.model.validators.fault_injection import validate_fault_injection
from kuma.model.validators.health_check import validate_health_check
from kuma.model.validators.mesh import validate_mesh
from kuma.model.validators.proxy_template import validate_proxy_template
from kuma.model.validators.retry import validate_retry
from kuma.model.validators.timeout import validate_timeout
from kuma.model.validators.traffic_log import validate_traffic_log
from kuma.model.validators.traffic_permission import validate_traffic_permission
from kuma.model.validators.traffic_route import validate_traffic_route
from kuma.model.validators.traffic_trace import validate_traffic_trace
from kuma.model.validators.zone import validate_zone

__all__ = ["VALIDATORS", "Validator"]

Validator = Callable[[str, str, Any], ValidationError | None]
"""`(name, mesh, spec) -> ValidationError | None`; the spec is the type's protobuf message."""

VALIDATORS: dict[str, Validator] = {
    "Mesh": validate_mesh,
    "Dataplane": validate_dataplane,
    "HealthCheck": validate_health_check,
    "ProxyTemplate": validate_proxy_template,
    "TrafficPermission": validate_traffic_permission,
    "TrafficLog": validate_traffic_log,
    "TrafficRoute": validate_traffic_route,
    "TrafficTrace": validate_traffic_trace,
    "FaultInjection": validate_fault_injection,
    "CircuitBreaker": validate_circuit_breaker,
    "Zone": validate_zone,
    "Retry": validate_retry,
    "Timeout": validate_timeout,
}
