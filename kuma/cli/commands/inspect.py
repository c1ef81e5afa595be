"""`kumactl inspect dataplanes` and `kumactl inspect zones`."""

from __future__ import annotations

import urllib.parse

import click

from kuma.cli.client import list_overviews
from kuma.cli.commands.get import output_flag, output_format
from kuma.cli.context import kumactl_of
from kuma.cli.errors import KumactlError
from kuma.cli.framework import GoFlag, KumaCommand, KumaGroup
from kuma.cli.output import OutputFormat, to_json, to_yaml
from kuma.cli.tables import dataplane_overviews_table, zone_overviews_table
from kuma.pb.kuma.mesh.v1alpha1 import DataplaneOverview
from kuma.pb.kuma.system.v1alpha1 import ZoneOverview

__all__ = ["inspect_group"]


def _print(fmt: OutputFormat, items: list[dict[str, object]], total: int) -> None:
    body = {"total": total, "items": items, "next": None}
    click.echo(to_json(body) if fmt is OutputFormat.JSON else to_yaml(body), nl=False)


@click.pass_context
def _dataplanes(ctx: click.Context, tag: tuple[list[tuple[str, str]], ...], gateway: bool) -> None:
    kumactl = kumactl_of(ctx)
    fmt = output_format(ctx)
    tags: dict[str, str] = {}
    for pairs in tag:
        tags.update(pairs)
    params: list[tuple[str, str]] = []
    if gateway:
        params.append(("gateway", "true"))
    params.extend(("tag", f"{k}:{v}") for k, v in tags.items())
    path = f"/meshes/{urllib.parse.quote(kumactl.mesh, safe='')}/dataplanes+insights"
    page = list_overviews(kumactl.api_client(), path, DataplaneOverview, params)
    if fmt is OutputFormat.TABLE:
        table = dataplane_overviews_table(page.items, kumactl.now(), kumactl.runtime.tz)
        click.echo(table, nl=False)
        return
    _print(fmt, [o.output() for o in page.items], page.total)


@click.pass_context
def _zones(ctx: click.Context) -> None:
    kumactl = kumactl_of(ctx)
    fmt = output_format(ctx)
    try:
        page = list_overviews(kumactl.api_client(), "/zones+insights", ZoneOverview)
    except KumactlError as e:
        raise e.wrap("failed to list zone overviews") from None
    if fmt is OutputFormat.TABLE:
        click.echo(zone_overviews_table(page.items, kumactl.now()), nl=False)
        return
    _print(fmt, [o.output() for o in page.items], page.total)


def inspect_group() -> KumaGroup:
    group = KumaGroup("inspect", short="Inspect Kuma resources", params=[output_flag()])
    group.add_command(
        KumaCommand(
            "dataplanes",
            short="Inspect Dataplanes",
            callback=_dataplanes,
            params=[
                GoFlag(
                    ["--tag"],
                    go_type="stringToString",
                    help="filter by tag in format of key=value. You can provide many tags",
                ),
                GoFlag(["--gateway"], go_type=None, help="filter gateway dataplanes"),
            ],
        )
    )
    group.add_command(KumaCommand("zones", short="Inspect Zones", callback=_zones))
    return group
