"""The Mesh CA lifecycle the resource manager runs on Mesh create and update.

Kuma's mesh manager and MeshValidator (pkg/core/managers/apis/mesh), in order:

* update only: when mTLS is on before and after and `mtls.enabledBackend` changes, the update
  is refused (`mtls.enabledBackend`: "Changing CA when mTLS is enabled is forbidden. Disable
  mTLS first and then change the CA"); dataplanes would hold certificates of the old CA;
* every backend of `mtls.backends` (not only the enabled one) is checked by the CA manager of
  its type; a type without one is `mtls.backends[i].type`: "could not find installed plugin for
  this type"; the manager's violations are reported under `mtls.backends[i].config`;
* the enabled backend's CA is ensured (a builtin CA is created when missing).

Deleting a Mesh needs nothing here: its CA Secrets are owned by the Mesh and go with it.

    ca_managers = enable_mesh_ca(manager)    # installs the hook, returns the CA managers
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from kuma.ca import CaManager, default_ca_managers, enabled_backend
from kuma.errors import ValidationError, Violation
from kuma.model.validation import Path, Violations
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

if TYPE_CHECKING:
    from kuma.manager.manager import ResourceManager

__all__ = [
    "CHANGE_CA_MESSAGE",
    "MeshCaHook",
    "MeshCaLifecycle",
    "enable_mesh_ca",
]

CHANGE_CA_MESSAGE = (
    "Changing CA when mTLS is enabled is forbidden. Disable mTLS first and then change the CA"
)


class MeshCaHook(Protocol):
    """What the resource manager calls around writing a Mesh."""

    async def validate(self, name: str, spec: mesh_pb.Mesh, previous: mesh_pb.Mesh | None) -> None:
        """Raise ValidationError when the Mesh's CAs are unusable (`previous`: the stored spec on
        update, None on create). Runs before anything is written."""

    async def ensure(self, name: str, spec: mesh_pb.Mesh) -> None:
        """Make the enabled CA exist. Runs once the Mesh exists (create) or before it is
        updated (update)."""


class MeshCaLifecycle:
    """MeshCaHook over a set of CA managers (by backend type)."""

    def __init__(self, ca_managers: Mapping[str, CaManager]) -> None:
        self.ca_managers = ca_managers

    async def validate(self, name: str, spec: mesh_pb.Mesh, previous: mesh_pb.Mesh | None) -> None:
        if previous is not None:
            before, after = previous.mtls, spec.mtls
            if (
                before is not None
                and after is not None
                and before.enabled_backend
                and after.enabled_backend
                and before.enabled_backend != after.enabled_backend
            ):
                raise ValidationError([Violation("mtls.enabledBackend", CHANGE_CA_MESSAGE)])
        mtls = spec.mtls
        if mtls is None:
            return
        errs = Violations()
        path = Path("mtls").field("backends")
        for i, backend in enumerate(mtls.backends):
            manager = self.ca_managers.get(backend.type)
            if manager is None:
                errs.add(
                    path.index(i).field("type"), "could not find installed plugin for this type"
                )
                break
            try:
                await manager.validate_backend(name, backend)
            except ValidationError as e:
                errs.extend(e, prefix=path.index(i).field("config"))
        errs.raise_if_any()

    async def ensure(self, name: str, spec: mesh_pb.Mesh) -> None:
        backend = enabled_backend(spec)
        if backend is None:
            return
        manager = self.ca_managers.get(backend.type)
        if manager is None:  # the validator refuses such a Mesh first
            raise ValidationError(
                [
                    Violation(
                        "mtls.enabledBackend", f"CA manager for type {backend.type} does not exist"
                    )
                ]
            )
        await manager.ensure(name, backend)


def enable_mesh_ca(
    manager: ResourceManager, ca_managers: Mapping[str, CaManager] | None = None
) -> Mapping[str, CaManager]:
    """Install the Mesh CA hook on `manager` (the builtin and provided CA managers unless
    `ca_managers` is given) and return the CA managers, for the SDS server."""
    managers = ca_managers if ca_managers is not None else default_ca_managers(manager)
    manager.mesh_ca = MeshCaLifecycle(managers)
    return managers
