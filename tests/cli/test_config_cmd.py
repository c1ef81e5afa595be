"""`kumactl config ...` and the config file, without a control plane (see test_e2e for `add`)."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path

import pytest

from tests.cli.conftest import KumactlRunner, StaticServer, assert_golden

# Kuma's app/kumactl/cmd/config/testdata/config-view.config.yaml: proto (snake_case) names.
SNAKE_CASE_CONFIG = """\
control_planes:
- name: test1
  coordinates:
    api_server:
      url: https://test1.internal:5681
- name: test2
  coordinates:
    api_server:
      url: https://test2.internal:5681

contexts:
- name: test1
  control_plane: test1
  defaults:
    mesh: demo
- name: test2
  control_plane: test2
  defaults:
    mesh: default

current_context: test1
"""


def write_config(kumactl: KumactlRunner, text: str) -> None:
    kumactl.config_file.parent.mkdir(parents=True, exist_ok=True)
    kumactl.config_file.write_text(text)


def test_first_use_creates_the_default_config(kumactl: KumactlRunner) -> None:
    assert not kumactl.config_file.parent.exists()
    result = kumactl("config", "view")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "contexts:\n"
        "- controlPlane: local\n"
        "  name: local\n"
        "controlPlanes:\n"
        "- coordinates:\n"
        "    apiServer:\n"
        "      url: http://localhost:5681\n"
        "  name: local\n"
        "currentContext: local\n"
        "\n"
    )
    assert stat.S_IMODE(kumactl.config_file.stat().st_mode) == 0o600
    assert kumactl.config_file.read_text() == result.stdout[:-1]


def test_default_config_file_is_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    result = KumactlRunner(tmp_path / "unused")("config", "control-planes", "list", config=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".kumactl" / "config").exists()
    assert not (tmp_path / "unused").exists()


def test_view_reads_proto_names_and_prints_json_names(kumactl: KumactlRunner) -> None:
    write_config(kumactl, SNAKE_CASE_CONFIG)
    result = kumactl("config", "view")
    assert result.exit_code == 0, result.output
    assert_golden("config-view.golden.yaml", result.stdout)


def test_list_marks_the_active_control_plane(kumactl: KumactlRunner) -> None:
    write_config(kumactl, SNAKE_CASE_CONFIG)
    result = kumactl("config", "control-planes", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "ACTIVE   NAME    ADDRESS\n"
        "*        test1   https://test1.internal:5681\n"
        "         test2   https://test2.internal:5681\n"
    )


def test_switch(kumactl: KumactlRunner) -> None:
    write_config(kumactl, SNAKE_CASE_CONFIG)
    result = kumactl("config", "control-planes", "switch", "--name", "test2")
    assert result.exit_code == 0, result.output
    assert result.stdout == 'switched active Control Plane to "test2"\n'
    assert "currentContext: test2\n" in kumactl.config_file.read_text()

    result = kumactl("config", "control-planes", "switch", "--name", "nope")
    assert result.exit_code == 1
    assert result.stderr == 'Error: there is no Control Plane with name "nope"\n'


def test_remove_active_switches_to_the_next_then_none_is_left(kumactl: KumactlRunner) -> None:
    write_config(kumactl, SNAKE_CASE_CONFIG)
    result = kumactl("config", "control-planes", "remove", "--name", "test1")
    assert result.exit_code == 0, result.output
    assert (
        result.stdout == 'removed Control Plane "test1"\nswitched active Control Plane to "test2"\n'
    )
    assert_golden("config-control-planes-remove.1.golden.yaml", kumactl.config_file.read_text())

    result = kumactl("config", "control-planes", "remove", "--name", "test2")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        'removed Control Plane "test2"\n'
        "there is no active Control Plane left. Use `kumactl config control-planes add` to add a "
        "Control Plane and make it active\n"
    )
    assert kumactl.config_file.read_text() == "{}\n"

    result = kumactl("get", "meshes")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: active Control Plane is not set. Use `kumactl config control-planes add` to add "
        "a Control Plane and make it active\n"
    )

    result = kumactl("config", "control-planes", "remove", "--name", "test2")
    assert result.exit_code == 1
    assert result.stderr == 'Error: there is no Control Plane with name "test2"\n'


def test_required_flags_are_all_reported(kumactl: KumactlRunner) -> None:
    result = kumactl("config", "control-planes", "add")
    assert result.exit_code == 1
    assert result.stderr == 'Error: required flag(s) "address", "name" not set\n'
    result = kumactl("config", "control-planes", "switch")
    assert result.stderr == 'Error: required flag(s) "name" not set\n'


def test_add_rejects_a_relative_address(kumactl: KumactlRunner) -> None:
    result = kumactl("config", "control-planes", "add", "--name", "x", "--address", "localhost")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Control Plane configuration is not valid: invalid ControlPlane.Coordinates: "
        "embedded message failed validation | caused by: invalid ControlPlaneCoordinates.ApiServer: "
        "embedded message failed validation | caused by: invalid "
        "ControlPlaneCoordinates_ApiServer.Url: value must be absolute\n"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_add_needs_a_reachable_address(kumactl: KumactlRunner) -> None:
    address = f"http://127.0.0.1:{_free_port()}"
    result = kumactl("config", "control-planes", "add", "--name", "x", "--address", address)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f'Error: could not connect to the Control Plane API Server: Get "{address}": '
    )
    assert "Connection refused" in result.stderr or "connect" in result.stderr.lower()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, {"tagline": "Istio"}, "provided address is not valid Kuma Control Plane API Server"),
        (500, {"tagline": "Kuma"}, "Control Plane API Server is not responding"),
        (404, {}, "Control Plane API Server is not responding"),
    ],
)
def test_add_needs_a_kuma_control_plane(
    kumactl: KumactlRunner,
    static_server: StaticServer,
    status: int,
    body: dict[str, str],
    error: str,
) -> None:
    static_server.status = status
    static_server.body = json.dumps(body).encode()
    address = static_server.url
    result = kumactl("config", "control-planes", "add", "--name", "x", "--address", address)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {error}\n"
    assert "name: x" not in kumactl.config_file.read_text()


def test_broken_and_unreadable_config_files(kumactl: KumactlRunner) -> None:
    write_config(kumactl, "contexts: [\n")
    result = kumactl("config", "view")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f'Error: Failed to parse configuration from file "{kumactl.config_file}": '
    )

    write_config(kumactl, "controlPlanes:\n- name: ''\n")
    result = kumactl("config", "view")
    assert result.exit_code == 1
    assert result.stderr == (
        f'Error: Failed to load invalid configuration from file "{kumactl.config_file}": '
        "invalid Configuration.ControlPlanes[0]: embedded message failed validation | caused by: "
        "invalid ControlPlane.Name: value length must be at least 1 runes\n"
    )

    write_config(kumactl, "currentContext: gone\n")
    result = kumactl("get", "meshes")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: apparently, configuration is broken. Use `kumactl config control-planes add` to "
        "add a Control Plane and make it active\n"
    )


def test_unknown_log_level(kumactl: KumactlRunner) -> None:
    result = kumactl("--log-level", "trace", "config", "view")
    assert result.exit_code == 1
    assert result.stderr.startswith('Error: unknown log level "trace"\n')
