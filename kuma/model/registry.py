"""The one registry of resource types.

REST routes, kumactl verbs, store tables and (later) CRD kinds are all generated from here, so
adding a type is one entry in `_TYPES`.
"""

from __future__ import annotations

from collections.abc import Iterator

from kuma.model.resource import ResourceType, Scope
from kuma.model.validators import VALIDATORS
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb
from kuma.pb.kuma.system import v1alpha1 as system_pb

__all__ = [
    "CIRCUIT_BREAKER",
    "DATAPLANE",
    "DATAPLANE_INSIGHT",
    "FAULT_INJECTION",
    "HEALTH_CHECK",
    "MESH",
    "PROXY_TEMPLATE",
    "RETRY",
    "SECRET",
    "TIMEOUT",
    "TRAFFIC_LOG",
    "TRAFFIC_PERMISSION",
    "TRAFFIC_ROUTE",
    "TRAFFIC_TRACE",
    "ZONE",
    "ZONE_INSIGHT",
    "all_types",
    "by_kumactl_name",
    "by_rest_path",
    "get",
    "kumactl_delete_names",
]


def _t(
    name: str,
    spec_cls: type,
    scope: Scope,
    rest_path: str | None,
    singular: str | None = None,
    plural: str | None = None,
    *,
    owner: str | None = "Mesh",
    admin_only: bool = False,
) -> ResourceType:
    return ResourceType(
        name=name,
        spec_cls=spec_cls,
        scope=scope,
        rest_path=rest_path,
        singular=singular,
        plural=plural,
        owner_type=owner if scope is Scope.MESH else None,
        admin_only=admin_only,
        validator=VALIDATORS.get(name),
    )


MESH = _t("Mesh", mesh_pb.Mesh, Scope.GLOBAL, "meshes", "mesh", "meshes")
DATAPLANE = _t("Dataplane", mesh_pb.Dataplane, Scope.MESH, "dataplanes", "dataplane", "dataplanes")
DATAPLANE_INSIGHT = _t(
    "DataplaneInsight",
    mesh_pb.DataplaneInsight,
    Scope.MESH,
    "dataplane-insights",
    owner="Dataplane",
)
HEALTH_CHECK = _t(
    "HealthCheck", mesh_pb.HealthCheck, Scope.MESH, "health-checks", "healthcheck", "healthchecks"
)
PROXY_TEMPLATE = _t(
    "ProxyTemplate",
    mesh_pb.ProxyTemplate,
    Scope.MESH,
    "proxytemplates",
    "proxytemplate",
    "proxytemplates",
)
TRAFFIC_PERMISSION = _t(
    "TrafficPermission",
    mesh_pb.TrafficPermission,
    Scope.MESH,
    "traffic-permissions",
    "traffic-permission",
    "traffic-permissions",
)
TRAFFIC_LOG = _t(
    "TrafficLog", mesh_pb.TrafficLog, Scope.MESH, "traffic-logs", "traffic-log", "traffic-logs"
)
TRAFFIC_ROUTE = _t(
    "TrafficRoute",
    mesh_pb.TrafficRoute,
    Scope.MESH,
    "traffic-routes",
    "traffic-route",
    "traffic-routes",
)
TRAFFIC_TRACE = _t(
    "TrafficTrace",
    mesh_pb.TrafficTrace,
    Scope.MESH,
    "traffic-traces",
    "traffic-trace",
    "traffic-traces",
)
FAULT_INJECTION = _t(
    "FaultInjection",
    mesh_pb.FaultInjection,
    Scope.MESH,
    "fault-injections",
    "fault-injection",
    "fault-injections",
)
CIRCUIT_BREAKER = _t(
    "CircuitBreaker",
    mesh_pb.CircuitBreaker,
    Scope.MESH,
    "circuit-breakers",
    "circuit-breaker",
    "circuit-breakers",
)
SECRET = _t("Secret", system_pb.Secret, Scope.MESH, "secrets", "secret", "secrets", admin_only=True)
ZONE = _t("Zone", system_pb.Zone, Scope.GLOBAL, "zones", "zone", "zones")
# Kuma keeps zone insights in mesh `default` without an owner (multizone only).
ZONE_INSIGHT = _t("ZoneInsight", system_pb.ZoneInsight, Scope.MESH, "zone-insights", owner=None)
# Policies Kuma added after 0.7.3, with Kuma 1.1's shapes and rules.
RETRY = _t("Retry", mesh_pb.Retry, Scope.MESH, "retries", "retry", "retries")
TIMEOUT = _t("Timeout", mesh_pb.Timeout, Scope.MESH, "timeouts", "timeout", "timeouts")

# Order matters: it is the order of Kuma's REST definitions and of kumactl's help texts.
_TYPES: tuple[ResourceType, ...] = (
    MESH,
    DATAPLANE,
    DATAPLANE_INSIGHT,
    HEALTH_CHECK,
    PROXY_TEMPLATE,
    TRAFFIC_PERMISSION,
    TRAFFIC_LOG,
    TRAFFIC_ROUTE,
    TRAFFIC_TRACE,
    FAULT_INJECTION,
    CIRCUIT_BREAKER,
    SECRET,
    ZONE,
    ZONE_INSIGHT,
    RETRY,
    TIMEOUT,
)
_BY_NAME = {t.name: t for t in _TYPES}
_BY_REST = {t.rest_path: t for t in _TYPES if t.rest_path and not t.admin_only}
_BY_KUMACTL = {n: t for t in _TYPES for n in (t.singular, t.plural) if n}


def all_types() -> Iterator[ResourceType]:
    return iter(_TYPES)


def get(type_name: str) -> ResourceType:
    """The descriptor of `type_name`; raises KeyError for an unknown type."""
    return _BY_NAME[type_name]


def find(type_name: str) -> ResourceType | None:
    return _BY_NAME.get(type_name)


def by_rest_path(segment: str) -> ResourceType | None:
    return _BY_REST.get(segment)


def by_kumactl_name(noun: str) -> ResourceType | None:
    return _BY_KUMACTL.get(noun)


def kumactl_delete_names() -> list[str]:
    """kumactl's TYPE words for `delete`, in Kuma's order."""
    order = (
        MESH,
        DATAPLANE,
        HEALTH_CHECK,
        PROXY_TEMPLATE,
        TRAFFIC_LOG,
        TRAFFIC_PERMISSION,
        TRAFFIC_ROUTE,
        TRAFFIC_TRACE,
        FAULT_INJECTION,
        CIRCUIT_BREAKER,
        RETRY,
        TIMEOUT,
        SECRET,
        ZONE,
    )
    return [t.singular for t in order if t.singular]
