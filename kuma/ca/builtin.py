"""The `builtin` CA: kuma-py creates a root CA per mesh and backend and keeps it in two Secrets.

    type: builtin
    conf:
      caCert: {RSAbits: 2048, expiration: 10y}   # both optional (2048 bits, 10 years)

The CA is created when a Mesh enabling the backend is created or updated (`ensure`), and is
stored as the mesh's Secrets `<mesh>.ca-builtin-cert-<backend>` (PEM certificate) and
`<mesh>.ca-builtin-key-<backend>` (PEM key). Those names contain a dot, which names given by
users may not, so they never clash with a user's Secret; they are written straight to the store
(owned by the Mesh: deleting the Mesh deletes them) and are read, listed and deleted like any
other Secret.

Concurrent `ensure`s (two control planes, or two requests) settle on one CA: whoever creates
the certificate Secret first writes the key; the others stop there.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import anyio

from kuma.ca.core import CaError, KeyPairCaManager
from kuma.ca.pki import KeyPair, new_root_ca
from kuma.errors import ResourceAlreadyExistsError, ResourceNotFoundError, ValidationError
from kuma.model import registry
from kuma.model.resource import Resource, ResourceKey, ResourceMeta
from kuma.model.validation import Violations
from kuma.model.validators.golang import go_quote
from kuma.model.validators.mesh import parse_kuma_duration
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb
from kuma.pb.kuma.system import v1alpha1 as system_pb

if TYPE_CHECKING:
    from kuma.manager.manager import ResourceManager

__all__ = [
    "MAX_RSA_BITS",
    "MIN_RSA_BITS",
    "BuiltinCaManager",
    "cert_secret_name",
    "key_secret_name",
]

MIN_RSA_BITS = 1024
MAX_RSA_BITS = 8192


def cert_secret_name(mesh: str, backend: str) -> str:
    """`<mesh>.ca-builtin-cert-<backend>`: the Secret holding the CA certificate."""
    return f"{mesh}.ca-builtin-cert-{backend}"


def key_secret_name(mesh: str, backend: str) -> str:
    """`<mesh>.ca-builtin-key-<backend>`: the Secret holding the CA private key."""
    return f"{mesh}.ca-builtin-key-{backend}"


def _ca_cert_conf(backend: mesh_pb.CertificateAuthorityBackend) -> dict[str, Any]:
    data = backend.conf.to_dict() if backend.conf is not None else {}
    ca_cert = data.get("caCert")
    return ca_cert if isinstance(ca_cert, dict) else {}


def _rsa_bits(value: Any) -> int | None:
    if value is None:
        return 0
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not float(value).is_integer():
        return None
    return int(value)


class BuiltinCaManager(KeyPairCaManager):
    """CaManager of `builtin` backends; Secrets are read and written through `manager`."""

    def __init__(self, manager: ResourceManager) -> None:
        self._manager = manager

    async def validate_backend(
        self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend
    ) -> None:
        # Beyond Kuma 0.7.3, which fails later (HTTP 500) on these: the key size must be one
        # `cryptography` can generate in reasonable time, and the expiration must parse.
        errs = Violations()
        data = backend.conf.to_dict() if backend.conf is not None else {}
        ca_cert = data.get("caCert")
        if ca_cert is None:
            return
        if not isinstance(ca_cert, dict):
            errs.add("caCert", "could not convert backend config: must be an object")
            raise ValidationError(errs.items)
        bits = _rsa_bits(ca_cert.get("RSAbits"))
        if bits is None or (bits != 0 and not MIN_RSA_BITS <= bits <= MAX_RSA_BITS):
            errs.add(
                "caCert.RSAbits",
                f"has to be between {MIN_RSA_BITS} and {MAX_RSA_BITS} (or 0 for the default 2048)",
            )
        expiration = ca_cert.get("expiration")
        if expiration:
            try:
                if not isinstance(expiration, str) or parse_kuma_duration(expiration) <= 0:
                    raise ValueError
            except ValueError:
                errs.add("caCert.expiration", "has to be a valid format")
        errs.raise_if_any()

    async def ensure(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> None:
        try:
            await self._manager.get(registry.SECRET, cert_secret_name(mesh, backend.name), mesh)
            return
        except ResourceNotFoundError:
            pass
        try:
            await self._create(mesh, backend)
        except ResourceNotFoundError:
            raise CaError(
                f"failed to create CA for mesh {go_quote(mesh)} and backend {go_quote(backend.name)}: "
                f"mesh {go_quote(mesh)} does not exist"
            ) from None

    async def _create(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> None:
        conf = _ca_cert_conf(backend)
        bits = _rsa_bits(conf.get("RSAbits")) or 0
        validity: dt.timedelta | None = None
        expiration = conf.get("expiration")
        if isinstance(expiration, str) and expiration:
            try:
                validity = dt.timedelta(milliseconds=parse_kuma_duration(expiration))
            except ValueError as e:
                raise CaError(
                    f"failed to create CA for mesh {go_quote(mesh)} and backend {go_quote(backend.name)}: {e}"
                ) from None
        try:
            pair = await anyio.to_thread.run_sync(
                lambda: new_root_ca(mesh, rsa_bits=bits, validity=validity)
            )
        except ValueError as e:
            raise CaError(
                f"failed to generate a Root CA cert for Mesh {go_quote(mesh)}: {e}"
            ) from None
        owner = ResourceKey(registry.MESH.name, "", mesh)
        store = self._manager.store
        cert = _secret(cert_secret_name(mesh, backend.name), mesh, pair.cert_pem)
        try:
            await store.create(cert, owner=owner)
        except ResourceAlreadyExistsError:
            return  # created concurrently: that creator writes the key
        key = _secret(key_secret_name(mesh, backend.name), mesh, pair.key_pem)
        try:
            await store.create(key, owner=owner)
        except ResourceAlreadyExistsError:
            # a key left without its certificate: ours is the one that matches
            current = await store.get(registry.SECRET, key.meta.name, mesh)
            current.spec = system_pb.Secret(data=pair.key_pem)
            await store.update(current)

    def used_secrets(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> list[str]:
        return [cert_secret_name(mesh, backend.name), key_secret_name(mesh, backend.name)]

    async def _load(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> KeyPair:
        parts: list[bytes] = []
        for name in self.used_secrets(mesh, backend):
            try:
                secret = await self._manager.get(registry.SECRET, name, mesh)
            except ResourceNotFoundError:
                raise CaError(
                    f"failed to load CA key pair for Mesh {go_quote(mesh)} and backend "
                    f'{go_quote(backend.name)}: Resource not found: type="Secret" name="{name}" '
                    f'mesh="{mesh}"'
                ) from None
            parts.append(secret.spec.data or b"")
        return KeyPair(parts[0], parts[1])


def _secret(name: str, mesh: str, data: bytes) -> Resource:
    return Resource(
        registry.SECRET, ResourceMeta(name=name, mesh=mesh), system_pb.Secret(data=data)
    )
