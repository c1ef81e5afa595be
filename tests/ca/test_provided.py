"""The provided CA: the user's certificate and key, loaded from a Secret, a file or inline."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509

from kuma.ca import DataSourceLoader, ProvidedCaManager, enabled_backend
from kuma.ca.core import CaError
from kuma.errors import ResourceNotFoundError, ValidationError
from kuma.manager import ResourceManager
from kuma.model import registry as r

from .support import make_ca, mesh_yaml, open_manager, secret, violations

pytestmark = pytest.mark.anyio

CERT = "mtls.backends[0].config.cert"
KEY = "mtls.backends[0].config.key"
SVID_A = "(see X509-SVID: Appendix A. X.509 Field Reference)"


@pytest.fixture
async def manager(request: pytest.FixtureRequest) -> AsyncIterator[ResourceManager]:
    async with open_manager("memory", request) as m:
        await m.create(mesh_yaml("demo"))
        yield m


def provided(cert: str, key: str, *, extra: str = "") -> str:
    return f"""
enabledBackend: ca-1
backends:
- name: ca-1
  type: provided
  conf:
    cert: {cert}
    key: {key}
{extra}"""


def inline(data: bytes) -> str:
    return "{inline: " + base64.b64encode(data).decode() + "}"


async def enable(manager: ResourceManager, mtls: str) -> None:
    mesh = await manager.get(r.MESH, "demo")
    mesh.spec = mesh_yaml("demo", mtls).spec
    await manager.update(mesh)


async def refused(manager: ResourceManager, mtls: str) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as e:
        await enable(manager, mtls)
    mesh = await manager.get(r.MESH, "demo")
    assert mesh.spec.mtls is None  # nothing was written
    return violations(e.value)


async def test_shape_errors_use_kumas_paths(manager: ResourceManager) -> None:
    assert await refused(manager, provided("{}", "{secret: ''}")) == [
        (CERT, "data source has to be chosen. Available sources: secret, file, inline"),
        (f"{KEY}.secret", "cannot be empty"),
    ]


async def test_files_that_cannot_be_read(manager: ResourceManager, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    message = f"could not load data: open {missing}: no such file or directory"
    assert await refused(manager, provided(f"{{file: {missing}}}", f"{{file: {missing}}}")) == [
        (CERT, message),
        (KEY, message),
    ]


async def test_missing_secret(manager: ResourceManager) -> None:
    message = 'could not load data: Resource not found: type="Secret" name="ca-key" mesh="demo"'
    assert await refused(manager, provided("{secret: ca-cert}", "{secret: ca-key}")) == [
        (CERT, message),
        (KEY, message),
    ]


async def test_data_that_is_not_a_key_pair(manager: ResourceManager) -> None:
    assert await refused(manager, provided(inline(b"test"), inline(b"test"))) == [
        (
            CERT,
            "not a valid TLS key pair: tls: failed to find any PEM data in certificate input",
        )
    ]
    ca, other = make_ca(), make_ca("other")
    assert await refused(manager, provided(inline(ca.cert_pem), inline(ca.cert_pem))) == [
        (
            CERT,
            'not a valid TLS key pair: tls: failed to find "PRIVATE KEY" PEM block in key '
            "input after skipping PEM blocks of the following types: [CERTIFICATE]",
        )
    ]
    assert await refused(manager, provided(inline(ca.cert_pem), inline(other.key_pem))) == [
        (CERT, "not a valid TLS key pair: tls: private key does not match public key")
    ]


async def test_certificates_that_are_not_a_root_ca(manager: ResourceManager) -> None:
    leaf = make_ca(
        "leaf", is_ca=False, cert_sign=False, digital_signature=True, key_encipherment=True
    )
    assert await refused(manager, provided(inline(leaf.cert_pem), inline(leaf.key_pem))) == [
        (
            CERT,
            "basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. Basic Constraints)",
        ),
        (CERT, "key usage extension 'keyCertSign' must be set (see X509-SVID: 4.3. Key Usage)"),
        (CERT, f"key usage extension 'digitalSignature' must NOT be set {SVID_A}"),
        (CERT, f"key usage extension 'keyEncipherment' must NOT be set {SVID_A}"),
    ]

    root = make_ca("root")
    intermediate = make_ca("intermediate", issuer=root)
    assert await refused(
        manager, provided(inline(intermediate.cert_pem), inline(intermediate.key_pem))
    ) == [(CERT, "certificate must be self-signed (intermediate CAs are not allowed)")]

    chain = intermediate.cert_pem + root.cert_pem
    assert await refused(manager, provided(inline(chain), inline(intermediate.key_pem))) == [
        (CERT, "certificate must be a root CA (certificate chains are not allowed)")
    ]

    # trustme's CA can also sign (digitalSignature): Envoy-incompatible per X509-SVID
    tm = trustme.CA()
    assert await refused(
        manager,
        provided(inline(tm.cert_pem.bytes()), inline(tm.private_key_pem.bytes())),
    ) == [(CERT, f"key usage extension 'digitalSignature' must NOT be set {SVID_A}")]


async def test_every_backend_is_validated_not_only_the_enabled_one(
    manager: ResourceManager,
) -> None:
    mtls = """
