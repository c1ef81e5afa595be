"""The kuma-dp command line: version, help, usage and configuration errors (exit status 1)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from kuma.dp.config import SETTINGS
from kuma.dp.main import cli
from kuma.version import __version__
from tests.dp.support import ROOT, kuma_dp_env


def _kuma_dp(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuma.dp", *args],
        capture_output=True,
        text=True,
        env=kuma_dp_env(**env),
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_version() -> None:
    result = CliRunner().invoke(cli, ["version"])
    assert result.exit_code == 0
    assert result.stderr == f"Kuma: {__version__}\n"
    detailed = CliRunner().invoke(cli, ["version", "-a"])
    assert detailed.stderr.splitlines()[:2] == ["Product:    Kuma", f"Version:    {__version__}"]


def test_run_help_lists_every_flag_with_its_environment_variable() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for setting in SETTINGS:
        if setting.flag:
            assert f"{setting.flag} string" in result.output
            assert f"[env: {setting.env}]" in result.output
    assert '(default "30001-65535")' in result.output
    assert '(default "http://localhost:5681")' in result.output
    assert "--log-level" in result.output


def test_missing_name_is_an_error() -> None:
    result = _kuma_dp("run")
    assert result.returncode == 1
    assert result.stderr.endswith(
        "Error: Invalid configuration: .Dataplane.Name must be non-empty "
        "(set --name or KUMA_DATAPLANE_NAME)\n"
    )


def test_name_from_the_environment_and_bad_flag() -> None:
    result = _kuma_dp("run", "--admin-port", "99999", KUMA_DATAPLANE_NAME="web-01")
    assert result.returncode == 1
    assert 'Error: invalid argument "99999" for "--admin-port" flag: invalid value "99999".' in (
        result.stderr
    )


@pytest.mark.parametrize(
    "args", [["--log-level", "loud", "version"], ["version", "--log-level=loud"]]
)
def test_unknown_log_level(args: list[str]) -> None:
    result = _kuma_dp(*args)
    assert result.returncode == 1
    assert 'Error: unknown log level "loud": use one of off, info, debug' in result.stderr


def test_unknown_flag_is_a_usage_error() -> None:
    result = _kuma_dp("run", "--nme", "x")
    assert result.returncode == 1
    assert "Error: No such option '--nme'" in result.stderr


def test_log_level_off_is_silent() -> None:
    result = _kuma_dp("--log-level", "off", "run", "--drain-time", "0s", "--name", "x")
    assert result.returncode == 1
    assert result.stderr == (
        "Error: Invalid configuration: .Dataplane.DrainTime must be a positive duration "
        "(set --drain-time or KUMA_DATAPLANE_DRAIN_TIME)\n"
    )
