"""The generator contract and the origins that tag generated resources."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable

from kuma.model.selectors import identifying_service
from kuma.xds.core import MeshContext, XdsResource
from kuma.xds.envoy import accesslog as al
from kuma.xds.envoy.listeners import TrafficDirection
from kuma.xds.envoy.tls import SdsLocation
from kuma.xds.generators.shared import SharedResources
from kuma.xds.topology import Proxy

__all__ = [
    "ORIGIN_DIRECT_ACCESS",
    "ORIGIN_INBOUND",
    "ORIGIN_OUTBOUND",
    "ORIGIN_PROMETHEUS",
    "ORIGIN_PROXY_TEMPLATE_MODIFICATIONS",
    "ORIGIN_PROXY_TEMPLATE_RAW",
    "ORIGIN_TRACING",
    "ORIGIN_TRANSPARENT",
    "GenerationError",
    "ResourceGenerator",
    "access_log_variables",
    "sds_location",
]

# Which generator made a resource; ProxyTemplate modifications select resources by origin.
ORIGIN_INBOUND = "inbound"
ORIGIN_OUTBOUND = "outbound"
ORIGIN_TRANSPARENT = "transparent"
ORIGIN_PROMETHEUS = "prometheus"
ORIGIN_DIRECT_ACCESS = "direct-access"
ORIGIN_PROXY_TEMPLATE_RAW = "proxy-template-raw"
ORIGIN_PROXY_TEMPLATE_MODIFICATIONS = "proxy-template-modifications"
ORIGIN_TRACING = "tracing"

ResourceGenerator = Callable[[MeshContext, Proxy, SharedResources], Iterable[XdsResource]]
"""(mesh, resolved proxy, the mesh's shared resources) -> resources, in a stable order.

A generator builds only what depends on the proxy; whatever many proxies share (a service's
cluster and endpoints) comes from `SharedResources`, built and serialised once.
"""


class GenerationError(ValueError):
    """A dataplane's config cannot be generated; the message names the offending field
    (`dataplane.networking.inbound[0]: ...`)."""


def sds_location(proxy: Proxy, shared: SharedResources) -> SdsLocation | None:
    """Where `proxy`'s Envoy gets its mTLS certificates; None when its mesh has mTLS off.

    Raises GenerationError when the mesh has mTLS on but the control plane was not told where
    its SDS server is (GeneratorSettings), since Envoy could never get a certificate.
    """
    if not proxy.mtls:
        return None
    settings = shared.settings
    if not settings.sds_configured:
        raise GenerationError(
            f"mesh {proxy.id.mesh!r} has mTLS enabled, but the control plane has no SDS server "
            "location (GeneratorSettings.sds_target and sds_ca_pem) to give Envoy"
        )
    token_path = proxy.metadata.dataplane_token_path
    location = shared.memo(
        ("sds-location", token_path),
        lambda: SdsLocation(settings.sds_target, settings.sds_ca_pem, token_path),
    )
    assert isinstance(location, SdsLocation)
    return location


def _join_host_port(host: str, port: int) -> str:
    try:
        if isinstance(ipaddress.ip_address(host), ipaddress.IPv6Address):
            return f"[{host}]:{port}"
    except ValueError:
        pass
    return f"{host}:{port}"


def access_log_variables(
    proxy: Proxy, destination: str, direction: str = TrafficDirection.OUTBOUND
) -> dict[str, str]:
    """Kuma's `%KUMA_*%` placeholders for traffic of `proxy` to `destination`."""
    address = proxy.address
    return {
        al.KUMA_SOURCE_ADDRESS: _join_host_port(address, 0),
        al.KUMA_SOURCE_ADDRESS_WITHOUT_PORT: address,
        al.KUMA_SOURCE_SERVICE: identifying_service(proxy.dataplane.spec),
        al.KUMA_DESTINATION_SERVICE: destination,
        al.KUMA_MESH: proxy.id.mesh,
        al.KUMA_TRAFFIC_DIRECTION: direction,
    }
