"""The builtin CA: created with the Mesh, stored as two mesh Secrets, gone with the Mesh."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kuma.api import build_admin_app
from kuma.api.settings import AdminSettings
from kuma.ca import cert_secret_name, key_secret_name
from kuma.errors import ResourceNotFoundError, ValidationError
from kuma.manager import ResourceManager
from kuma.manager.ca import CHANGE_CA_MESSAGE
from kuma.model import registry as r

from .support import mesh_yaml, open_manager, violations

pytestmark = pytest.mark.anyio

BUILTIN = """
enabledBackend: ca-1
backends:
- name: ca-1
  type: builtin
"""


@pytest.fixture(params=["memory", "postgres"])
async def manager(request: pytest.FixtureRequest) -> AsyncIterator[ResourceManager]:
    async with open_manager(request.param, request) as m:
        yield m


async def secret_names(manager: ResourceManager, mesh: str) -> list[str]:
    return sorted(s.meta.name for s in (await manager.list(r.SECRET, mesh)).items)


async def ca_of(
    manager: ResourceManager, mesh: str, backend: str
) -> tuple[x509.Certificate, bytes]:
    cert = await manager.get(r.SECRET, cert_secret_name(mesh, backend), mesh)
    key = await manager.get(r.SECRET, key_secret_name(mesh, backend), mesh)
    return x509.load_pem_x509_certificate(cert.spec.data), key.spec.data


async def test_creating_a_mesh_with_builtin_mtls_creates_its_ca(manager: ResourceManager) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    await manager.create(mesh_yaml("demo", BUILTIN))
    after = dt.datetime.now(dt.UTC)

    assert await secret_names(manager, "demo") == [
        "demo.ca-builtin-cert-ca-1",
        "demo.ca-builtin-key-ca-1",
    ]
    cert, key_pem = await ca_of(manager, "demo", "ca-1")
    # the key is PEM "RSA PRIVATE KEY" (PKCS#1) and belongs to the certificate
    assert key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]

    expected_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kuma"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Mesh"),
            x509.NameAttribute(NameOID.COMMON_NAME, "demo"),
        ]
    )
    assert cert.subject == expected_name
    assert cert.issuer == expected_name
    cert.verify_directly_issued_by(cert)  # self-signed
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://demo"]
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.value.ca is True
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign
    assert usage.crl_sign
    assert not usage.digital_signature
    assert not usage.key_encipherment
    assert not usage.key_agreement

    # valid from 10 s before creation, for 10 years
    assert before - dt.timedelta(seconds=11) <= cert.not_valid_before_utc <= after
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime == dt.timedelta(days=3650, seconds=10)


async def test_ca_cert_settings_are_honoured(manager: ResourceManager) -> None:
    await manager.create(
        mesh_yaml(
            "demo",
            """
enabledBackend: ca-1
backends:
- name: ca-1
  type: builtin
  conf:
    caCert: {RSAbits: 1024, expiration: 1y}
""",
        )
    )
    cert, key_pem = await ca_of(manager, "demo", "ca-1")
    key = serialization.load_pem_private_key(key_pem, None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 1024
    # Kuma: NotAfter = now + expiration (no skew), NotBefore = now - 10 s
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(
        days=365, seconds=10
    )


async def test_a_mesh_without_mtls_gets_no_ca_until_it_enables_one(
    manager: ResourceManager,
) -> None:
    await manager.create(mesh_yaml("demo"))
    assert await secret_names(manager, "demo") == []

    mesh = await manager.get(r.MESH, "demo")
    mesh.spec = mesh_yaml("demo", BUILTIN).spec
    await manager.update(mesh)
    assert await secret_names(manager, "demo") == [
        "demo.ca-builtin-cert-ca-1",
        "demo.ca-builtin-key-ca-1",
    ]

    # updating again keeps the CA (dataplane certificates stay valid)
    first = await manager.get(r.SECRET, cert_secret_name("demo", "ca-1"), "demo")
    mesh = await manager.get(r.MESH, "demo")
    await manager.update(mesh)
    again = await manager.get(r.SECRET, cert_secret_name("demo", "ca-1"), "demo")
    assert again.spec.data == first.spec.data
    assert again.meta.version == first.meta.version


async def test_only_the_enabled_backend_gets_a_ca(manager: ResourceManager) -> None:
    await manager.create(
        mesh_yaml(
            "demo",
            """
enabledBackend: ca-2
backends:
- name: ca-1
  type: builtin
- name: ca-2
  type: builtin
