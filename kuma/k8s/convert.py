"""Pod (+ its Services, Namespace and the mesh's other Dataplanes) -> Dataplane, as pure functions.

Kubernetes objects are plain JSON mappings (the API's camelCase shape, as `kubectl get -o json`
prints them); the result is a `DataplaneObject` whose `spec` is the Dataplane in Kuma's JSON form
(what the CR's `spec` holds). The rules follow Kuma 0.7.3 (`pkg/plugins/discovery/k8s/
controllers/`), with one deliberate difference taken from Kuma 1.1+:

* **Service-less pods.** Kuma 0.7.3 refuses a meshed Pod that no Service selects ("Kuma requires
  every Pod in a Mesh to be a part of at least one Service. ..."). kuma-py, like Kuma 1.1 and later,
  gives such a Pod one inbound on the reserved port 49151 (`SERVICELESS_PORT`, never a real
  listener) tagged `kuma.io/service: <name>_<namespace>_svc`, `kuma.io/protocol: tcp` and
  `kuma.io/instance: <pod name>`, plus the pod labels. `<name>` is the pod name without its last two
  dash-separated parts when it has more than two (`echo-client-5d4b9c7f6-x2k9p` -> `echo-client`,
  the Deployment's name; `echo-client` stays `echo-client`), exactly Kuma's rule. Other Dataplanes
  get no outbound for such a service (it has no port to call). A Pod that IS selected by Services
  none of whose TCP ports resolve to a container port is still an error, with Kuma 0.7.3's message.

Everything else is Kuma 0.7.3's behaviour:

* mesh: the Pod annotation `kuma.io/mesh`, else (kuma-py, as the injector does) the Namespace's,
  else `default`;
* one inbound per (selecting Service, TCP service port resolving to a container port): a numeric
  `targetPort` is taken as is, a named one must name a container port of the same protocol; tags
  are the pod labels (empty values dropped) plus `kuma.io/service: <svc>_<ns>_svc_<port>`,
  `kuma.io/protocol` from the Service annotation `<port>.service.kuma.io/protocol` (default `tcp`,
  any other value kept as written), `kuma.io/zone` when a zone is set, and `kuma.io/instance: <pod>`
  for a headless Service;
* gateway pods (`kuma.io/gateway: enabled`): `networking.gateway.tags` = the first inbound's tags
  without `kuma.io/protocol`, and no inbounds (a gateway no Service selects gets the service-less
  tags: Kuma 0.7.3 refuses it too, Kuma 1.1+ accepts it);
* ingress pods (`kuma.io/ingress: enabled`): `networking.ingress: {}` with one inbound on 10001;
* outbounds: one per service tag found on the inbounds of the mesh's Dataplanes (sorted by tag):
  the Service's ClusterIP and service port, or for a headless Service one per endpoint (its pod IP,
  port and `kuma.io/instance`), skipping the pod's own address;
* transparent proxying (`kuma.io/transparent-proxying: enabled`): the injector's inbound/outbound
  redirect-port annotations and `kuma.io/direct-access-services` split on commas;
* metrics: `prometheus.metrics.kuma.io/port` and `/path` make a `prometheus` metrics backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from kuma.errors import KumaError

__all__ = [
    "ANNOTATION_DIRECT_ACCESS",
    "ANNOTATION_GATEWAY",
    "ANNOTATION_INGRESS",
    "ANNOTATION_MESH",
    "ANNOTATION_METRICS_PATH",
    "ANNOTATION_METRICS_PORT",
    "ANNOTATION_SIDECAR_INJECTED",
    "ANNOTATION_TP",
    "ANNOTATION_TP_INBOUND_PORT",
    "ANNOTATION_TP_OUTBOUND_PORT",
    "DEFAULT_MESH",
    "INGRESS_PORT",
    "SERVICELESS_PORT",
    "ConversionError",
    "DataplaneObject",
    "dataplane_for",
    "find_port",
    "has_sidecar",
    "inbounds_for",
    "is_gateway",
    "is_ingress",
    "mesh_for",
    "metrics_for",
    "outbounds_for",
    "parse_service_tag",
    "pod_base_name",
    "protocol_tag_for",
    "selects",
    "service_tag_for",
    "services_selecting",
]

log = structlog.get_logger("kuma.k8s.convert")

ANNOTATION_MESH = "kuma.io/mesh"
ANNOTATION_SIDECAR_INJECTED = "kuma.io/sidecar-injected"
ANNOTATION_GATEWAY = "kuma.io/gateway"
ANNOTATION_INGRESS = "kuma.io/ingress"
ANNOTATION_TP = "kuma.io/transparent-proxying"
ANNOTATION_TP_INBOUND_PORT = "kuma.io/transparent-proxying-inbound-port"
ANNOTATION_TP_OUTBOUND_PORT = "kuma.io/transparent-proxying-outbound-port"
ANNOTATION_DIRECT_ACCESS = "kuma.io/direct-access-services"
ANNOTATION_METRICS_PORT = "prometheus.metrics.kuma.io/port"
ANNOTATION_METRICS_PATH = "prometheus.metrics.kuma.io/path"

SERVICE_TAG = "kuma.io/service"
PROTOCOL_TAG = "kuma.io/protocol"
INSTANCE_TAG = "kuma.io/instance"
ZONE_TAG = "kuma.io/zone"

DEFAULT_MESH = "default"
INGRESS_PORT = 10001
SERVICELESS_PORT = 49151
"""The IANA-reserved port Kuma 1.1+ gives the one inbound of a pod no Service selects."""

_ENABLED = "enabled"
_NO_SERVICES = (
    "Kuma requires every Pod in a Mesh to be a part of at least one Service. "
    "However, there are no Services that select this Pod."
)
_NO_PORTS = (
    "Kuma requires every Pod in a Mesh to be a part of at least one Service. "
    "However, this Pod doesn't have any container ports that would satisfy matching Service(s)."
)

Obj = Mapping[str, Any]


class ConversionError(KumaError):
    """A Pod that cannot become a Dataplane; the message is what the Pod's Warning event says."""


