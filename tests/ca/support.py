"""Helpers for CA tests: managers over each store, meshes from YAML, CAs made by hand."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kuma.ca.pki import KeyPair
from kuma.manager import ResourceManager
from kuma.manager.ca import enable_mesh_ca
from kuma.model import registry as r
from kuma.model.resource import Resource, ResourceMeta
from kuma.model.yamlio import load_resources
from kuma.pb.kuma.system import v1alpha1 as system_pb
from kuma.store.base import ResourceStore
from kuma.store.memory import MemoryStore


@asynccontextmanager
async def open_manager(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[ResourceManager]:
    """A ResourceManager over a fresh store of `kind` ("memory" or "postgres"), CA hook on."""
    if kind == "memory":
        store: ResourceStore = MemoryStore()
    else:
        from kuma.store.postgres import PostgresStore, migrate_up

        dsn = request.getfixturevalue("postgres_db")
        await migrate_up(dsn)
        store = await PostgresStore.connect(dsn)
    manager = ResourceManager(store)
    enable_mesh_ca(manager)
    try:
        yield manager
    finally:
        await manager.store.close()


def resource(text: str) -> Resource:
    (res,) = load_resources(text)
    return res


def mesh_yaml(name: str, mtls: str = "") -> Resource:
    body = f"type: Mesh\nname: {name}\n"
    if mtls:
        body += "mtls:\n" + "".join(f"  {line}\n" for line in mtls.strip("\n").splitlines())
    return resource(body)


def dataplane(name: str, mesh: str, *services: str, gateway: str | None = None) -> Resource:
    if gateway is not None:
        networking = f"  gateway:\n    tags: {{kuma.io/service: {gateway}}}\n"
    else:
        networking = "  inbound:\n" + "".join(
            f"  - port: {8000 + i}\n    tags: {{kuma.io/service: {s}}}\n"
            for i, s in enumerate(services)
        )
    return resource(
        f"type: Dataplane\nmesh: {mesh}\nname: {name}\nnetworking:\n  address: 127.0.0.1\n"
        + networking
    )


def secret(name: str, mesh: str, data: bytes) -> Resource:
    return Resource(r.SECRET, ResourceMeta(name=name, mesh=mesh), system_pb.Secret(data=data))


def make_ca(
    common_name: str = "my-ca",
    *,
    is_ca: bool = True,
    cert_sign: bool = True,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    key_agreement: bool = False,
    issuer: KeyPair | None = None,
) -> KeyPair:
    """A CA certificate as a user would bring one (self-signed unless `issuer` is given)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer_key: Any = key
    issuer_name = name
    if issuer is not None:
        signer_key = serialization.load_pem_private_key(issuer.key_pem, None)
        issuer_name = x509.load_pem_x509_certificate(issuer.cert_pem).subject
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=False,
                key_encipherment=key_encipherment,
                data_encipherment=False,
                key_agreement=key_agreement,
                key_cert_sign=cert_sign,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(signer_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyPair(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def violations(error: Any) -> list[tuple[str, str]]:
    return [(v.field, v.message) for v in error.violations]
