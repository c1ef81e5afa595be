"""The REST API served by real hypercorn on a loopback socket, talked to with httpx."""

from __future__ import annotations

import socket

import anyio
import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from kuma.api import build_api_app
from kuma.manager import ResourceManager
from kuma.model import registry
from tests.api.samples import sample_body
from tests.api.support import base_settings

pytestmark = pytest.mark.anyio


async def test_served_by_hypercorn(manager: ResourceManager) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # hypercorn owns (and closes) the socket
    config.accesslog = None
    config.graceful_timeout = 1.0
    stop = anyio.Event()
    app = build_api_app(manager, base_settings())

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
            try:
                base = f"http://127.0.0.1:{port}"
                async with httpx.AsyncClient(base_url=base, timeout=5) as client:
                    index = await client.get("/")
                    assert index.status_code == 200
                    assert index.json()["tagline"] == "Kuma"
                    assert index.text.endswith("}\n")

                    body = sample_body(registry.DATAPLANE, "dp-1")
                    put = await client.put("/meshes/default/dataplanes/dp-1", json=body)
                    assert (put.status_code, put.content) == (201, b"")
                    got = await client.get("/meshes/default/dataplanes/dp-1")
                    assert got.status_code == 200
                    assert got.json()["networking"] == body["networking"]

                    listed = await client.get("/meshes/default/dataplanes", params={"size": "1"})
                    assert listed.json()["total"] == 1

                    bad = await client.put(
                        "/meshes/default/dataplanes/dp-1",
                        content=b"{not json",
                        headers={"content-type": "application/json"},
                    )
                    assert bad.status_code == 400
                    assert bad.json()["details"] == "Invalid JSON"

                    huge = await client.put(
                        "/meshes/default/dataplanes/dp-1", content=b"x" * 2_000_000
                    )
                    assert huge.status_code == 413

                    assert (await client.get("/nope")).status_code == 404
            finally:
                stop.set()
    with pytest.raises(OSError):  # the listener is closed after shutdown
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
