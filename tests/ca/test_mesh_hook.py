"""The manager's Mesh CA hook: plugins by type, failures leave nothing behind, no hook no CA."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from kuma.ca import BuiltinCaManager, CaError, CaManager, KeyPair
from kuma.errors import ResourceNotFoundError, ValidationError
from kuma.manager import ResourceManager
from kuma.manager.ca import enable_mesh_ca
from kuma.model import registry as r
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb
from kuma.store.memory import MemoryStore

from .support import mesh_yaml, violations

pytestmark = pytest.mark.anyio

PROVIDED = """
enabledBackend: ca-1
backends:
- name: ca-1
  type: provided
  conf:
    cert: {inline: dGVzdA==}
    key: {inline: dGVzdA==}
"""


class BrokenCa(CaManager):
    """Accepts every backend, then fails to create the CA."""

    def __init__(self) -> None:
        self.validated: list[str] = []

    async def validate_backend(
        self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend
    ) -> None:
        self.validated.append(f"{mesh}/{backend.name}")

    async def ensure(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> None:
        raise CaError("the HSM is on fire")

    def used_secrets(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> list[str]:
        return []

    async def get_root_certs(
        self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend
    ) -> list[bytes]:
        raise CaError("no CA")

    async def generate_dataplane_cert(
        self,
        mesh: str,
        backend: mesh_pb.CertificateAuthorityBackend,
        services: Sequence[str],
        *,
        now: dt.datetime | None = None,
    ) -> KeyPair:
        raise CaError("no CA")


async def test_a_type_without_an_installed_plugin_is_refused() -> None:
    manager = ResourceManager(MemoryStore())
    enable_mesh_ca(manager, {"builtin": BuiltinCaManager(manager)})
    with pytest.raises(ValidationError) as e:
        await manager.create(mesh_yaml("demo", PROVIDED))
    assert violations(e.value) == [
        ("mtls.backends[0].type", "could not find installed plugin for this type")
    ]


async def test_a_mesh_whose_ca_cannot_be_created_is_not_left_behind() -> None:
    manager = ResourceManager(MemoryStore())
    broken = BrokenCa()
    enable_mesh_ca(manager, {"provided": broken})
    with pytest.raises(CaError, match="the HSM is on fire"):
        await manager.create(mesh_yaml("demo", PROVIDED))
    assert broken.validated == ["demo/ca-1"]
    with pytest.raises(ResourceNotFoundError):
        await manager.get(r.MESH, "demo")

    # on update, nothing is written either
    await manager.create(mesh_yaml("demo"))
    mesh = await manager.get(r.MESH, "demo")
    mesh.spec = mesh_yaml("demo", PROVIDED).spec
    with pytest.raises(CaError):
        await manager.update(mesh)
    assert (await manager.get(r.MESH, "demo")).spec.mtls is None


async def test_without_the_hook_no_ca_is_created() -> None:
    manager = ResourceManager(MemoryStore())
    await manager.create(
        mesh_yaml("demo", "enabledBackend: ca-1\nbackends:\n- name: ca-1\n  type: builtin\n")
    )
    assert (await manager.list(r.SECRET, "demo")).total == 0
