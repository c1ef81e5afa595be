"""`kumactl generate dataplane-token --dataplane=NAME [-m MESH]` (Kuma 0.7.3).

    kumactl generate dataplane-token --dataplane=web-01 > /tmp/web-01.token

Asks the control plane's catalog whether it serves dataplane tokens (`apis.dataplaneToken.localUrl`
is set), picks the admin server like every admin command (its local URL when the control plane
address resolves to this machine, else `apis.dataplaneToken.publicUrl` over TLS with the
context's client certificate), POSTs `{"name", "mesh"}` to `/tokens` and prints the token with no
trailing newline.

The command is registered in the `generate` group by kumactl's root:
`generate_group(dataplane_token_command())`.
"""

from __future__ import annotations

import click

from kuma.cli.context import kumactl_of
from kuma.cli.errors import KumactlError
from kuma.cli.framework import GoFlag, KumaCommand

__all__ = ["TOKEN_SERVER_DISABLED_MESSAGE", "dataplane_token_command"]

TOKEN_SERVER_DISABLED_MESSAGE = "Enable the server to be able to generate tokens."


def _token_server_enabled(catalog: object) -> bool:
    apis = catalog.get("apis") if isinstance(catalog, dict) else None
    token = apis.get("dataplaneToken") if isinstance(apis, dict) else None
    local = token.get("localUrl") if isinstance(token, dict) else None
    return isinstance(local, str) and bool(local)


@click.pass_context
def _dataplane_token(ctx: click.Context, dataplane: str) -> None:
    kumactl = kumactl_of(ctx)
    try:
        catalog = kumactl.api_client().get_json("/catalog")
        if not _token_server_enabled(catalog):
            raise KumactlError(TOKEN_SERVER_DISABLED_MESSAGE)
        client = kumactl.admin_store().client
    except KumactlError as e:
        raise e.wrap("failed to create dataplane token client") from None
    try:
        status, body = client.request(
            "POST", "/tokens", body={"name": dataplane, "mesh": kumactl.mesh}
        )
        if status != 200:
            raise KumactlError(f"unexpected status code {status}. Expected 200")
    except KumactlError as e:
        raise e.wrap("failed to generate a dataplane token") from None
    click.echo(body.decode("utf-8", "replace"), nl=False)


def dataplane_token_command() -> KumaCommand:
    """`kumactl generate dataplane-token`."""
    return KumaCommand(
        "dataplane-token",
        short="Generate Dataplane Token",
        long="Generate Dataplane Token that is used to prove Dataplane identity.",
        callback=_dataplane_token,
        params=[
            GoFlag(["--dataplane", "dataplane"], help="name of the Dataplane", go_required=True)
        ],
    )
