"""Fixtures: a ResourceManager over a real MemoryStore with mesh `default`, and an API client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from kuma.manager import ResourceManager
from kuma.store.memory import MemoryStore
from tests.api.support import api_client


@pytest.fixture
async def manager() -> ResourceManager:
    manager = ResourceManager(MemoryStore())
    await manager.ensure_default_mesh()
    return manager


@pytest.fixture
async def client(manager: ResourceManager) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(manager) as c:
        yield c