enabledBackend: ca-1
backends:
- name: ca-1
  type: builtin
- name: ca-2
  type: provided
  conf:
    cert: {secret: nope}
    key: {secret: nope}
"""
    message = 'could not load data: Resource not found: type="Secret" name="nope" mesh="demo"'
    assert await refused(manager, mtls) == [
        ("mtls.backends[1].config.cert", message),
        ("mtls.backends[1].config.key", message),
    ]


@pytest.mark.parametrize("source", ["secret", "file", "inline"])
async def test_a_valid_provided_ca_issues_identities(
    manager: ResourceManager, tmp_path: Path, source: str
) -> None:
    ca = make_ca("corp-root")
    if source == "secret":
        await manager.create(secret("ca-cert", "demo", ca.cert_pem))
        await manager.create(secret("ca-key", "demo", ca.key_pem))
        cert_src, key_src = "{secret: ca-cert}", "{secret: ca-key}"
    elif source == "file":
        (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
        (tmp_path / "ca.key").write_bytes(ca.key_pem)
        cert_src, key_src = f"{{file: {tmp_path / 'ca.pem'}}}", f"{{file: {tmp_path / 'ca.key'}}}"
    else:
        cert_src, key_src = inline(ca.cert_pem), inline(ca.key_pem)
    await enable(manager, provided(cert_src, key_src))

    # nothing is created for a provided CA
    names = [s.meta.name for s in (await manager.list(r.SECRET, "demo")).items]
    assert all(not n.startswith("demo.") for n in names)

    mesh = await manager.get(r.MESH, "demo")
    backend = enabled_backend(mesh.spec)
    assert backend is not None
    cas = manager.mesh_ca.ca_managers  # type: ignore[union-attr]
    assert await cas["provided"].get_root_certs("demo", backend) == [ca.cert_pem]
    pair = await cas["provided"].generate_dataplane_cert("demo", backend, ["web", "web-api"])
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_pem))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://demo/web",
        "spiffe://demo/web-api",
    ]
    assert cas["provided"].used_secrets("demo", backend) == (
        ["ca-cert", "ca-key"] if source == "secret" else []
    )


async def test_a_ca_that_disappears_gives_kumas_load_error(tmp_path: Path) -> None:
    ca = make_ca()
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    manager = ProvidedCaManager(DataSourceLoader(None))
    mesh = mesh_yaml(
        "default",
        provided(f"{{file: {tmp_path / 'ca.pem'}}}", f"{{file: {tmp_path / 'invalid.key'}}}"),
    )
    backend = enabled_backend(mesh.spec)
    assert backend is not None
    expected = (
        'failed to load CA key pair for Mesh "default" and backend "ca-1": could not load data: '
        f"open {tmp_path / 'invalid.key'}: no such file or directory"
    )
    with pytest.raises(CaError) as e:
        await manager.get_root_certs("default", backend)
    assert str(e.value) == expected
    with pytest.raises(CaError) as e:
        await manager.generate_dataplane_cert("default", backend, ["web"])
    assert str(e.value) == expected


async def test_mesh_creation_with_a_provided_secret_needs_the_mesh_first(
    manager: ResourceManager,
) -> None:
    # the Secret can only exist once its Mesh does: create the mesh, the secrets, then enable
    with pytest.raises(ValidationError) as e:
        await manager.create(mesh_yaml("fresh", provided("{secret: c}", "{secret: k}")))
    assert violations(e.value)[0] == (
        CERT,
        'could not load data: Resource not found: type="Secret" name="k" mesh="fresh"',
    )
    with pytest.raises(ResourceNotFoundError):
        await manager.get(r.MESH, "fresh")
