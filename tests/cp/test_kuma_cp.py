"""`kuma-cp` as a real process on loopback ports: version, run, signals, ports, migrate."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio.to_thread
import httpx
import pytest

from kuma.version import __version__
from tests.support.procs import (
    START_TIMEOUT,
    Ports,
    base_env,
    control_plane,
    free_port,
    port_is_free,
    postgres_env,
)

pytestmark = pytest.mark.e2e

STOP_TIMEOUT = 15.0


def kuma_cp(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuma.cp", *args],
        env=env or base_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- version ----------------------------------------------------------------------------------


def test_version() -> None:
    result = kuma_cp("version")
    assert result.returncode == 0
    # cobra's cmd.Println writes to stderr, as kuma-cp 0.7.3 does
    assert result.stderr == f"Kuma: {__version__}\n"


@pytest.mark.parametrize("flag", ["-a", "--detailed"])
def test_version_detailed(flag: str) -> None:
    result = kuma_cp("version", flag)
    assert result.returncode == 0
    assert result.stderr.splitlines() == [
        "Product:    Kuma",
        f"Version:    {__version__}",
        "Git Tag:    none",
        "Git Commit: none",
        "Build Date: none",
    ]


def test_unknown_log_level() -> None:
    result = kuma_cp("--log-level", "verbose", "version")
    assert result.returncode == 1
    assert 'Error: unknown log level "verbose"' in result.stderr


def test_unknown_command_exits_1() -> None:
    result = kuma_cp("serve")
    assert result.returncode == 1
    assert "No such command 'serve'" in result.stderr


@pytest.mark.parametrize(
    ("args", "logs"),
    [
        (("--log-level", "off", "run"), False),
        (("run", "--log-level", "off"), False),  # cobra's persistent flag: after the command too
        (("run",), True),
        (("--log-level", "off", "run", "--log-level", "info"), True),  # the deepest one wins
    ],
)
def test_log_level(args: tuple[str, ...], logs: bool) -> None:
    ports = Ports()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", ports.api))
        blocker.listen(1)
        result = kuma_cp(*args, env=base_env(**ports.env()))
    assert result.returncode == 1
    assert "address already in use" in result.stderr.splitlines()[-1]
    assert ("starting control plane" in result.stderr) is logs


# -- run --------------------------------------------------------------------------------------


def test_run_serves_then_stops_on_sigterm() -> None:
    with control_plane("run") as cp:
        cp.wait_ready()
        index = httpx.get(f"{cp.api}/", timeout=5)
        assert index.status_code == 200
        assert index.json()["version"] == __version__

        config = httpx.get(f"{cp.api}/config", timeout=5).json()
        assert config["apiServer"]["port"] == cp.ports.api
        assert config["xdsServer"]["diagnosticsPort"] == cp.ports.diagnostics
        assert config["store"]["postgres"]["password"] == "*****"
        # derived at start, as Kuma's autoconfiguration does
        assert config["bootstrapServer"]["params"]["xdsHost"] == "localhost"
        assert (
            config["apiServer"]["catalog"]["bootstrap"]["url"]
            == f"http://localhost:{cp.ports.bootstrap}"
        )

        catalog = httpx.get(f"{cp.api}/catalog", timeout=5).json()
        assert catalog["apis"]["admin"]["localUrl"] == f"http://localhost:{cp.ports.admin}"

        mesh = httpx.get(f"{cp.api}/meshes/default", timeout=5)
        assert mesh.status_code == 200
        assert mesh.json()["name"] == "default"

        assert httpx.get(f"{cp.diagnostics}/healthy", timeout=5).status_code == 200
        # the admin server listens on loopback only
        admin = httpx.get(f"http://127.0.0.1:{cp.ports.admin}/secrets", timeout=5)
        assert admin.status_code < 500

        started = time.monotonic()
        assert cp.stop(signal.SIGTERM) == 0
        assert time.monotonic() - started < 10
        out = cp.output()
    assert "control plane ready" in out
    for port in cp.ports.all():
        assert f":{port}" in out  # every listener is logged with its address
        assert port_is_free(port)


def test_sigint_stops_cleanly() -> None:
    with control_plane("run") as cp:
        cp.wait_ready()
        assert cp.stop(signal.SIGINT) == 0
    for port in cp.ports.all():
        assert port_is_free(port)


def test_skip_default_mesh_creation() -> None:
    with control_plane("run", KUMA_DEFAULTS_SKIP_MESH_CREATION="true") as cp:
        cp.wait_ready()
        assert httpx.get(f"{cp.api}/meshes/default", timeout=5).status_code == 404
        assert httpx.get(f"{cp.api}/meshes", timeout=5).json()["items"] == []
        assert cp.stop() == 0


def test_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "kuma-cp.conf.yml"
    conf.write_text(
        "apiServer:\n  port: 1\n  readOnly: true\ngeneral:\n  advertisedHostname: cp.example\n"
    )
    with control_plane("run", "-c", str(conf)) as cp:  # KUMA_API_SERVER_PORT beats port: 1
        cp.wait_ready()
        config = httpx.get(f"{cp.api}/config", timeout=5).json()
        assert config["apiServer"]["readOnly"] is True
        assert config["general"]["advertisedHostname"] == "cp.example"
        catalog = httpx.get(f"{cp.api}/catalog", timeout=5).json()
        assert catalog["apis"]["bootstrap"]["url"] == f"http://cp.example:{cp.ports.bootstrap}"
        assert cp.stop() == 0


def test_port_in_use_fails_cleanly() -> None:
    ports = Ports()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", ports.diagnostics))
        blocker.listen(1)
        with control_plane("run", ports=ports) as cp:
            rc = cp.proc.wait(timeout=START_TIMEOUT)
            out = cp.output()
    assert rc == 1
    assert f"cannot listen on [::]:{ports.diagnostics}" in out
    assert "xdsServer.diagnosticsPort" in out
    assert "address already in use" in out
    assert port_is_free(ports.api)
    assert port_is_free(ports.admin)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"KUMA_STORE_TYPE": "etcd"}, "store.type"),
        ({"KUMA_API_SERVER_PORT": "http"}, "apiServer.port"),
        (
            {"KUMA_STORE_TYPE": "kubernetes", "KUBECONFIG": "/nonexistent/kubeconfig"},
            "could not load the kubeconfig",
        ),
        ({"KUMA_MODE": "global"}, "global mode is not supported yet"),
    ],
)
def test_bad_configuration_exits_1(env: dict[str, str], expected: str) -> None:
    result = kuma_cp("run", env=base_env(**{**Ports().env(), **env}))
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Error: " in result.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    result = kuma_cp("run", "-c", str(tmp_path / "none.yaml"))
    assert result.returncode == 1
    assert "Failed to access configuration file" in result.stderr


# -- migrate ----------------------------------------------------------------------------------


def test_migrate_on_memory_store() -> None:
    result = kuma_cp("migrate", "up")
    assert result.returncode == 1
    assert "migrations are not supported for Memory resource store" in result.stderr


def _migrate_then_run(dsn: str) -> None:
    pg = postgres_env(dsn)

    unmigrated = kuma_cp("run", env=base_env(**Ports().env(), **pg))
    assert unmigrated.returncode == 1
    assert (
        'database is not migrated. Run "kuma-cp migrate up" to update database to the newest '
        "schema" in unmigrated.stderr
    )

    first = kuma_cp("migrate", "up", env=base_env(**pg))
    assert first.returncode == 0, first.stderr
    assert f"DB has been migrated for Kuma {__version__}\n" in first.stderr
    again = kuma_cp("migrate", "up", env=base_env(**pg))
    assert again.returncode == 0, again.stderr
    assert f"DB has already been migrated for Kuma {__version__}\n" in again.stderr

    with control_plane("run", **pg) as cp:
        cp.wait_ready()
        assert httpx.get(f"{cp.api}/meshes/default", timeout=5).status_code == 200
        assert httpx.get(f"{cp.api}/config", timeout=5).json()["store"]["type"] == "postgres"
        assert cp.stop() == 0
    for port in cp.ports.all():
        assert port_is_free(port)

    # the mesh survives a restart: it lives in the database
    with control_plane("run", KUMA_DEFAULTS_SKIP_MESH_CREATION="true", **pg) as cp:
        cp.wait_ready()
        assert httpx.get(f"{cp.api}/meshes/default", timeout=5).status_code == 200
        assert cp.stop() == 0


@pytest.mark.postgres
@pytest.mark.anyio
async def test_migrate_and_run_on_postgres(postgres_db: str) -> None:
    await anyio.to_thread.run_sync(_migrate_then_run, postgres_db)


def test_migrate_unreachable_database() -> None:
    env = base_env(
        KUMA_STORE_TYPE="postgres",
        KUMA_STORE_POSTGRES_PORT=str(free_port()),
        KUMA_STORE_POSTGRES_CONNECTION_TIMEOUT="2",
    )
    result = kuma_cp("migrate", "up", env=env)
    assert result.returncode == 1
    assert "Error: PostgreSQL" in result.stderr
    assert "cannot connect" in result.stderr
