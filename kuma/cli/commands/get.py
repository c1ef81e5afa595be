"""`kumactl get <plural>` and `kumactl get <singular> NAME` for every type in the registry."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from kuma.cli.client import RemoteStore, resource_output
from kuma.cli.context import Kumactl, kumactl_of
from kuma.cli.errors import KumactlError, NotFoundError
from kuma.cli.framework import GoFlag, KumaCommand, KumaGroup, minimum_args, persistent
from kuma.cli.output import OutputFormat, to_json, to_yaml
from kuma.cli.tables import pagination_footer, resources_table
from kuma.model import registry
from kuma.model.resource import ResourceType

__all__ = ["get_group", "kumactl_types", "output_format", "plural_word"]


def kumactl_types() -> list[ResourceType]:
    """The types kumactl has nouns for, in kumactl's order."""
    return [t for t in registry.all_types() if t.singular and t.plural]


def plural_word(rtype: ResourceType) -> str:
    """`Meshes`, `Dataplanes`, `TrafficRoutes`, `Retries`."""
    name = rtype.name
    if name.endswith("y") and name[-2:-1] not in ("a", "e", "i", "o", "u"):
        return name[:-1] + "ies"
    return name + ("es" if name.endswith(("s", "sh", "ch", "x")) else "s")


def output_format(ctx: click.Context) -> OutputFormat:
    try:
        return OutputFormat.parse(persistent(ctx, "output"))
    except ValueError as e:
        raise KumactlError(str(e)) from None


def _print_structured(fmt: OutputFormat, value: object) -> None:
    click.echo(to_json(value) if fmt is OutputFormat.JSON else to_yaml(value), nl=False)


def _store(kumactl: Kumactl, rtype: ResourceType) -> RemoteStore:
    return kumactl.admin_store() if rtype.admin_only else kumactl.resource_store()


def _list_command(rtype: ResourceType) -> KumaCommand:
    paginated = not rtype.admin_only

    @click.pass_context
    def run(ctx: click.Context, size: int = 0, offset: str = "") -> None:
        kumactl = kumactl_of(ctx)
        fmt = output_format(ctx)
        mesh = kumactl.mesh
        store = _store(kumactl, rtype)
        try:
            page = store.list(rtype, mesh, size=size, offset=offset)
        except KumactlError as e:
            raise e.wrap(f"failed to list {plural_word(rtype)}") from None
        if fmt is OutputFormat.TABLE:
            footer = pagination_footer(page.next_offset) if paginated else ""
            click.echo(resources_table(rtype, page.items, kumactl.now(), footer), nl=False)
            return
        # kumactl re-serialises the list and never fills in `next`.
        body = {
            "total": page.total,
            "items": [resource_output(r) for r in page.items],
            "next": None,
        }
        _print_structured(fmt, body)

    params: list[click.Parameter] = []
    if paginated:
        params = [
            GoFlag(
                ["--offset"],
                help="the offset that indicates starting element of the resources list to retrieve",
            ),
            GoFlag(["--size"], go_type="int", help="maximum number of elements to return"),
        ]
    assert rtype.plural is not None
    return KumaCommand(
        rtype.plural, short=f"Show {plural_word(rtype)}", callback=run, params=params
    )


def _single_command(rtype: ResourceType) -> KumaCommand:
    @click.pass_context
    def run(ctx: click.Context, args: Sequence[str]) -> None:
        kumactl = kumactl_of(ctx)
        fmt = output_format(ctx)
        name = args[0]
        # Kuma looks a Mesh up in the mesh of its own name, a Zone in `default`.
        if rtype is registry.MESH:
            mesh = name
        elif not rtype.mesh_scoped:
            mesh = "default"
        else:
            mesh = kumactl.mesh
        store = _store(kumactl, rtype)
        try:
            resource = store.get(rtype, name, mesh)
        except NotFoundError:
            if rtype is registry.ZONE:
                raise KumactlError("No zone resources found") from None
            raise KumactlError(f"No resources found in {mesh} mesh") from None
        except KumactlError as e:
            raise e.wrap(f"failed to get {rtype.singular} {json.dumps(name)}") from None
        if fmt is OutputFormat.TABLE:
            click.echo(resources_table(rtype, [resource], kumactl.now()), nl=False)
            return
        _print_structured(fmt, resource_output(resource))

    assert rtype.singular is not None
    return KumaCommand(
        rtype.singular,
        use=f"{rtype.singular} NAME",
        short=f"Show a single {rtype.name} resource",
        callback=run,
        params=[click.Argument(["args"], nargs=-1)],
        args_check=minimum_args(1),
    )


def output_flag() -> GoFlag:
    return GoFlag(
        ["-o", "--output"],
        go_default="table",
        help="output format: one of table|yaml|json",
        persistent=True,
    )


def get_group() -> KumaGroup:
    group = KumaGroup("get", short="Show Kuma resources", params=[output_flag()])
    for rtype in kumactl_types():
        group.add_command(_list_command(rtype))
        group.add_command(_single_command(rtype))
    return group
