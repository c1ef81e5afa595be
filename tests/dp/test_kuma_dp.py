"""`kuma-dp run` as a real process against a real (in-process) control plane and real Envoy."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import time
from pathlib import Path

import anyio
import pytest
import yaml

from kuma.dp.run import TOKEN_REQUIRED_MESSAGE
from tests.dp.support import (
    dataplane_yaml,
    envoy_server_info,
    free_port,
    kuma_dp,
    new_manager,
    pid_alive,
    serve_cp,
    wait_for,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

FAST_RETRIES = {
    "KUMA_CONTROL_PLANE_API_SERVER_RETRY_BACKOFF": "100ms",
    "KUMA_CONTROL_PLANE_API_SERVER_RETRY_MAX_DURATION": "1s",
    "KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_RETRY_BACKOFF": "100ms",
    "KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_RETRY_MAX_DURATION": "1s",
}


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_run_starts_envoy_and_stops_it(tmp_path: Path, stop_signal: signal.Signals) -> None:
    manager = await new_manager(
        dataplane_yaml("web-01", inbound_port=free_port(), service_port=free_port())
    )
    config_dir = tmp_path / "envoy-config"
    with socket.socket() as taken:
        # the first port of the admin range is busy: kuma-dp must take the next free one
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        first = taken.getsockname()[1]
        async with (
            serve_cp(manager) as cp,
            kuma_dp(
                [
                    "--name=web-01",
                    f"--cp-address={cp.api_url}",
                    f"--admin-port={first}-{first + 200}",
                    f"--config-dir={config_dir}",
                ],
                tmp_path,
                KUMA_DATAPLANE_MESH="default",
            ) as dp,
        ):
            bootstrap_file = config_dir / "bootstrap.yaml"
            await wait_for(bootstrap_file.exists, within=30, what="bootstrap.yaml written")
            assert stat.S_IMODE(bootstrap_file.stat().st_mode) == 0o600
            bootstrap = yaml.safe_load(bootstrap_file.read_text())
            admin_port = bootstrap["admin"]["address"]["socketAddress"]["portValue"]
            assert first < admin_port <= first + 200
            assert bootstrap["node"]["id"] == "default.web-01"

            info = await wait_for(
                lambda: envoy_server_info(admin_port), within=30, what="Envoy's admin API answers"
            )
            assert info["node"]["id"] == "default.web-01"
            assert info["node"]["cluster"] == "web"
            envoy_pid = dp.envoy_pid()
            assert envoy_pid is not None
            assert pid_alive(envoy_pid)
            assert cp.requests == ["GET /catalog", "POST /bootstrap"]

            dp.signal(stop_signal)
            with anyio.fail_after(20):
                code = await dp.process.wait()
            assert code == 0, dp.log  # Envoy's own status after a clean shutdown
            assert not pid_alive(envoy_pid)
            assert "forwarding signal to Envoy" in dp.log
            assert re.search(rf"Envoy exited\s+code=0 pid={envoy_pid}", dp.log), dp.log
    assert bootstrap_file.exists()  # a --config-dir given by the user stays


async def test_exit_status_is_envoys_and_temp_dir_is_removed(tmp_path: Path) -> None:
    manager = await new_manager(
        dataplane_yaml("web-02", inbound_port=free_port(), service_port=free_port())
    )
    async with (
        serve_cp(manager) as cp,
        kuma_dp(
            ["--name", "web-02", "--cp-address", cp.api_url],
            tmp_path,
            KUMA_DATAPLANE_ADMIN_PORT="",  # set but empty: no admin API
        ) as dp,
    ):
        envoy_pid = await wait_for(dp.envoy_pid, within=30, what="Envoy started")
        match = re.search(r"temporary directory\s+dir=(\S+)", dp.log)
        assert match is not None, dp.log
        config_dir = Path(match.group(1))
        bootstrap = yaml.safe_load((config_dir / "bootstrap.yaml").read_text())
        assert "admin" not in bootstrap
        assert "metadata" not in bootstrap["node"]

        os.kill(envoy_pid, signal.SIGKILL)  # Envoy dies on its own: kuma-dp reports its status
        with anyio.fail_after(20):
            code = await dp.process.wait()
        assert code == 128 + signal.SIGKILL
        assert not await anyio.Path(config_dir).exists()
        assert "Envoy terminated with an error" in dp.log


async def test_envoy_does_not_outlive_a_killed_kuma_dp(tmp_path: Path) -> None:
    manager = await new_manager(
        dataplane_yaml("web-03", inbound_port=free_port(), service_port=free_port())
    )
    async with (
        serve_cp(manager) as cp,
        kuma_dp(["--name", "web-03", "--cp-address", cp.api_url], tmp_path) as dp,
    ):
        envoy_pid = await wait_for(dp.envoy_pid, within=30, what="Envoy started")
        dp.signal(signal.SIGKILL)  # no chance to forward anything
        with anyio.fail_after(10):
            await dp.process.wait()
        await wait_for(lambda: not pid_alive(envoy_pid), within=10, what="Envoy to stop too")


async def test_stop_signal_while_waiting_for_the_cp(tmp_path: Path) -> None:
    async with kuma_dp(
        ["--name", "web-01", "--cp-address", f"http://127.0.0.1:{free_port()}"],
        tmp_path,
        KUMA_CONTROL_PLANE_API_SERVER_RETRY_BACKOFF="100ms",
        KUMA_CONTROL_PLANE_API_SERVER_RETRY_MAX_DURATION="5m",
    ) as dp:
        await wait_for(lambda: "Retrying" in dp.log, within=30, what="a catalog retry")
        dp.signal(signal.SIGTERM)
        with anyio.fail_after(10):
            code = await dp.process.wait()
        assert code == 0
        assert "stopped before Envoy was started" in dp.log
        assert dp.envoy_pid() is None


async def test_missing_control_plane(tmp_path: Path) -> None:
    port = free_port()
    started = time.monotonic()
    async with kuma_dp(
        ["--name", "web-01", "--cp-address", f"http://127.0.0.1:{port}"], tmp_path, **FAST_RETRIES
    ) as dp:
        with anyio.fail_after(30):
            code = await dp.process.wait()
    assert code == 1
    assert time.monotonic() - started < 25
    assert (
        f"Error: could not retrieve catalog from the Control Plane API at http://127.0.0.1:{port} "
        "within 1s (KUMA_CONTROL_PLANE_API_SERVER_RETRY_MAX_DURATION)"
    ) in dp.log
    assert dp.log.count("could not connect to the Control Plane API. Retrying.") >= 3
    assert dp.envoy_pid() is None


async def test_unknown_dataplane_fails_fast(tmp_path: Path) -> None:
    manager = await new_manager()
    async with (
        serve_cp(manager) as cp,
        kuma_dp(
            ["--name", "ghost", "--cp-address", cp.api_url],
            tmp_path,
            KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_RETRY_MAX_DURATION="5m",
        ) as dp,
    ):
        with anyio.fail_after(30):
            code = await dp.process.wait()
        assert code == 1
        assert 'Error: Dataplane "ghost" was not found in mesh "default"' in dp.log
        assert cp.requests == ["GET /catalog", "POST /bootstrap"]  # no retries
        assert dp.envoy_pid() is None


async def test_admin_port_clash_fails_fast(tmp_path: Path) -> None:
    admin = free_port()
    manager = await new_manager(
        dataplane_yaml("web-01", inbound_port=admin, service_port=free_port())
    )
    async with (
        serve_cp(manager) as cp,
        kuma_dp(
            ["--name", "web-01", "--cp-address", cp.api_url, "--admin-port", str(admin)], tmp_path
        ) as dp,
    ):
        with anyio.fail_after(30):
            code = await dp.process.wait()
        assert code == 1
        assert (
            f"Error: Resource precondition failed: Port {admin} requested as both admin and "
            "inbound port."
        ) in dp.log
        assert cp.requests == ["GET /catalog", "POST /bootstrap"]
        assert dp.envoy_pid() is None


async def test_missing_envoy_binary(tmp_path: Path) -> None:
    manager = await new_manager()
    async with (
        serve_cp(manager) as cp,
        kuma_dp(
            ["--name", "web-01", "--cp-address", cp.api_url, "--binary-path", "/nonexistent"],
            tmp_path,
        ) as dp,
    ):
        with anyio.fail_after(30):
            code = await dp.process.wait()
        assert code == 1
        assert 'Error: could not find the Envoy binary at "/nonexistent" (no such file)' in dp.log
        assert cp.requests == []  # checked before talking to the control plane


async def test_token_required(tmp_path: Path) -> None:
    manager = await new_manager(
        dataplane_yaml("web-01", inbound_port=free_port(), service_port=free_port())
    )
    empty = tmp_path / "empty-token"
    empty.write_text("")
    async with serve_cp(manager, token_required=True) as cp:
        async with kuma_dp(["--name", "web-01", "--cp-address", cp.api_url], tmp_path) as dp:
            with anyio.fail_after(30):
                code = await dp.process.wait()
            assert code == 1
            assert f"Error: {TOKEN_REQUIRED_MESSAGE}" in dp.log
            assert dp.envoy_pid() is None
        async with kuma_dp(
            ["--name", "web-01", "--cp-address", cp.api_url],
            tmp_path,
            KUMA_DATAPLANE_RUNTIME_TOKEN_PATH=str(empty),
        ) as dp:
            with anyio.fail_after(30):
                code = await dp.process.wait()
            assert code == 1
            assert f"Error: token under file {empty} is empty" in dp.log
        assert "POST /bootstrap" not in cp.requests