@dataclass(frozen=True)
class DataplaneObject:
    """The parts of a Dataplane CR the converter decides: its mesh and its spec (Kuma JSON)."""

    mesh: str
    spec: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# small accessors


def _meta(obj: Obj | None) -> Obj:
    return (obj or {}).get("metadata") or {}


def _annotations(obj: Obj | None) -> Mapping[str, str]:
    return _meta(obj).get("annotations") or {}


def _labels(obj: Obj | None) -> Mapping[str, str]:
    return _meta(obj).get("labels") or {}


def _name(obj: Obj) -> str:
    return str(_meta(obj).get("name") or "")


def _namespace(obj: Obj) -> str:
    return str(_meta(obj).get("namespace") or "")


def _mapping(value: Any) -> Obj:
    return value if isinstance(value, Mapping) else {}


def _pod_ip(pod: Obj) -> str:
    return str((pod.get("status") or {}).get("podIP") or "")


def _parse_uint32(text: str) -> int | None:
    """Go's strconv.ParseUint(text, 10, 32): digits only, within uint32."""
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value < 2**32 else None


def has_sidecar(pod: Obj) -> bool:
    """True for a pod the injector has meshed (`kuma.io/sidecar-injected: "true"`)."""
    return _annotations(pod).get(ANNOTATION_SIDECAR_INJECTED) == "true"


def is_gateway(pod: Obj) -> bool:
    return _annotations(pod).get(ANNOTATION_GATEWAY) == _ENABLED


def is_ingress(pod: Obj) -> bool:
    return _annotations(pod).get(ANNOTATION_INGRESS) == _ENABLED


