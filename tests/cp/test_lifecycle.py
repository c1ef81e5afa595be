"""The control plane's lifecycle in-process: diagnostics answers, start, stop, bounded shutdown."""

from __future__ import annotations

import socket

import anyio
import httpx
import pytest

from kuma.config import load_config
from kuma.cp.listeners import ListenError, bind_listener
from kuma.cp.run import SHUTDOWN_TIMEOUT, run_control_plane
from kuma.diagnostics import Readiness, build_diagnostics_app
from tests.support.procs import Ports

pytestmark = pytest.mark.anyio


async def test_diagnostics_ready_follows_readiness() -> None:
    readiness = Readiness()
    transport = httpx.ASGITransport(app=build_diagnostics_app(readiness))
    async with httpx.AsyncClient(transport=transport, base_url="http://cp") as client:
        before = await client.get("/ready")
        assert (before.status_code, before.content) == (503, b"")
        assert (await client.get("/healthy")).status_code == 200
        readiness.set()
        after = await client.get("/ready")
        assert (after.status_code, after.content) == (200, b"")
        assert (await client.post("/ready")).status_code == 200  # Kuma: any method
        assert (await client.get("/other")).status_code == 404
        readiness.set(False)
        assert (await client.get("/ready")).status_code == 503


async def test_run_until_stop_event() -> None:
    ports = Ports()
    cfg = load_config(env=ports.env())
    readiness = Readiness()
    stop = anyio.Event()
    done = anyio.Event()

    async def serve() -> None:
        await run_control_plane(cfg, readiness=readiness, stop=stop, handle_signals=False)
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve)
        async with httpx.AsyncClient(timeout=5) as client:
            with anyio.fail_after(20):
                while True:
                    try:
                        ready = await client.get(f"http://127.0.0.1:{ports.diagnostics}/ready")
                        if ready.status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.05)
            assert readiness.ready
            meshes = await client.get(f"http://127.0.0.1:{ports.api}/meshes")
            assert [m["name"] for m in meshes.json()["items"]] == ["default"]
        stop.set()
        with anyio.fail_after(SHUTDOWN_TIMEOUT + 2):
            await done.wait()
    assert not readiness.ready
    for port in ports.all():
        bind_listener("", port).close()  # free again


async def test_bind_listener_reports_the_address_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as exc:
            bind_listener("127.0.0.1", port, what="admin server (adminServer.local.port)")
    assert str(exc.value) == (
        f"cannot listen on 127.0.0.1:{port} for the admin server (adminServer.local.port): "
        "address already in use"
    )
