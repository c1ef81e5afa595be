"""`kumactl delete TYPE NAME`."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click

from kuma.cli.context import kumactl_of
from kuma.cli.errors import KumactlError, NotFoundError
from kuma.cli.framework import KumaCommand, exact_args
from kuma.model import registry

__all__ = ["delete_command"]


@click.pass_context
def _delete(ctx: click.Context, args: Sequence[str]) -> None:
    kumactl = kumactl_of(ctx)
    word, name = args
    allowed = registry.kumactl_delete_names()
    rtype = registry.by_kumactl_name(word)
    if word not in allowed or rtype is None:
        raise KumactlError(f"unknown TYPE: {word}. Allowed values: {', '.join(allowed)}")
    if rtype is registry.MESH:
        mesh = name
    elif not rtype.mesh_scoped:
        mesh = "default"
    else:
        mesh = kumactl.mesh
    store = kumactl.admin_store() if rtype.admin_only else kumactl.resource_store()
    try:
        store.delete(rtype, name, mesh)
    except NotFoundError:
        raise KumactlError(f"there is no {rtype.name} with name {json.dumps(name)}") from None
    except KumactlError as e:
        raise e.wrap(f"failed to delete {rtype.name} with the name {json.dumps(name)}") from None
    click.echo(f"deleted {rtype.name} {json.dumps(name)}")


def delete_command() -> KumaCommand:
    return KumaCommand(
        "delete",
        use="delete TYPE NAME",
        short="Delete Kuma resources",
        callback=_delete,
        params=[click.Argument(["args"], nargs=-1)],
        args_check=exact_args(2),
    )
