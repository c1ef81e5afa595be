"""Helpers for the REST API tests: in-process clients, golden files, store snapshots."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx

from kuma.api import AdminSettings, ApiSettings, build_admin_app, build_api_app
from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.resource import ResourceKey

__all__ = [
    "GOLDEN",
    "PUBLIC_URL",
    "admin_client",
    "api_client",
    "assert_golden",
    "base_settings",
    "normalise_times",
    "snapshot",
]

GOLDEN = Path(__file__).resolve().parent / "golden"
PUBLIC_URL = "http://kuma-cp.example:5681"
_TIMES = re.compile(r'"(creationTime|modificationTime)": "[^"]*"')


def base_settings(**overrides: Any) -> ApiSettings:
    settings = ApiSettings(
        version="1.2.3",
        hostname="cp-test",
        public_url=PUBLIC_URL,
        catalog={
            "apis": {
                "bootstrap": {"url": "http://kuma-cp.example:5682"},
                "dataplaneToken": {"localUrl": "http://localhost:5679", "publicUrl": ""},
                "admin": {"localUrl": "http://localhost:5679", "publicUrl": ""},
                "monitoringAssignment": {"url": "grpc://kuma-cp.example:5676"},
            }
        },
        config_json=lambda: {"store": {"type": "memory"}, "apiServer": {"port": 5681}},
    )
    return replace(settings, **overrides)


@asynccontextmanager
async def api_client(
    manager: ResourceManager, settings: ApiSettings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_api_app(manager, settings or base_settings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kuma-cp.test:5681") as c:
        yield c


@asynccontextmanager
async def admin_client(
    manager: ResourceManager, settings: AdminSettings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_admin_app(manager, settings or AdminSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:5679") as c:
        yield c


def normalise_times(text: str) -> str:
    """Resource meta times depend on the clock; golden files hold a placeholder."""
    return _TIMES.sub(r'"\1": "<time>"', text)


def assert_golden(name: str, text: str) -> None:
    """`text` (times normalised) equals golden/<name>; UPDATE_GOLDEN_FILES=true rewrites it."""
    path = GOLDEN / name
    actual = normalise_times(text)
    if os.environ.get("UPDATE_GOLDEN_FILES") == "true":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"golden file {path} is missing (run with UPDATE_GOLDEN_FILES=true)"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"response differs from {path}:\n{actual}"


async def snapshot(manager: ResourceManager) -> dict[ResourceKey, tuple[str, str]]:
    """Every stored resource: key -> (version, spec JSON)."""
    out: dict[ResourceKey, tuple[str, str]] = {}
    for rtype in registry.all_types():
        result = await manager.list(rtype)
        for r in result.items:
            out[r.key] = (r.meta.version, r.spec_json())
    return out
