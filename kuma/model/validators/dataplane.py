"""Dataplane: networking (inbound / gateway / outbound, or ingress mode), tags and addresses.

Kuma's rules and their order, including two of its path quirks kept for compatibility: the
tag problems of an ingress inbound are reported under `networking.inbound[i].address.tags[...]`,
and those of an available service under `networking.ingress.availableService[i].tags.tags[...]`.

Beyond Kuma 0.7.3 (which accepts these and fails later, when it builds Envoy config), kuma-py
also rejects transparent-proxying ports above 65535 and a `metrics` override of type
`prometheus` whose `conf` does not decode as a Prometheus backend config.
"""

from __future__ import annotations

from collections.abc import Mapping

from kuma.errors import ValidationError
from kuma.model.selectors import PROTOCOL_TAG, SERVICE_TAG
from kuma.model.validation import Path, Violations
from kuma.model.validators.common import allowed_values_hint, key, sorted_keys, to_typed
from kuma.model.validators.golang import go_quote, parse_ip
from kuma.model.validators.selectors import TAG_NAME_RE, TAG_VALUE_RE
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["SUPPORTED_PROTOCOLS", "validate_dataplane"]

SUPPORTED_PROTOCOLS = ("grpc", "http", "http2", "tcp")
"""Values of `kuma.io/protocol` (compared case-insensitively), in the order messages list them."""

_NETWORKING = Path("networking")
_PORT_RANGE = "port has to be in range of [1, 65535]"
_ADDRESS_NOT_IP = "address has to be valid IP address"
_SAME_ADDRESS_AND_PORT = "serviceAddress and servicePort has to differ from address and port"
_NOT_IN_INGRESS = "cannot be defined in the ingress mode"


def _tags(errs: Violations, prefix: Path, tags: Mapping[str, str]) -> None:
    """Kuma's dataplane tag rules; violations at `<prefix>.tags["name"]`."""
    for name in sorted_keys(tags):
        value = tags[name]
        path = key(prefix.field("tags"), name)
        if value == "":
            errs.add(path, "tag value cannot be empty")
        if not TAG_NAME_RE.fullmatch(name):
            errs.add(
                path,
                "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores",
            )
        if not TAG_VALUE_RE.fullmatch(value):
            errs.add(
                path,
                "tag value must consist of alphanumeric characters, dots, dashes and underscores",
            )


def _service_tag_exists(errs: Violations, prefix: Path, tags: Mapping[str, str]) -> None:
    if SERVICE_TAG not in tags:
        errs.add(key(prefix.field("tags"), SERVICE_TAG), "tag has to exist")


def _inbound(
    errs: Violations, path: Path, inbound: mesh_pb.DataplaneNetworkingInbound, dp_address: str
) -> None:
    if not 1 <= inbound.port <= 65535:
        errs.add(path.field("port"), _PORT_RANGE)
    if inbound.service_port > 65535:
        errs.add(path.field("servicePort"), "servicePort has to be in range of [0, 65535]")
    same_port = inbound.service_port in (0, inbound.port)
    if inbound.service_address:
        if not parse_ip(inbound.service_address):
            errs.add(path.field("serviceAddress"), "serviceAddress has to be valid IP address")
        if inbound.service_address == dp_address and same_port:
            errs.add(path.field("serviceAddress"), _SAME_ADDRESS_AND_PORT)
    if inbound.address:
        if not parse_ip(inbound.address):
            errs.add(path.field("address"), _ADDRESS_NOT_IP)
        if inbound.address == inbound.service_address and same_port:
            errs.add(path.field("serviceAddress"), _SAME_ADDRESS_AND_PORT)
    _service_tag_exists(errs, path, inbound.tags)
    protocol = inbound.tags.get(PROTOCOL_TAG)
    if protocol is not None and protocol.lower() not in SUPPORTED_PROTOCOLS:
        errs.add(
            key(path.field("tags"), PROTOCOL_TAG),
            f"tag {go_quote(PROTOCOL_TAG)} has an invalid value {go_quote(protocol)}. "
            + allowed_values_hint(*SUPPORTED_PROTOCOLS),
        )
    _tags(errs, path, inbound.tags)


