"""Route configuration and virtual host builders (Kuma's `pkg/xds/envoy/routes`, v3 API).

Kuma inlines every route configuration in its listener's HttpConnectionManager (no RDS).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from envoy.config.route.v3 import route_components_pb2, route_pb2

from kuma.xds.envoy.common import (
    TAGS_HEADER,
    Builder,
    ClusterSubset,
    Configurer,
    lb_metadata,
    serialize_tags,
)

__all__ = [
    "RouteConfigurationConfigurer",
    "VirtualHostConfigurer",
    "common_route_configuration",
    "common_virtual_host",
    "default_route",
    "reset_tags_header",
    "route_configuration_builder",
    "tags_header",
    "virtual_host",
    "virtual_host_builder",
]

RouteConfigurationConfigurer = Configurer[route_pb2.RouteConfiguration]
VirtualHostConfigurer = Configurer[route_components_pb2.VirtualHost]


def route_configuration_builder() -> Builder[route_pb2.RouteConfiguration]:
    return Builder(route_pb2.RouteConfiguration)


def virtual_host_builder() -> Builder[route_components_pb2.VirtualHost]:
    return Builder(route_components_pb2.VirtualHost)


def common_route_configuration(name: str) -> RouteConfigurationConfigurer:
    """Name it; don't reject it for naming clusters Envoy does not know (yet)."""

    def configure(rc: route_pb2.RouteConfiguration) -> None:
        rc.name = name
        rc.validate_clusters.value = False

    return configure


def reset_tags_header(rc: route_pb2.RouteConfiguration) -> None:
    """Strip `x-kuma-tags` before the request reaches the application (it is mesh-internal)."""
    rc.request_headers_to_remove.append(TAGS_HEADER)


def tags_header(tags: Mapping[str, Sequence[str]]) -> RouteConfigurationConfigurer | None:
    """Add `x-kuma-tags: &tag=v1,v2&...` (the source dataplane's tags); None without tags."""
    if not tags:
        return None
    value = serialize_tags(tags)

    def configure(rc: route_pb2.RouteConfiguration) -> None:
        option = rc.request_headers_to_add.add()
        option.header.key = TAGS_HEADER
        option.header.value = value

    return configure


def virtual_host(
    builder: Builder[route_components_pb2.VirtualHost],
) -> RouteConfigurationConfigurer:
    def configure(rc: route_pb2.RouteConfiguration) -> None:
        rc.virtual_hosts.append(builder.build())

    return configure


def common_virtual_host(name: str) -> VirtualHostConfigurer:
    """Name it and match every authority (`*`)."""

    def configure(vh: route_components_pb2.VirtualHost) -> None:
        vh.name = name
        vh.domains.append("*")

    return configure


def default_route(
    subsets: Iterable[ClusterSubset], timeout: dt.timedelta | None = None
) -> VirtualHostConfigurer:
    """Prefix `/` to one cluster (with a metadata match for a tagged subset), or split by
    weight between several (each with its own metadata match). `timeout`: the route's
    request timeout (None: Envoy's default)."""
    subsets = list(subsets)

    def configure(vh: route_components_pb2.VirtualHost) -> None:
        route = vh.routes.add()
        route.match.prefix = "/"
        action = route.route
        if timeout is not None:
            action.timeout.FromTimedelta(timeout)
        if len(subsets) == 1:
            action.cluster = subsets[0].cluster
            lb_metadata(subsets[0].tags, action.metadata_match)
        else:
            # No total_weight: deprecated in v3, Envoy sums the weights itself.
            weighted = action.weighted_clusters
            for subset in subsets:
                cw = weighted.clusters.add()
                cw.name = subset.cluster
                cw.weight.value = subset.weight
                lb_metadata(subset.tags, cw.metadata_match)

    return configure
