"""The signing key Secret: its format, creation at start (idempotent, race-safe), reading."""

from __future__ import annotations

import anyio
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from structlog.testing import capture_logs

from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.store.base import ResourceStore
from kuma.store.memory import MemoryStore
from kuma.tokens import (
    SIGNING_KEY_MESH,
    SIGNING_KEY_NAME,
    SigningKeyNotFoundError,
    ensure_signing_key,
    get_signing_key,
    new_signing_key,
    signing_key_accessor,
)
from kuma.tokens.signing_key import SIGNING_KEY_NOT_FOUND_MESSAGE
from tests.tokens.support import open_store, store_key

pytestmark = pytest.mark.anyio

STORES = ["memory", "postgres"]


def test_new_key_is_pkcs1_der_rsa_2048() -> None:
    der = new_signing_key()
    key = serialization.load_der_private_key(der, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    # PKCS#1 (RSAPrivateKey), not PKCS#8: the DER re-encodes as TraditionalOpenSSL unchanged
    assert der == key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert der != key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert new_signing_key() != der


@pytest.mark.parametrize("kind", STORES)
async def test_ensure_creates_once(kind: str, request: pytest.FixtureRequest) -> None:
    async with open_store(kind, request) as store:
        manager = ResourceManager(store)
        with pytest.raises(SigningKeyNotFoundError) as info:
            await get_signing_key(manager)
        assert str(info.value) == SIGNING_KEY_NOT_FOUND_MESSAGE
        # no default mesh needed: the Secret is written without an owner, like Kuma does
        key = await ensure_signing_key(manager)
        assert await get_signing_key(manager) == key
        assert await get_signing_key(store) == key
        assert await ensure_signing_key(store) == key  # idempotent
        secret = await store.get(registry.SECRET, SIGNING_KEY_NAME, SIGNING_KEY_MESH)
        assert secret.spec.data == key
        assert secret.meta.version == "1"  # never rewritten
        assert isinstance(serialization.load_der_private_key(key, password=None), rsa.RSAPrivateKey)


@pytest.mark.parametrize("kind", STORES)
async def test_concurrent_control_planes_agree_on_one_key(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Several instances starting together (on PostgreSQL: separate connection pools, as
    separate kuma-cp processes have) end up with the one key that was stored first."""
    async with open_store(kind, request) as first:
        stores: list[ResourceStore] = [first]
        if kind == "postgres":
            from kuma.store.postgres import PostgresStore

            stores.append(await PostgresStore.connect(request.getfixturevalue("postgres_db")))
        try:
            keys: list[bytes] = []

            async def start(store: ResourceStore) -> None:
                keys.append(await ensure_signing_key(store))

            with capture_logs() as logs:
                async with anyio.create_task_group() as tg:
                    for i in range(8):
                        tg.start_soon(start, stores[i % len(stores)])
            assert len(keys) == 8
            assert len(set(keys)) == 1
            assert await get_signing_key(first) == keys[0]
            listed = await first.list(registry.SECRET)
            assert [(s.meta.mesh, s.meta.name) for s in listed.items] == [
                (SIGNING_KEY_MESH, SIGNING_KEY_NAME)
            ]
            events = [e["event"] for e in logs]
            assert events.count("dataplane token signing key created") == 1
            # the losers of the race read the winner's key back
            assert "another control plane created the dataplane token signing key first" in events
        finally:
            for extra in stores[1:]:
                await extra.close()


async def test_the_key_outlives_the_default_mesh() -> None:
    manager = ResourceManager(MemoryStore())
    await manager.ensure_default_mesh()
    key = await ensure_signing_key(manager)
    await manager.delete(registry.MESH, "default")
    assert await get_signing_key(manager) == key


async def test_an_empty_secret_is_reported_and_left_alone() -> None:
    manager = ResourceManager(MemoryStore())
    await store_key(manager, b"")
    message = (
        "the Secret dataplane-token-signing-key in mesh default holds no signing key; delete it "
        "and restart the Control Plane to have a new one created"
    )
    with pytest.raises(SigningKeyNotFoundError) as info:
        await ensure_signing_key(manager)
    assert str(info.value) == message
    with pytest.raises(SigningKeyNotFoundError):
        await get_signing_key(manager)
    secret = await manager.get(registry.SECRET, SIGNING_KEY_NAME, SIGNING_KEY_MESH)
    assert not secret.spec.data


async def test_the_accessor_reads_the_current_key() -> None:
    manager = ResourceManager(MemoryStore())
    accessor = signing_key_accessor(manager)
    with pytest.raises(SigningKeyNotFoundError):
        await accessor()
    first = await store_key(manager, b"first key")
    assert await accessor() == first
    secret = await manager.get(registry.SECRET, SIGNING_KEY_NAME, SIGNING_KEY_MESH)
    secret.spec.data = b"rotated key"
    await manager.store.update(secret)
    assert await accessor() == b"rotated key"
