"""Transparent proxying (Kuma's TransparentProxyGenerator).

With `networking.transparentProxying.redirectPortOutbound` set, iptables redirects the
workload's outgoing traffic to `outbound:passthrough` (0.0.0.0:<redirectPortOutbound>) and
incoming traffic to `inbound:passthrough` (0.0.0.0:<redirectPortInbound>). Both listeners hand
each connection to the listener of its original destination (`use_original_dst`), falling back
to their own tcp_proxy to an ORIGINAL_DST cluster of the same name. The inbound passthrough
cluster binds upstream connections to 127.0.0.6 so iptables does not redirect them again.

A TrafficLog for the `pass_through` service logs connections leaving through
`outbound:passthrough` (destination service `external`, traffic direction UNSPECIFIED). The
four resources are shared between proxies with the same redirect ports, except for a proxy
with such a log, whose passthrough listener is its own.
"""

from __future__ import annotations

from typing import Any

from kuma.xds.core import CLUSTER, LISTENER, MeshContext, XdsResource
from kuma.xds.envoy import ClusterSubset
from kuma.xds.envoy import accesslog as al
from kuma.xds.envoy import clusters as c
from kuma.xds.envoy import listeners as lst
from kuma.xds.generators.base import ORIGIN_TRANSPARENT, GenerationError, access_log_variables
from kuma.xds.generators.shared import SharedResources
from kuma.xds.names import INBOUND_PASSTHROUGH, OUTBOUND_PASSTHROUGH
from kuma.xds.topology import Proxy

__all__ = ["EXTERNAL_SERVICE", "INBOUND_PASSTHROUGH_SOURCE", "generate_transparent_proxy"]

INBOUND_PASSTHROUGH_SOURCE = "127.0.0.6"
EXTERNAL_SERVICE = "external"
"""The destination service access logs name for passthrough traffic."""


def _outbound_listener(outbound_port: int, log: Any | None = None) -> XdsResource:
    listener = (
        lst.listener_builder()
        .configure(
            lst.outbound_listener(OUTBOUND_PASSTHROUGH, "0.0.0.0", outbound_port),
            lst.filter_chain(
                lst.filter_chain_builder().configure(
                    lst.tcp_proxy(OUTBOUND_PASSTHROUGH, [ClusterSubset(OUTBOUND_PASSTHROUGH)]),
                    lst.network_access_log(log),
                )
            ),
            lst.original_dst_forwarder,
        )
        .build()
    )
    return XdsResource(OUTBOUND_PASSTHROUGH, LISTENER, listener, ORIGIN_TRANSPARENT)


def _build(outbound_port: int, inbound_port: int) -> list[XdsResource]:
    outbound_cluster = (
        c.cluster_builder().configure(c.passthrough_cluster(OUTBOUND_PASSTHROUGH)).build()
    )
    inbound_cluster = (
        c.cluster_builder()
        .configure(
            c.passthrough_cluster(INBOUND_PASSTHROUGH),
            c.upstream_bind_config(INBOUND_PASSTHROUGH_SOURCE, 0),
        )
        .build()
    )
    inbound_listener = (
        lst.listener_builder()
        .configure(
            lst.inbound_listener(INBOUND_PASSTHROUGH, "0.0.0.0", inbound_port),
            lst.filter_chain(
                lst.filter_chain_builder().configure(
                    lst.tcp_proxy(INBOUND_PASSTHROUGH, [ClusterSubset(INBOUND_PASSTHROUGH)])
                )
            ),
            lst.original_dst_forwarder,
        )
        .build()
    )
    return [
        _outbound_listener(outbound_port),
        XdsResource(OUTBOUND_PASSTHROUGH, CLUSTER, outbound_cluster, ORIGIN_TRANSPARENT),
        XdsResource(INBOUND_PASSTHROUGH, LISTENER, inbound_listener, ORIGIN_TRANSPARENT),
        XdsResource(INBOUND_PASSTHROUGH, CLUSTER, inbound_cluster, ORIGIN_TRANSPARENT),
    ]


def generate_transparent_proxy(
    ctx: MeshContext, proxy: Proxy, shared: SharedResources
) -> list[XdsResource]:
    tp = proxy.transparent_proxying
    if tp is None or not tp.redirect_port_outbound:
        return []
    outbound_port, inbound_port = tp.redirect_port_outbound, tp.redirect_port_inbound
    # The four resources depend on the two ports only: share them between proxies.
    resources = list(
        shared.resources(
            ("transparent", outbound_port, inbound_port),
            lambda: _build(outbound_port, inbound_port),
        )
    )
    if proxy.passthrough_log is None:
        return resources
    try:
        log = lst.access_log(
            proxy.passthrough_log,
            al.DEFAULT_TCP_FORMAT,
            access_log_variables(proxy, EXTERNAL_SERVICE, lst.TrafficDirection.UNSPECIFIED),
            http=False,
        )
    except ValueError as e:
        raise GenerationError(f"could not generate listener {OUTBOUND_PASSTHROUGH}: {e}") from e
    own = _outbound_listener(outbound_port, log)
    return [
        own if r.type_url == LISTENER and r.name == OUTBOUND_PASSTHROUGH else r for r in resources
    ]
