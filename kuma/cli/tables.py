"""The tables of `kumactl get` and `kumactl inspect`.

Every type prints `MESH NAME AGE` except the few whose columns genuinely differ in Kuma:
meshes, dataplanes and zones (`get`), and the overviews of `inspect dataplanes|zones`.
AGE is counted from the resource's *modification* time, as kumactl 0.7.3 does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from kuma.cli.client import Overview
from kuma.cli.output import ago, date_cell, format_table, tags_cell, time_since
from kuma.model import registry
from kuma.model.resource import Resource, ResourceType

__all__ = [
    "dataplane_overviews_table",
    "pagination_footer",
    "resources_table",
    "zone_overviews_table",
]

Row = Callable[[Resource, dt.datetime], Sequence[str]]


def pagination_footer(next_offset: str) -> str:
    if not next_offset:
        return ""
    return f"Rerun command with --offset={next_offset} argument to retrieve more resources"


def _mesh_row(mesh: Resource, now: dt.datetime) -> Sequence[str]:
    spec = mesh.spec
    mtls = "off"
    if spec.mtls is not None and spec.mtls.enabled_backend:
        name = spec.mtls.enabled_backend
        backend = next((b for b in spec.mtls.backends if b.name == name), None)
        mtls = f"{backend.type if backend else ''}/{name}"
    metrics = "off"
    if spec.metrics is not None and spec.metrics.enabled_backend:
        name = spec.metrics.enabled_backend
        backend = next((b for b in spec.metrics.backends if b.name == name), None)
        metrics = f"{backend.type if backend else ''}/{name}"
    logging = "off"
    if spec.logging is not None:
        logging = ", ".join(b.name for b in spec.logging.backends) or "off"
    tracing = "off"
    if spec.tracing is not None:
        tracing = ", ".join(b.name for b in spec.tracing.backends) or "off"
    return [
        mesh.meta.name,
        mtls,
        metrics,
        logging,
        tracing,
        time_since(mesh.meta.modification_time, now),
    ]


def dataplane_tags(spec: Any) -> str:
    """`TAGS` of a Dataplane spec: inbound and gateway tags, `k=v1,v2` sorted, space-joined."""
    networking = spec.networking if spec is not None else None
    if networking is None:
        return ""
    maps: list[dict[str, str]] = [dict(i.tags) for i in networking.inbound]
    if networking.gateway is not None:
        maps.append(dict(networking.gateway.tags))
    return tags_cell(maps)


def _dataplane_row(dp: Resource, now: dt.datetime) -> Sequence[str]:
    return [
        dp.meta.mesh,
        dp.meta.name,
        dataplane_tags(dp.spec),
        time_since(dp.meta.modification_time, now),
    ]


def _zone_row(zone: Resource, now: dt.datetime) -> Sequence[str]:
    ingress = zone.spec.ingress.address if zone.spec.ingress is not None else ""
    return [zone.meta.name, ingress, time_since(zone.meta.modification_time, now)]


def _default_row(res: Resource, now: dt.datetime) -> Sequence[str]:
    return [res.meta.mesh, res.meta.name, time_since(res.meta.modification_time, now)]


_TABLES: dict[str, tuple[tuple[str, ...], Row]] = {
    registry.MESH.name: (("NAME", "mTLS", "METRICS", "LOGGING", "TRACING", "AGE"), _mesh_row),
    registry.DATAPLANE.name: (("MESH", "NAME", "TAGS", "AGE"), _dataplane_row),
    registry.ZONE.name: (("NAME", "INGRESS", "AGE"), _zone_row),
}
_DEFAULT_TABLE: tuple[tuple[str, ...], Row] = (("MESH", "NAME", "AGE"), _default_row)


def resources_table(
    rtype: ResourceType, items: Sequence[Resource], now: dt.datetime, footer: str = ""
) -> str:
    headers, row = _TABLES.get(rtype.name, _DEFAULT_TABLE)
    return format_table(headers, (row(r, now) for r in items), footer)


def _latest_subscription(subscriptions: Sequence[Any]) -> tuple[Any, dt.datetime | None]:
    """Kuma's GetLatestSubscription: the one connected last (the first if none has a time)."""
    if not subscriptions:
        return None, None
    index, latest = 0, None
    for i, s in enumerate(subscriptions):
        if s.connect_time is None:
            continue
        if latest is None or latest < s.connect_time:
            index, latest = i, s.connect_time
    return subscriptions[index], latest


def _subscription_stats(subscriptions: Sequence[Any]) -> tuple[str, dt.datetime | None, int, int]:
    online = any(s.connect_time is not None and s.disconnect_time is None for s in subscriptions)
    last, _ = _latest_subscription(subscriptions)
    last_updated = (
        last.status.last_update_time if last is not None and last.status is not None else None
    )
    sent = rejected = 0
    for s in subscriptions:
        total = s.status.total if s.status is not None else None
        if total is not None:
            sent += total.responses_sent
            rejected += total.responses_rejected
    return ("Online" if online else "Offline"), last_updated, sent, rejected


def dataplane_overviews_table(
    items: Sequence[Overview], now: dt.datetime, tz: dt.tzinfo | None
) -> str:
    headers = (
        "MESH",
        "NAME",
        "TAGS",
        "STATUS",
        "LAST CONNECTED AGO",
        "LAST UPDATED AGO",
        "TOTAL UPDATES",
        "TOTAL ERRORS",
        "CERT REGENERATED AGO",
        "CERT EXPIRATION",
        "CERT REGENERATIONS",
    )

    def row(o: Overview) -> Sequence[str]:
        insight = o.spec.dataplane_insight
        subscriptions = insight.subscriptions if insight is not None else []
        status, last_updated, sent, rejected = _subscription_stats(subscriptions)
        _, last_connected = _latest_subscription(subscriptions)
        mtls = insight.m_tls if insight is not None else None
        return [
            o.mesh,
            o.name,
            dataplane_tags(o.spec.dataplane),
            status,
            ago(last_connected, now),
            ago(last_updated, now),
            str(sent),
            str(rejected),
            ago(mtls.last_certificate_regeneration if mtls else None, now),
            date_cell(mtls.certificate_expiration_time if mtls else None, tz),
            str(mtls.certificate_regenerations if mtls else 0),
        ]

    return format_table(headers, (row(o) for o in items))


def zone_overviews_table(items: Sequence[Overview], now: dt.datetime) -> str:
    headers = (
        "MESH",
        "NAME",
        "INGRESS",
        "STATUS",
        "LAST CONNECTED AGO",
        "LAST UPDATED AGO",
        "TOTAL UPDATES",
        "TOTAL ERRORS",
    )

    def row(o: Overview) -> Sequence[str]:
        insight = o.spec.zone_insight
        subscriptions = insight.subscriptions if insight is not None else []
        status, last_updated, sent, rejected = _subscription_stats(subscriptions)
        _, last_connected = _latest_subscription(subscriptions)
        zone = o.spec.zone
        ingress = zone.ingress.address if zone is not None and zone.ingress is not None else ""
        return [
            o.mesh,
            o.name,
            ingress,
            status,
            ago(last_connected, now),
            ago(last_updated, now),
            str(sent),
            str(rejected),
        ]

    return format_table(headers, (row(o) for o in items))
