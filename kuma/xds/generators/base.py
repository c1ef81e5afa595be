"""The generator contract and the origins that tag generated resources."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kuma.xds.core import MeshContext, XdsResource
from kuma.xds.generators.shared import SharedResources
from kuma.xds.topology import Proxy

__all__ = [
    "ORIGIN_DIRECT_ACCESS",
    "ORIGIN_INBOUND",
    "ORIGIN_OUTBOUND",
    "ORIGIN_PROMETHEUS",
    "ORIGIN_PROXY_TEMPLATE_RAW",
    "ORIGIN_TRANSPARENT",
    "GenerationError",
    "ResourceGenerator",
]

# Which generator made a resource; ProxyTemplate modifications select resources by origin.
ORIGIN_INBOUND = "inbound"
ORIGIN_OUTBOUND = "outbound"
ORIGIN_TRANSPARENT = "transparent"
ORIGIN_PROMETHEUS = "prometheus"
ORIGIN_DIRECT_ACCESS = "direct-access"
ORIGIN_PROXY_TEMPLATE_RAW = "proxy-template-raw"

ResourceGenerator = Callable[[MeshContext, Proxy, SharedResources], Iterable[XdsResource]]
"""(mesh, resolved proxy, the mesh's shared resources) -> resources, in a stable order.

A generator builds only what depends on the proxy; whatever many proxies share (a service's
cluster and endpoints) comes from `SharedResources`, built and serialised once.
"""


class GenerationError(ValueError):
    """A dataplane's config cannot be generated; the message names the offending field
    (`dataplane.networking.inbound[0]: ...`)."""
