"""`kumactl config view` and `kumactl config control-planes add|list|remove|switch`."""

from __future__ import annotations

import json

import click
import httpx

from kuma.cli.config import AdminApiCredentials, ConfigInvalidError, Context, ControlPlane
from kuma.cli.context import kumactl_of
from kuma.cli.errors import KumactlError
from kuma.cli.framework import GoFlag, KumaCommand, KumaGroup
from kuma.cli.output import format_table

__all__ = ["CONTROL_PLANE_TIMEOUT", "config_group", "validate_control_plane"]

CONTROL_PLANE_TIMEOUT = 5.0
"""Seconds `config control-planes add` waits for `GET <address>/`."""


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def validate_control_plane(url: str, *, timeout: float = CONTROL_PLANE_TIMEOUT) -> None:
    """`GET <url>` must answer 200 with `"tagline": "Kuma"` (TLS certificates not verified)."""
    try:
        with httpx.Client(timeout=timeout, verify=False, trust_env=False) as http:
            response = http.get(url)
    except httpx.InvalidURL as e:
        raise KumactlError(f"could not construct the request: {e}") from None
    except httpx.HTTPError as e:
        reason = str(e) or type(e).__name__
        raise KumactlError(
            f"could not connect to the Control Plane API Server: Get {_q(url)}: {reason}"
        ) from None
    if response.status_code != 200:
        raise KumactlError("Control Plane API Server is not responding")
    try:
        body = response.json()
    except ValueError as e:
        raise KumactlError(
            f"could not unmarshal body from the Control Plane API Server. Provided address is "
            f"not valid Kuma Control Plane API Server: {e}"
        ) from None
    if not isinstance(body, dict) or body.get("tagline") != "Kuma":
        raise KumactlError("provided address is not valid Kuma Control Plane API Server")


@click.pass_context
def _view(ctx: click.Context) -> None:
    click.echo(kumactl_of(ctx).config.to_yaml())


@click.pass_context
def _list(ctx: click.Context) -> None:
    kumactl = kumactl_of(ctx)
    config = kumactl.config
    current = config.current()
    rows = [
        [
            "*" if current is not None and current.control_plane == cp.name else "",
            cp.name,
            cp.url,
        ]
        for cp in config.control_planes
    ]
    click.echo(format_table(["ACTIVE", "NAME", "ADDRESS"], rows), nl=False)


@click.pass_context
def _add(
    ctx: click.Context,
    name: str,
    address: str,
    overwrite: bool,
    admin_client_cert: str,
    admin_client_key: str,
) -> None:
    kumactl = kumactl_of(ctx)
    cp = ControlPlane(name, address)
    try:
        cp.validate()
    except ConfigInvalidError as e:
        raise KumactlError(f"Control Plane configuration is not valid: {e.message}") from None
    validate_control_plane(address)
    config = kumactl.config
    if not config.add_control_plane(cp, overwrite=overwrite):
        raise KumactlError(
            f"Control Plane with name {_q(name)} already exists. Use --overwrite to replace an "
            "existing one."
        )
    context = Context(
        name=name,
        control_plane=name,
        admin_api=AdminApiCredentials(admin_client_cert, admin_client_key),
        has_credentials=True,
    )
    try:
        context.validate()
    except ConfigInvalidError as e:
        raise KumactlError(f"Context configuration is not valid: {e.message}") from None
    if not config.add_context(context, overwrite=overwrite):
        raise KumactlError(f"Context with name {_q(name)} already exists")
    config.current_context = name
    kumactl.save_config()
    click.echo(f"added Control Plane {_q(name)}")
    click.echo(f"switched active Control Plane to {_q(name)}")


@click.pass_context
def _remove(ctx: click.Context, name: str) -> None:
    kumactl = kumactl_of(ctx)
    config = kumactl.config
    if not config.remove_control_plane(name):
        raise KumactlError(f"there is no Control Plane with name {_q(name)}")
    kumactl.save_config()
    click.echo(f"removed Control Plane {_q(name)}")
    current = config.current()
    if current is not None:
        click.echo(f"switched active Control Plane to {_q(current.control_plane)}")
    else:
        click.echo(
            "there is no active Control Plane left. Use `kumactl config control-planes add` to "
            "add a Control Plane and make it active"
        )


@click.pass_context
def _switch(ctx: click.Context, name: str) -> None:
    kumactl = kumactl_of(ctx)
    if not kumactl.config.switch_context(name):
        raise KumactlError(f"there is no Control Plane with name {_q(name)}")
    kumactl.save_config()
    click.echo(f"switched active Control Plane to {_q(name)}")


def _name_flag() -> GoFlag:
    return GoFlag(
        ["--name"], help="reference name for the Control Plane (required)", go_required=True
    )


def config_group() -> KumaGroup:
    control_planes = KumaGroup("control-planes", short="Manage known Control Planes")
    control_planes.add_command(KumaCommand("list", short="List Control Planes", callback=_list))
    control_planes.add_command(
        KumaCommand(
            "add",
            short="Add a Control Plane",
            callback=_add,
            params=[
                _name_flag(),
                GoFlag(
                    ["--address"],
                    help="URL of the Control Plane API Server (required)",
                    go_required=True,
                ),
                GoFlag(
                    ["--overwrite"],
                    go_type=None,
                    help="overwrite existing Control Plane with the same reference name",
                ),
                GoFlag(
                    ["--admin-client-cert"],
                    help="Path to certificate of a client that is authorized to use Admin Server",
                ),
                GoFlag(
                    ["--admin-client-key"],
                    help="Path to certificate key of a client that is authorized to use Admin Server",
                ),
            ],
        )
    )
    control_planes.add_command(
        KumaCommand(
            "remove", short="Remove a Control Plane", callback=_remove, params=[_name_flag()]
        )
    )
    control_planes.add_command(
        KumaCommand(
            "switch", short="Switch active Control Plane", callback=_switch, params=[_name_flag()]
        )
    )
    group = KumaGroup("config", short="Manage kumactl config")
    group.add_command(KumaCommand("view", short="Show kumactl config", callback=_view))
    group.add_command(control_planes)
    return group
