"""Resources: a type descriptor, meta (name, mesh, version, times) and a protobuf spec.

A `Resource` read from a store carries its spec as the stored proto3-JSON text and decodes it
only when `.spec` is first touched, so listing thousands of resources for the REST API never
builds a message. Once `.spec` has been handed out the text is forgotten (the caller may mutate
the message), and `spec_json()` re-encodes from the message.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

import betterproto2

from kuma.model import codec

if TYPE_CHECKING:
    from kuma.errors import ValidationError

__all__ = [
    "Resource",
    "ResourceKey",
    "ResourceMeta",
    "ResourceType",
    "Scope",
]


class Scope(Enum):
    """Where a resource lives: once per control plane, or inside one mesh."""

    GLOBAL = "global"
    MESH = "mesh"


SpecValidator = Callable[[str, str, Any], "ValidationError | None"]


@dataclass(frozen=True, eq=False)
class ResourceType:
    """Everything kuma-py needs to know about one resource type, in one place.

    The REST API routes, kumactl verbs and Kubernetes CRD mapping are all generated from these.
    """

    name: str
    """Kuma's type name, as in the `type` field: `TrafficPermission`."""
    spec_cls: type[betterproto2.Message]
    scope: Scope
    rest_path: str | None
    """Path segment in the REST API (`traffic-permissions`), None when not served there."""
    singular: str | None = None
    """kumactl's singular noun (`traffic-permission`), None when kumactl has no verb for it."""
    plural: str | None = None
    """kumactl's plural noun (`traffic-permissions`)."""
    owner_type: str | None = None
    """Type of the resource that owns each of these (deleting the owner deletes them)."""
    admin_only: bool = False
    """Served by the admin server (127.0.0.1:5679) instead of the public REST API (Secrets)."""
    validator: SpecValidator | None = field(default=None, compare=False)
    """Checks a spec; returns a ValidationError listing Kuma's violations, or None."""

    def __repr__(self) -> str:
        return f"ResourceType({self.name})"

    @property
    def mesh_scoped(self) -> bool:
        return self.scope is Scope.MESH

    def new_spec(self) -> betterproto2.Message:
        return self.spec_cls()


class ResourceKey(NamedTuple):
    """Identity of a resource: type name, mesh ("" for global types) and name."""

    type: str
    mesh: str
    name: str


@dataclass(slots=True)
class ResourceMeta:
    name: str
    mesh: str = ""
    version: str = ""
    """Opaque; stores compare it for optimistic concurrency and change it on every write."""
    creation_time: dt.datetime | None = None
    modification_time: dt.datetime | None = None


class Resource:
    """One resource: `type`, `meta` and `spec` (a betterproto2 message of `type.spec_cls`)."""

    __slots__ = ("_spec", "_spec_json", "meta", "type")

    def __init__(
        self,
        rtype: ResourceType,
        meta: ResourceMeta,
        spec: betterproto2.Message | None = None,
        *,
        spec_json: str | None = None,
    ) -> None:
        if spec is not None and not isinstance(spec, rtype.spec_cls):
            raise TypeError(f"{rtype.name} needs a {rtype.spec_cls.__name__} spec, got {spec!r}")
        self.type = rtype
        self.meta = meta
        self._spec = spec
        self._spec_json = spec_json if spec is None else None
        if spec is None and spec_json is None:
            self._spec = rtype.new_spec()

    @property
    def spec(self) -> Any:
        if self._spec is None:
            assert self._spec_json is not None
            self._spec = codec.decode(self.type.spec_cls, json.loads(self._spec_json))
            self._spec_json = None
        return self._spec

    @spec.setter
    def spec(self, value: betterproto2.Message) -> None:
        if not isinstance(value, self.type.spec_cls):
            raise TypeError(f"{self.type.name} needs a {self.type.spec_cls.__name__} spec")
        self._spec = value
        self._spec_json = None

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.type.name, self.meta.mesh, self.meta.name)

    def spec_json(self) -> str:
        """The spec as compact proto3 JSON text (what stores persist)."""
        if self._spec_json is not None:
            return self._spec_json
        return json.dumps(codec.encode(self._spec), separators=(",", ":"), ensure_ascii=False)  # type: ignore[arg-type]

    def spec_dict(self) -> dict[str, Any]:
        """The spec as a fresh proto3 JSON object."""
        if self._spec_json is not None:
            loaded: dict[str, Any] = json.loads(self._spec_json)
            return loaded
        return codec.encode(self.spec)

    def copy(self) -> Resource:
        """An independent copy (meta copied, spec re-decoded from its JSON)."""
        meta = ResourceMeta(
            self.meta.name,
            self.meta.mesh,
            self.meta.version,
            self.meta.creation_time,
            self.meta.modification_time,
        )
        return Resource(self.type, meta, spec_json=self.spec_json())

    def __repr__(self) -> str:
        where = f"{self.meta.mesh}/" if self.meta.mesh else ""
        return f"<{self.type.name} {where}{self.meta.name} v{self.meta.version}>"
