"""`kumactl generate dataplane-token` against a real control plane (kuma.api's REST API and
admin server served by hypercorn on loopback, see control_plane.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuma.model import registry
from kuma.tokens import (
    SIGNING_KEY_MESH,
    SIGNING_KEY_NAME,
    DataplaneTokenIssuer,
    TokenIdentity,
    ensure_signing_key,
    signing_key_accessor,
)
from tests.cli.conftest import KumactlRunner, StaticServer
from tests.cli.control_plane import ControlPlane, running_control_plane

pytestmark = pytest.mark.e2e

HELP = """\
Generate Dataplane Token that is used to prove Dataplane identity.

Usage:
  kumactl generate dataplane-token [flags]

Flags:
      --dataplane string   name of the Dataplane
  -h, --help               help for dataplane-token

Global Flags:
      --config-file string   path to the configuration file to use
      --log-level string     log level: one of off|info|debug (default "off")
  -m, --mesh string          mesh to use (default "default")
"""


@pytest.fixture
def cp() -> Iterator[ControlPlane]:
    with running_control_plane() as plane:
        plane.call(lambda: ensure_signing_key(plane.manager))
        yield plane


def use(kumactl: KumactlRunner, url: str) -> KumactlRunner:
    kumactl.config_file.parent.mkdir(parents=True, exist_ok=True)
    kumactl.config_file.write_text(
        "contexts:\n- controlPlane: test\n  name: test\ncontrolPlanes:\n- coordinates:\n"
        f"    apiServer:\n      url: {url}\n  name: test\ncurrentContext: test\n"
    )
    return kumactl


def verify(cp: ControlPlane, token: str) -> TokenIdentity:
    issuer = DataplaneTokenIssuer(signing_key_accessor(cp.manager))
    return cp.call(lambda: issuer.verify(token))


def test_prints_the_token_without_a_newline(kumactl: KumactlRunner, cp: ControlPlane) -> None:
    result = use(kumactl, cp.url)("generate", "dataplane-token", "--dataplane=web-01")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    token = result.stdout
    assert token.count(".") == 2
    assert not token.endswith("\n")
    assert verify(cp, token) == TokenIdentity(mesh="default", name="web-01")


def test_mesh_flag(kumactl: KumactlRunner, cp: ControlPlane) -> None:
    kctl = use(kumactl, cp.url)
    for args in (
        ("generate", "dataplane-token", "--dataplane", "web-01", "-m", "demo"),
        ("--mesh=demo", "generate", "dataplane-token", "--dataplane=web-01"),
    ):
        result = kctl(*args)
        assert result.exit_code == 0, result.output
        assert verify(cp, result.stdout) == TokenIdentity(mesh="demo", name="web-01")


def test_as_a_real_process_redirected_to_a_file(cp: ControlPlane, tmp_path: Path) -> None:
    """`kumactl generate dataplane-token --dataplane=web-01 > token`, as the docs say."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA")}
    env["HOME"] = str(tmp_path)
    add = subprocess.run(
        [sys.executable, "-m", "kuma.cli", "config", "control-planes", "add",
         "--name", "test", "--address", cp.url],
        capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    token_file = tmp_path / "token"
    with token_file.open("wb") as out:
        done = subprocess.run(
            [sys.executable, "-m", "kuma.cli", "generate", "dataplane-token",
             "--dataplane=web-01"],
            stdout=out, stderr=subprocess.PIPE, env=env, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    data = token_file.read_bytes()
    assert not data.endswith(b"\n")
    assert verify(cp, data.decode()) == TokenIdentity(mesh="default", name="web-01")


def test_the_dataplane_flag_is_required(kumactl: KumactlRunner, cp: ControlPlane) -> None:
    result = use(kumactl, cp.url)("generate", "dataplane-token")
    assert result.exit_code == 1
    assert result.stderr.startswith('Error: required flag(s) "dataplane" not set\n')
    assert result.stdout == ""


def test_an_empty_name_is_refused_by_the_server(kumactl: KumactlRunner, cp: ControlPlane) -> None:
    result = use(kumactl, cp.url)("generate", "dataplane-token", "--dataplane=")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Invalid request (Resource is not valid)\n* name: cannot be empty\n"
    )


def test_no_signing_key(kumactl: KumactlRunner, cp: ControlPlane) -> None:
    cp.call(lambda: cp.manager.store.delete(registry.SECRET, SIGNING_KEY_NAME, SIGNING_KEY_MESH))
    result = use(kumactl, cp.url)("generate", "dataplane-token", "--dataplane=web-01")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Could not issue a token (there is no Signing Key in the Control Plane. If you "
        "run multi-zone setup, make sure Remote is connected to the Global before generating "
        "tokens.)\n"
    )


def test_a_control_plane_without_a_token_server(
    kumactl: KumactlRunner, static_server: StaticServer
) -> None:
    static_server.body = json.dumps(
        {
            "apis": {
                "bootstrap": {"url": "http://localhost:5682"},
                "dataplaneToken": {"localUrl": "", "publicUrl": ""},
                "admin": {"localUrl": "http://localhost:5679", "publicUrl": ""},
                "monitoringAssignment": {"url": "grpc://localhost:5676"},
            }
        }
    ).encode()
    result = use(kumactl, static_server.url)("generate", "dataplane-token", "--dataplane=web-01")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: failed to create dataplane token client: Enable the server to be able to "
        "generate tokens.\n"
    )
    assert "/catalog" in static_server.requests


def test_an_unreachable_admin_server(kumactl: KumactlRunner, static_server: StaticServer) -> None:
    static_server.body = json.dumps(
        {
            "apis": {
                "bootstrap": {"url": "http://localhost:5682"},
                "dataplaneToken": {"localUrl": "http://127.0.0.1:1", "publicUrl": ""},
                "admin": {"localUrl": "http://127.0.0.1:1", "publicUrl": ""},
            }
        }
    ).encode()
    result = use(kumactl, static_server.url)("generate", "dataplane-token", "--dataplane=web-01")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        'Error: failed to generate a dataplane token: Post "http://127.0.0.1:1/tokens": could '
        "not connect to the Control Plane at http://127.0.0.1:1"
    )


def test_help(kumactl: KumactlRunner) -> None:
    result = kumactl("generate", "dataplane-token", "--help")
    assert result.exit_code == 0
    assert result.stdout == HELP


def test_rotating_the_key_as_the_docs_say(kumactl: KumactlRunner, cp: ControlPlane) -> None:
    """docs/tokens.md: `kumactl apply` a new signing key; old tokens stop working at once."""
    import base64

    from kuma.tokens import TokenRejectedError, make_authenticator
    from kuma.xds.core import ProxyId

    kctl = use(kumactl, cp.url)
    old = kctl("generate", "dataplane-token", "--dataplane=web-01").stdout
    new_key = base64.b64encode(os.urandom(256)).decode()
    secret = f"type: Secret\nmesh: default\nname: dataplane-token-signing-key\ndata: {new_key}\n"
    applied = kctl("apply", "-f", "-", input=secret)
    assert applied.exit_code == 0, applied.output
    new = kctl("generate", "dataplane-token", "--dataplane=web-01").stdout
    assert new != old
    authenticate = make_authenticator(cp.manager)
    web = ProxyId("default", "web-01")
    cp.call(lambda: authenticate(web, {"authorization": new}))
    with pytest.raises(TokenRejectedError, match="signature is invalid"):
        cp.call(lambda: authenticate(web, {"authorization": old}))
