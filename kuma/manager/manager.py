"""The resource manager: the only writer of resources.

Every write path (REST API, kumactl through the API, kuma-dp registration, Kubernetes
controllers) goes through here, so the rules live in one place:

* names and meshes are validated, then the spec with the type's validator;
* a mesh-scoped resource needs its Mesh (MeshNotFoundError otherwise) and is owned by it, so
  deleting a Mesh deletes everything in it; a DataplaneInsight is owned by its Dataplane;
* Mesh defaults (prometheus backend port, path, tags) are applied on create and update;
* with a `mesh_ca` hook (`kuma.manager.ca.enable_mesh_ca`), a Mesh's CA backends are validated
  before it is written and its enabled CA is ensured (a builtin CA is created) with it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import anyio

from kuma.errors import (
    MeshNotFoundError,
    ResourceNotFoundError,
    ValidationError,
)
from kuma.manager.defaults import apply_mesh_defaults
from kuma.model import registry
from kuma.model.resource import Resource, ResourceKey, ResourceMeta, ResourceType
from kuma.model.validators import validate_meta
from kuma.store.base import ListResult, ResourceStore, StrictResourceStore
from kuma.store.events import Subscription

if TYPE_CHECKING:
    from kuma.manager.ca import MeshCaHook

__all__ = ["ResourceManager"]


class ResourceManager:
    def __init__(
        self,
        store: ResourceStore,
        *,
        mesh_ca: MeshCaHook | None = None,
        check_names: bool = True,
    ) -> None:
        self.store = store if isinstance(store, StrictResourceStore) else StrictResourceStore(store)
        self.mesh_ca = mesh_ca
        """Mesh CA lifecycle (validate backends, ensure the enabled CA); None: no CA handling."""
        self.check_names = check_names
        """False over the Kubernetes store: names there are `<name>.<namespace>` and the API
        server checks them (Kuma checks names in its REST API only, never in its manager)."""

    # -- validation -----------------------------------------------------------------------------

    @staticmethod
    def validate(resource: Resource, *, check_name: bool = True) -> None:
        """Raise ValidationError if the name, mesh (unless `check_name=False`) or spec breaks
        Kuma's rules."""
        rtype = resource.type
        violations = []
        meta_err = (
            validate_meta(resource.meta.name, resource.meta.mesh, mesh_scoped=rtype.mesh_scoped)
            if check_name
            else None
        )
        if meta_err:
            violations.extend(meta_err.violations)
        if rtype.validator is not None:
            spec_err = rtype.validator(resource.meta.name, resource.meta.mesh, resource.spec)
            if spec_err:
                violations.extend(spec_err.violations)
        if violations:
            raise ValidationError(violations)

    def _owner(self, resource: Resource) -> ResourceKey | None:
        rtype = resource.type
        if rtype.owner_type is None:
            return None
        if rtype.owner_type == registry.MESH.name:
            return ResourceKey(registry.MESH.name, "", resource.meta.mesh)
        # owned by a same-named resource in the same mesh (DataplaneInsight -> Dataplane)
        return ResourceKey(rtype.owner_type, resource.meta.mesh, resource.meta.name)

    async def _require_mesh(self, mesh: str) -> None:
        try:
            await self.store.get(registry.MESH, mesh)
        except ResourceNotFoundError:
            raise MeshNotFoundError(mesh) from None

    # -- writes ---------------------------------------------------------------------------------

    @staticmethod
    def apply_defaults(resource: Resource) -> None:
        if resource.type is registry.MESH:
            apply_mesh_defaults(resource.spec)

    async def create(self, resource: Resource) -> None:
        self.apply_defaults(resource)
        self.validate(resource, check_name=self.check_names)
        if resource.type is registry.MESH and self.mesh_ca is not None:
            await self.mesh_ca.validate(resource.meta.name, resource.spec, None)
        if resource.type.mesh_scoped:
            await self._require_mesh(resource.meta.mesh)
        owner = self._owner(resource)
        if owner is not None and owner.type != registry.MESH.name:
            # the owning resource must exist (e.g. a Dataplane for its DataplaneInsight)
            await self.store.get(registry.get(owner.type), owner.name, owner.mesh)
        try:
            await self.store.create(resource, owner=owner)
        except ResourceNotFoundError as e:
            if owner is not None and e.type_name == registry.MESH.name:
                raise MeshNotFoundError(resource.meta.mesh) from None
            raise
        if resource.type is registry.MESH and self.mesh_ca is not None:
            # the CA's Secrets are owned by the Mesh, so it is ensured once the Mesh exists;
            # a Mesh whose CA cannot be created is not left behind
            try:
                await self.mesh_ca.ensure(resource.meta.name, resource.spec)
            except BaseException:
                # the CA error is the one to report, not a failed clean-up
                with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await self.store.delete(registry.MESH, resource.meta.name)
                raise

    async def update(self, resource: Resource) -> None:
        self.apply_defaults(resource)
        self.validate(resource, check_name=self.check_names)
        if resource.type is registry.MESH and self.mesh_ca is not None:
            current = await self.store.get(registry.MESH, resource.meta.name)
            await self.mesh_ca.validate(resource.meta.name, resource.spec, current.spec)
            await self.mesh_ca.ensure(resource.meta.name, resource.spec)
        await self.store.update(resource)

    async def upsert(self, resource: Resource) -> bool:
        """Create, or update the current version; True when it was created."""
        try:
            current = await self.store.get(resource.type, resource.meta.name, resource.meta.mesh)
        except ResourceNotFoundError:
            await self.create(resource)
            return True
        resource.meta.version = current.meta.version
        await self.update(resource)
        return False

    async def delete(self, rtype: ResourceType, name: str, mesh: str = "") -> None:
        await self.store.delete(rtype, name, mesh)

    # -- reads ----------------------------------------------------------------------------------

    async def get(self, rtype: ResourceType, name: str, mesh: str = "") -> Resource:
        return await self.store.get(rtype, name, mesh)

    async def list(
        self,
        rtype: ResourceType,
        mesh: str | None = None,
        *,
        size: int | None = None,
        offset: str | None = None,
    ) -> ListResult:
        return await self.store.list(rtype, mesh, size=size, offset=offset)

    def subscribe(self, *, max_buffer: int = 10_000) -> Subscription:
        return self.store.subscribe(max_buffer=max_buffer)

    # -- defaults -------------------------------------------------------------------------------

    async def ensure_default_mesh(self, name: str = "default") -> bool:
        """Create mesh `name` unless it exists; True when it was created."""
        try:
            await self.store.get(registry.MESH, name)
        except ResourceNotFoundError:
            await self.create(Resource(registry.MESH, ResourceMeta(name=name)))
            return True
        return False
