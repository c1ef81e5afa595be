"""Helpers for the token tests: managers over real stores, a fast signing key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache

import pytest

from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.resource import Resource, ResourceMeta
from kuma.pb.kuma.system import v1alpha1 as system_pb
from kuma.store.base import ResourceStore
from kuma.store.memory import MemoryStore
from kuma.tokens import SIGNING_KEY_MESH, SIGNING_KEY_NAME, new_signing_key


@cache
def shared_key() -> bytes:
    """One RSA-2048 PKCS#1 key for the whole session (generating one takes ~100 ms)."""
    return new_signing_key()


async def store_key(manager: ResourceManager, key: bytes | None = None) -> bytes:
    """Write the signing key Secret directly (as kuma-cp's start-up does)."""
    data = shared_key() if key is None else key
    secret = Resource(
        registry.SECRET,
        ResourceMeta(name=SIGNING_KEY_NAME, mesh=SIGNING_KEY_MESH),
        system_pb.Secret(data=data),
    )
    await manager.store.create(secret)
    return data


@asynccontextmanager
async def open_store(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[ResourceStore]:
    """A fresh store: "memory", or "postgres" on a throwaway migrated database."""
    if kind == "memory":
        yield MemoryStore()
        return
    from kuma.store.postgres import PostgresStore, migrate_up

    dsn = request.getfixturevalue("postgres_db")
    await migrate_up(dsn)
    store = await PostgresStore.connect(dsn)
    try:
        yield store
    finally:
        await store.close()


async def manager_with_key(*, key: bytes | None = None, mesh: bool = True) -> ResourceManager:
    manager = ResourceManager(MemoryStore())
    if mesh:
        await manager.ensure_default_mesh()
    await store_key(manager, key)
    return manager
