"""run_dataplane in-process: the stop event, cancellation, and the sidecar-service seam, with a
real control plane (hypercorn on loopback) and the real Envoy."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import anyio.abc
import pytest

from kuma.dp.config import DataplaneConfig, PortRange
from kuma.dp.run import DataplaneContext, run_dataplane
from kuma.manager import ResourceManager
from tests.dp.support import (
    dataplane_yaml,
    envoy_server_info,
    free_port,
    new_manager,
    pid_alive,
    serve_cp,
    wait_for,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


def child_envoys() -> list[int]:
    """Pids of this process's children that run Envoy."""
    pids: list[int] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in map(int, children):
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "envoy":
                    pids.append(pid)
            except OSError:
                continue
    return pids


def _config(cp_url: str, tmp_path: Path, admin_port: int = 0) -> DataplaneConfig:
    return DataplaneConfig(
        name="web-01",
        cp_address=cp_url,
        admin_port=PortRange(admin_port, admin_port),
        config_dir=str(tmp_path / "config"),
    )


async def _manager() -> ResourceManager:
    return await new_manager(
        dataplane_yaml("web-01", inbound_port=free_port(), service_port=free_port())
    )


async def test_stop_event_and_sidecar_services(tmp_path: Path) -> None:
    manager = await _manager()
    seen: dict[str, object] = {}
    stop = anyio.Event()

    async with serve_cp(manager) as cp:

        async def access_logs(
            ctx: DataplaneContext, *, task_status: anyio.abc.TaskStatus[None]
        ) -> None:
            seen["ctx"] = ctx
            seen["requests_at_start"] = list(cp.requests)
            task_status.started()
            try:
                await anyio.sleep_forever()
            finally:
                seen["cancelled"] = True

        admin = free_port()

        async def stop_once_envoy_runs() -> None:
            pids = await wait_for(child_envoys, within=30, what="Envoy running")
            seen["envoy"] = pids[0]
            # Envoy handles SIGTERM once started; before that the signal kills it (status 143)
            await wait_for(lambda: envoy_server_info(admin), within=30, what="Envoy's admin API")
            stop.set()

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(stop_once_envoy_runs)
                status = await run_dataplane(
                    _config(cp.api_url, tmp_path, admin),
                    log_level="off",
                    services=[access_logs],
                    handle_signals=False,
                    stop=stop,
                )
    assert status == 0
    ctx = seen["ctx"]
    assert isinstance(ctx, DataplaneContext)
    assert ctx.access_log_socket == "/tmp/kuma-access-logs-web-01-default.sock"
    assert ctx.catalog.bootstrap_url == cp.bootstrap_url
    # started after the catalog, before the bootstrap is fetched
    assert seen["requests_at_start"] == ["GET /catalog"]
    assert seen["cancelled"] is True
    envoy_pid = seen["envoy"]
    assert isinstance(envoy_pid, int)
    assert not pid_alive(envoy_pid)


async def test_a_failing_service_stops_envoy(tmp_path: Path) -> None:
    manager = await _manager()
    envoy_up = anyio.Event()

    async def flaky(ctx: DataplaneContext, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        await envoy_up.wait()
        raise RuntimeError("access-log socket went away")

    envoys: list[int] = []

    async def watch() -> None:
        envoys.extend(await wait_for(child_envoys, within=30, what="Envoy running"))
        envoy_up.set()

    async with serve_cp(manager) as cp:

        async def run() -> None:
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                await run_dataplane(
                    _config(cp.api_url, tmp_path),
                    log_level="off",
                    services=[flaky],
                    handle_signals=False,
                )

        with pytest.raises(ExceptionGroup) as exc, anyio.fail_after(60):
            await run()
    assert exc.group_contains(RuntimeError, match="access-log socket went away")
    assert envoys
    assert not pid_alive(envoys[0])


async def test_cancelling_kuma_dp_stops_envoy(tmp_path: Path) -> None:
    manager = await _manager()
    async with serve_cp(manager) as cp:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(
                    lambda: run_dataplane(
                        _config(cp.api_url, tmp_path), log_level="off", handle_signals=False
                    )
                )
                envoys = await wait_for(child_envoys, within=30, what="Envoy running")
                tg.cancel_scope.cancel()
    assert not pid_alive(envoys[0])
    assert child_envoys() == []
