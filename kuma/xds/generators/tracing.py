"""The tracing collector's cluster (Kuma's TracingProxyGenerator).

When a TrafficTrace selects the dataplane and names a mesh tracing backend (or the mesh has a
default one), HTTP connection managers report spans to cluster `tracing:<backend name>`: a
STRICT_DNS cluster at the host and port of the backend's zipkin `url` (the port defaults to 80
for http and 443 for https). The cluster depends on the backend only, so proxies share it.
"""

from __future__ import annotations

from kuma.xds.core import CLUSTER, MeshContext, XdsResource
from kuma.xds.envoy import clusters as c
from kuma.xds.envoy import listeners as lst
from kuma.xds.generators.base import ORIGIN_TRACING, GenerationError
from kuma.xds.generators.shared import SharedResources
from kuma.xds.names import tracing_cluster_name
from kuma.xds.topology import Proxy

__all__ = ["generate_tracing"]


def generate_tracing(ctx: MeshContext, proxy: Proxy, shared: SharedResources) -> list[XdsResource]:
    backend = proxy.tracing_backend
    if backend is None or backend.type != "zipkin":
        return []
    conf = backend.conf.to_dict() if backend.conf is not None else {}
    name = tracing_cluster_name(backend.name)
    try:
        host, port, _ = lst.zipkin_collector(conf)
    except ValueError as e:
        raise GenerationError(f"could not generate zipkin cluster {name}: {e}") from e

    def build() -> XdsResource:
        cluster = c.cluster_builder().configure(c.dns_cluster(name, host, port)).build()
        return XdsResource(name, CLUSTER, cluster, ORIGIN_TRACING)

    return [shared.resource(("tracing", name, host, port), build)]