""",
        )
    )
    assert await secret_names(manager, "demo") == [
        "demo.ca-builtin-cert-ca-2",
        "demo.ca-builtin-key-ca-2",
    ]


async def test_changing_the_ca_while_mtls_is_on_is_refused(manager: ResourceManager) -> None:
    two = """
enabledBackend: {enabled}
backends:
- name: ca-1
  type: builtin
- name: ca-2
  type: builtin
"""
    await manager.create(mesh_yaml("demo", two.format(enabled="ca-1")))
    mesh = await manager.get(r.MESH, "demo")
    mesh.spec = mesh_yaml("demo", two.format(enabled="ca-2")).spec
    with pytest.raises(ValidationError) as e:
        await manager.update(mesh)
    assert violations(e.value) == [("mtls.enabledBackend", CHANGE_CA_MESSAGE)]
    assert "ca-2" not in " ".join(await secret_names(manager, "demo"))

    # disable mTLS first, then enable the other CA: allowed, and ca-2 is created
    mesh = await manager.get(r.MESH, "demo")
    mesh.spec = mesh_yaml("demo", two.format(enabled='""')).spec
    await manager.update(mesh)
    mesh = await manager.get(r.MESH, "demo")
    mesh.spec = mesh_yaml("demo", two.format(enabled="ca-2")).spec
    await manager.update(mesh)
    assert await secret_names(manager, "demo") == [
        "demo.ca-builtin-cert-ca-1",
        "demo.ca-builtin-cert-ca-2",
        "demo.ca-builtin-key-ca-1",
        "demo.ca-builtin-key-ca-2",
    ]


async def test_deleting_the_mesh_deletes_its_ca(manager: ResourceManager) -> None:
    await manager.create(mesh_yaml("demo", BUILTIN))
    await manager.create(mesh_yaml("other", BUILTIN))
    first, _ = await ca_of(manager, "demo", "ca-1")

    await manager.delete(r.MESH, "demo")
    assert await secret_names(manager, "demo") == []
    with pytest.raises(ResourceNotFoundError):
        await manager.get(r.SECRET, cert_secret_name("demo", "ca-1"), "demo")
    assert len(await secret_names(manager, "other")) == 2

    # a mesh created again under the same name gets a new CA
    await manager.create(mesh_yaml("demo", BUILTIN))
    second, _ = await ca_of(manager, "demo", "ca-1")
    assert second.serial_number != first.serial_number


async def test_unusable_builtin_settings_are_refused_and_nothing_is_left(
    manager: ResourceManager,
) -> None:
    with pytest.raises(ValidationError) as e:
        await manager.create(
            mesh_yaml(
                "demo",
                """
enabledBackend: ca-1
backends:
- name: ca-1
  type: builtin
  conf:
    caCert: {RSAbits: 512, expiration: soon}
""",
            )
        )
    assert violations(e.value) == [
        (
            "mtls.backends[0].config.caCert.RSAbits",
            "has to be between 1024 and 8192 (or 0 for the default 2048)",
        ),
        ("mtls.backends[0].config.caCert.expiration", "has to be a valid format"),
    ]
    with pytest.raises(ResourceNotFoundError):
        await manager.get(r.MESH, "demo")
    assert (await manager.list(r.SECRET)).total == 0


async def test_the_admin_api_lists_gets_and_deletes_ca_secrets(manager: ResourceManager) -> None:
    await manager.create(mesh_yaml("demo", BUILTIN))
    app = build_admin_app(manager, AdminSettings())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin") as client:
        listed = (await client.get("/meshes/demo/secrets")).json()
        assert [i["name"] for i in listed["items"]] == [
            "demo.ca-builtin-cert-ca-1",
            "demo.ca-builtin-key-ca-1",
        ]
        one = await client.get("/meshes/demo/secrets/demo.ca-builtin-cert-ca-1")
        assert one.status_code == 200
        assert one.json()["type"] == "Secret"
        assert one.json()["name"] == "demo.ca-builtin-cert-ca-1"

        # users cannot create such names themselves
        put = await client.put(
            "/meshes/demo/secrets/demo.mine",
            json={"type": "Secret", "mesh": "demo", "name": "demo.mine", "data": "dGVzdA=="},
        )
        assert put.status_code == 400

        deleted = await client.delete("/meshes/demo/secrets/demo.ca-builtin-key-ca-1")
        assert deleted.status_code == 200
    assert await secret_names(manager, "demo") == ["demo.ca-builtin-cert-ca-1"]