def _outbound(errs: Violations, path: Path, outbound: mesh_pb.DataplaneNetworkingOutbound) -> None:
    if not 1 <= outbound.port <= 65535:
        errs.add(path.field("port"), _PORT_RANGE)
    if outbound.address and not parse_ip(outbound.address):
        errs.add(path.field("address"), _ADDRESS_NOT_IP)
    if not outbound.tags:
        if not outbound.service:
            # sic: Kuma names the field `kuma.io/service`, next to `port`
            errs.add(path.field(SERVICE_TAG), "cannot be empty")
    else:
        _service_tag_exists(errs, path, outbound.tags)
        _tags(errs, path, outbound.tags)


def _networking(errs: Violations, networking: mesh_pb.DataplaneNetworking) -> None:
    path = _NETWORKING
    if not networking.inbound and networking.gateway is None:
        errs.add(path, "has to contain at least one inbound interface or gateway")
    if networking.inbound and networking.gateway is not None:
        errs.add(path, "inbound cannot be defined both with gateway")
    if not parse_ip(networking.address):
        errs.add(path.field("address"), _ADDRESS_NOT_IP)
    if networking.gateway is not None:
        gateway = path.field("gateway")
        _service_tag_exists(errs, gateway, networking.gateway.tags)
        _tags(errs, gateway, networking.gateway.tags)
    for i, inbound in enumerate(networking.inbound):
        _inbound(errs, path.field("inbound").index(i), inbound, networking.address)
    for i, outbound in enumerate(networking.outbound):
        _outbound(errs, path.field("outbound").index(i), outbound)


def _ingress_networking(errs: Violations, networking: mesh_pb.DataplaneNetworking) -> None:
    path = _NETWORKING
    if networking.gateway is not None:
        errs.add(path, "gateway cannot be defined in the ingress mode")
    if networking.outbound:
        errs.add(path, "dataplane cannot have outbounds in the ingress mode")
    if len(networking.inbound) != 1:
        errs.add(path, "dataplane must have one inbound interface")
    for i, inbound in enumerate(networking.inbound):
        p = path.field("inbound").index(i)
        if not 1 <= inbound.port <= 65535:
            errs.add(p.field("port"), _PORT_RANGE)
        if inbound.service_port != 0:
            errs.add(p.field("servicePort"), _NOT_IN_INGRESS)
        if inbound.service_address:
            errs.add(p.field("serviceAddress"), _NOT_IN_INGRESS)
        if inbound.address:
            errs.add(p.field("address"), _NOT_IN_INGRESS)
        _tags(errs, p.field("address"), inbound.tags)
    assert networking.ingress is not None
    for i, service in enumerate(networking.ingress.available_services):
        p = path.field("ingress").field("availableService").index(i)
        if SERVICE_TAG not in service.tags:
            errs.add(key(p.field("tags"), SERVICE_TAG), "cannot be empty")
        _tags(errs, p.field("tags"), service.tags)


def _transparent_proxying(
    errs: Violations, tp: mesh_pb.DataplaneNetworkingTransparentProxying | None
) -> None:
    if tp is None:
        return
    path = _NETWORKING.field("transparentProxying")
    for field, value in (
        ("redirectPortInbound", tp.redirect_port_inbound),
        ("redirectPortOutbound", tp.redirect_port_outbound),
    ):
        if value > 65535:
            errs.add(path.field(field), f"{field} has to be in range of [0, 65535]")


def validate_dataplane(name: str, mesh: str, spec: mesh_pb.Dataplane) -> ValidationError | None:
    errs = Violations()
    # A missing `networking` is checked as an empty one: no inbound or gateway, no address.
    networking = spec.networking if spec.networking is not None else mesh_pb.DataplaneNetworking()
    if networking.ingress is not None:
        _ingress_networking(errs, networking)
    else:
        _networking(errs, networking)
    _transparent_proxying(errs, networking.transparent_proxying)
    if spec.metrics is not None and spec.metrics.type == "prometheus":
        to_typed(
            mesh_pb.PrometheusMetricsBackendConfig,
            spec.metrics.conf,
            Path("metrics").field("config"),
            errs,
        )
    return errs.error()