def mesh_for(pod: Obj, namespace: Obj | None = None) -> str:
    """The pod's `kuma.io/mesh` annotation, else its Namespace's, else `default`."""
    return (
        _annotations(pod).get(ANNOTATION_MESH)
        or _annotations(namespace).get(ANNOTATION_MESH)
        or DEFAULT_MESH
    )


# ---------------------------------------------------------------------------------------------
# services and ports


def selects(service: Obj, pod: Obj) -> bool:
    """True when `service` (same namespace, non-empty selector) selects `pod`.

    A Service without a selector is managed by someone else and never counts (Kuma: it would
    otherwise give every pod of the namespace an extra inbound).
    """
    if _namespace(service) != _namespace(pod):
        return False
    selector: Mapping[str, str] = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return False
    labels = _labels(pod)
    return all(labels.get(k) == v for k, v in selector.items())


def services_selecting(pod: Obj, services: Iterable[Obj]) -> list[Obj]:
    """The Services of `services` that select `pod`, in the given order."""
    return [svc for svc in services if selects(svc, pod)]


def _is_tcp(protocol: Any) -> bool:
    return protocol in (None, "", "TCP")


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The container port a service port sends to, or None.

    A numeric `targetPort` is used as is (containers need not list the ports they listen on); a
    named one must match a container port's name and protocol. A missing `targetPort` means the
    service port itself (the API server's default).
    """
    target = service_port.get("targetPort")
    if target is None or target == "" or target == 0:
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    wanted = service_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == wanted:
                return int(port["containerPort"])
    return None


def service_tag_for(service: Obj, service_port: Obj) -> str:
    """`<name>_<namespace>_svc_<port>`."""
    return f"{_name(service)}_{_namespace(service)}_svc_{service_port.get('port')}"


def protocol_tag_for(service: Obj, service_port: Obj) -> str:
    """The Service annotation `<port>.service.kuma.io/protocol`, kept as written; `tcp` if unset."""
    value = _annotations(service).get(f"{service_port.get('port')}.service.kuma.io/protocol")
    return value or "tcp"


def _is_headless(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def _label_tags(pod: Obj) -> dict[str, str]:
    return {k: str(v) for k, v in _labels(pod).items() if v not in (None, "")}


def _sorted(tags: Mapping[str, str]) -> dict[str, str]:
    return dict(sorted(tags.items()))


def pod_base_name(pod_name: str) -> str:
    """The workload name Kuma reads off a pod name: `<name>-<replicaset>-<pod>` -> `<name>`."""
    parts = pod_name.split("-")
    if len(parts) > 2:
        parts = parts[:-2]
    return "-".join(parts)


def _service_inbound_tags(pod: Obj, service: Obj, service_port: Obj, zone: str) -> dict[str, str]:
    tags = _label_tags(pod)
    tags[SERVICE_TAG] = service_tag_for(service, service_port)
    if zone:
        tags[ZONE_TAG] = zone
    tags[PROTOCOL_TAG] = protocol_tag_for(service, service_port)
    if _is_headless(service):
        tags[INSTANCE_TAG] = _name(pod)
    return _sorted(tags)


def _serviceless_tags(pod: Obj, zone: str) -> dict[str, str]:
    tags = _label_tags(pod)
    tags[SERVICE_TAG] = f"{pod_base_name(_name(pod))}_{_namespace(pod)}_svc"
    if zone:
        tags[ZONE_TAG] = zone
    tags[PROTOCOL_TAG] = "tcp"
    tags[INSTANCE_TAG] = _name(pod)
    return _sorted(tags)


def inbounds_for(pod: Obj, services: Sequence[Obj], zone: str = "") -> list[dict[str, Any]]:
    """The pod's inbounds (`services` = the Services selecting it); see the module docstring.

    ConversionError when Services select the pod but none of their TCP ports reaches it.
    """
    inbounds: list[dict[str, Any]] = []
    for service in services:
        for service_port in (service.get("spec") or {}).get("ports") or []:
            if not _is_tcp(service_port.get("protocol")):
                continue
            port = find_port(pod, service_port)
            if port is None:
                log.debug(
                    "no container port matches a service port",
                    pod=f"{_name(pod)}.{_namespace(pod)}",
                    service=_name(service),
                    service_port=service_port.get("name") or service_port.get("port"),
                )
                continue
            inbounds.append(
                {"port": port, "tags": _service_inbound_tags(pod, service, service_port, zone)}
            )
    if not inbounds:
        if services:
            raise ConversionError(_NO_PORTS)
        inbounds.append({"port": SERVICELESS_PORT, "tags": _serviceless_tags(pod, zone)})
    return inbounds


# ---------------------------------------------------------------------------------------------
# outbounds


def parse_service_tag(tag: str) -> tuple[str, str, int | None] | None:
    """`<name>_<ns>_svc_<port>` -> (name, ns, port); `<name>_<ns>_svc` -> (name, ns, None)."""
    parts = tag.split("_")
    if len(parts) == 3 and parts[2] == "svc":
        return parts[0], parts[1], None
    if len(parts) == 4 and parts[2] == "svc":
        port = _parse_uint32(parts[3])
        if port is not None:
            return parts[0], parts[1], port
    return None


@dataclass(frozen=True)
class _Endpoint:
    address: str
    port: int
    instance: str


def _endpoints_by_service(dataplanes: Iterable[Obj]) -> dict[str, list[_Endpoint]]:
    result: dict[str, list[_Endpoint]] = {}
    for dp in dataplanes:
        # other Dataplanes may be written by hand: anything malformed is skipped, not fatal
        networking = _mapping(_mapping(dp.get("spec")).get("networking"))
        if networking.get("ingress") is not None:
            continue
        inbounds = networking.get("inbound")
        for inbound in inbounds if isinstance(inbounds, list) else []:
            inbound = _mapping(inbound)
            tags = _mapping(inbound.get("tags"))
            service = tags.get(SERVICE_TAG)
            port = inbound.get("port")
            if not isinstance(service, str) or not isinstance(port, int):
                continue
            result.setdefault(service, []).append(
                _Endpoint(
                    address=str(inbound.get("address") or networking.get("address") or ""),
                    port=port,
                    instance=str(tags.get(INSTANCE_TAG, "")),
                )
            )
    return result


def outbounds_for(
    pod: Obj, mesh: str, dataplanes: Iterable[Obj], services: Iterable[Obj]
) -> list[dict[str, Any]]:
    """The pod's outbounds: one per service of `mesh`'s Dataplanes (see the module docstring).

    `dataplanes` are Dataplane CR objects (any mesh; others are ignored), `services` every known
    Service (looked up by the name and namespace in a service tag). A tag naming no Service, or not
    of the `<name>_<ns>_svc_<port>` form, is skipped: one odd Dataplane must not break the mesh.
    """
    same_mesh = [dp for dp in dataplanes if (dp.get("mesh") or DEFAULT_MESH) == mesh]
    by_key = {(_namespace(s), _name(s)): s for s in services}
    own_ip = _pod_ip(pod)
    outbounds: list[dict[str, Any]] = []
    endpoints = _endpoints_by_service(same_mesh)
    for tag in sorted(endpoints):
        parsed = parse_service_tag(tag)
        if parsed is None:
            log.debug("service tag is not <name>_<namespace>_svc_<port>", service=tag)
            continue
        name, namespace, port = parsed
        if port is None:  # a service-less pod: nothing to call
            continue
        service = by_key.get((namespace, name))
        if service is None:
            log.debug("no Kubernetes Service for service tag", service=tag)
            continue
        if _is_headless(service):
            for ep in endpoints[tag]:
                if ep.address == own_ip:
                    continue  # its own inbound
                tags = {SERVICE_TAG: tag}
                if ep.instance:
                    tags[INSTANCE_TAG] = ep.instance
                outbounds.append({"address": ep.address, "port": ep.port, "tags": _sorted(tags)})
        else:
            outbounds.append(
                {
                    "address": (service.get("spec") or {}).get("clusterIP") or "",
                    "port": port,
                    "tags": {SERVICE_TAG: tag},
                }
            )
    return outbounds


# ---------------------------------------------------------------------------------------------
# the rest of the spec


def _transparent_proxying(pod: Obj) -> dict[str, Any] | None:
    annotations = _annotations(pod)
    if annotations.get(ANNOTATION_TP) != _ENABLED:
        return None
    tp: dict[str, Any] = {}
    inbound = _parse_uint32(annotations.get(ANNOTATION_TP_INBOUND_PORT, ""))
    outbound = _parse_uint32(annotations.get(ANNOTATION_TP_OUTBOUND_PORT, ""))
    if inbound:
        tp["redirectPortInbound"] = inbound
    if outbound:
        tp["redirectPortOutbound"] = outbound
    direct = annotations.get(ANNOTATION_DIRECT_ACCESS, "")
    if direct:
        tp["directAccessServices"] = direct.split(",")
    return tp


def metrics_for(pod: Obj) -> dict[str, Any] | None:
    """A `prometheus` metrics backend from the pod's metrics annotations, or None."""
    annotations = _annotations(pod)
    path = annotations.get(ANNOTATION_METRICS_PATH, "")
    port_text = annotations.get(ANNOTATION_METRICS_PORT, "")
    if not path and not port_text:
        return None
    conf: dict[str, Any] = {}
    if path:
        conf["path"] = path
    if port_text:
        port = _parse_uint32(port_text)
        if port is None:
            raise ConversionError(
                f"could not parse port from {ANNOTATION_METRICS_PORT} annotation: "
                f'strconv.ParseUint: parsing "{port_text}": invalid syntax'
            )
        if port:
            conf["port"] = port
    return {"type": "prometheus", "conf": conf}


def dataplane_for(
    pod: Obj,
    services: Iterable[Obj],
    dataplanes: Iterable[Obj] = (),
    *,
    namespace: Obj | None = None,
    zone: str = "",
) -> DataplaneObject:
    """The Dataplane of a meshed `pod`.

    `services`: Services known to the caller (those selecting the pod give its inbounds, all of
    them resolve outbound service tags); `dataplanes`: Dataplane CR objects of the cluster (those of
    the pod's mesh give its outbounds); `namespace`: the pod's Namespace (for its `kuma.io/mesh`).
    Raises ConversionError with the message Kuma puts on the Pod's Warning event.
    """
    services = list(services)
    mesh = mesh_for(pod, namespace)
    address = _pod_ip(pod)
    if is_ingress(pod):
        inbound: dict[str, Any] = {"port": INGRESS_PORT}
        if zone:
            inbound["tags"] = {ZONE_TAG: zone}
        return DataplaneObject(
            mesh, {"networking": {"ingress": {}, "address": address, "inbound": [inbound]}}
        )
    networking: dict[str, Any] = {"address": address}
    selecting = services_selecting(pod, services)
    if is_gateway(pod):
        first = inbounds_for(pod, selecting, zone)[0]
        tags = {k: v for k, v in first["tags"].items() if k != PROTOCOL_TAG}
        networking["gateway"] = {"tags": tags}
    else:
        networking["inbound"] = inbounds_for(pod, selecting, zone)
    outbounds = outbounds_for(pod, mesh, dataplanes, services)
    if outbounds:
        networking["outbound"] = outbounds
    tp = _transparent_proxying(pod)
    if tp is not None:
        networking["transparentProxying"] = tp
    spec: dict[str, Any] = {"networking": networking}
    metrics = metrics_for(pod)
    if metrics is not None:
        spec["metrics"] = metrics
    return DataplaneObject(mesh, spec)
