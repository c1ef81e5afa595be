"""The key dataplane tokens are signed with: Secret `dataplane-token-signing-key` in mesh `default`.

    key = await ensure_signing_key(manager)     # kuma-cp start: create it unless it exists
    key = await get_signing_key(manager)        # SigningKeyNotFoundError when there is none

The Secret's `data` is an RSA-2048 private key in PKCS#1 DER (Kuma 0.7.3's format); tokens are
HMAC-SHA256 keyed with those DER bytes (the RSA key itself is never used as RSA). The Secret is
written straight to the store without an owner, like Kuma does: it does not need the `default`
mesh to exist and outlives its deletion.

Several control planes sharing one PostgreSQL may start at once: each one that finds no key
generates one and tries to create it; the first create wins and the others read the winner's
key back, so every instance signs and verifies with the same key.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio.to_thread
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kuma.errors import ResourceAlreadyExistsError, ResourceNotFoundError
from kuma.manager import ResourceManager
from kuma.model import registry
from kuma.model.resource import Resource, ResourceMeta
from kuma.pb.kuma.system import v1alpha1 as system_pb
from kuma.store.base import ResourceStore

__all__ = [
    "DEFAULT_RSA_BITS",
    "SIGNING_KEY_MESH",
    "SIGNING_KEY_NAME",
    "SIGNING_KEY_NOT_FOUND_MESSAGE",
    "SigningKeyAccessor",
    "SigningKeyNotFoundError",
    "ensure_signing_key",
    "get_signing_key",
    "new_signing_key",
    "signing_key_accessor",
]

log = structlog.get_logger("tokens")

SIGNING_KEY_NAME = "dataplane-token-signing-key"
SIGNING_KEY_MESH = "default"
DEFAULT_RSA_BITS = 2048
SIGNING_KEY_NOT_FOUND_MESSAGE = (
    "there is no Signing Key in the Control Plane. If you run multi-zone setup, make sure "
    "Remote is connected to the Global before generating tokens."
)

SigningKeyAccessor = Callable[[], Awaitable[bytes]]
"""`() -> key bytes`; raises SigningKeyNotFoundError when there is no key."""


class SigningKeyNotFoundError(Exception):
    """No (usable) signing key is stored: tokens can be neither issued nor verified."""

    def __init__(self, message: str = SIGNING_KEY_NOT_FOUND_MESSAGE) -> None:
        super().__init__(message)


def new_signing_key(bits: int = DEFAULT_RSA_BITS) -> bytes:
    """A fresh RSA private key in PKCS#1 DER (what Kuma stores as the signing key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1 for RSA keys
        serialization.NoEncryption(),
    )


def _store(source: ResourceManager | ResourceStore) -> ResourceStore:
    return source.store if isinstance(source, ResourceManager) else source


async def _read(store: ResourceStore) -> bytes | None:
    """The stored key bytes (possibly empty), or None when there is no Secret."""
    try:
        secret = await store.get(registry.SECRET, SIGNING_KEY_NAME, SIGNING_KEY_MESH)
    except ResourceNotFoundError:
        return None
    data: bytes | None = secret.spec.data
    return data or b""


def _empty_key_error() -> SigningKeyNotFoundError:
    return SigningKeyNotFoundError(
        f"the Secret {SIGNING_KEY_NAME} in mesh {SIGNING_KEY_MESH} holds no signing key; "
        "delete it and restart the Control Plane to have a new one created"
    )


async def get_signing_key(source: ResourceManager | ResourceStore) -> bytes:
    """The signing key; SigningKeyNotFoundError when it is missing or empty (store errors
    propagate)."""
    key = await _read(_store(source))
    if key is None:
        raise SigningKeyNotFoundError()
    if not key:
        raise _empty_key_error()
    return key


def signing_key_accessor(source: ResourceManager | ResourceStore) -> SigningKeyAccessor:
    """A `SigningKeyAccessor` reading the key from `source` on every call (so a key replaced
    by an operator is picked up at once, by every control plane instance)."""
    store = _store(source)

    async def accessor() -> bytes:
        return await get_signing_key(store)

    return accessor


async def ensure_signing_key(
    source: ResourceManager | ResourceStore, *, bits: int = DEFAULT_RSA_BITS
) -> bytes:
    """Create the signing key unless it exists; return the key in effect. Idempotent, and
    safe when several control planes run it at once against one store (the first create wins,
    the others read its key back).

    Raises SigningKeyNotFoundError when a Secret of that name exists but holds no data (it is
    left alone: an operator created it), and store errors as they come.
    """
    store = _store(source)
    existing = await _read(store)
    if existing is not None:
        if not existing:
            raise _empty_key_error()
        log.debug("the dataplane token signing key already exists")
        return existing
    log.info("creating the dataplane token signing key")
    key = await anyio.to_thread.run_sync(new_signing_key, bits)
    secret = Resource(
        registry.SECRET,
        ResourceMeta(name=SIGNING_KEY_NAME, mesh=SIGNING_KEY_MESH),
        system_pb.Secret(data=key),
    )
    try:
        await store.create(secret)
    except ResourceAlreadyExistsError:
        log.info("another control plane created the dataplane token signing key first")
        return await get_signing_key(store)
    log.info("dataplane token signing key created")
    return key
