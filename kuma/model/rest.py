"""The REST/YAML envelope: `type`, `mesh`, `name`, times, then the spec's fields flattened.

    {"type": "Dataplane", "mesh": "default", "name": "backend-01",
     "creationTime": "...", "modificationTime": "...", "networking": {...}}

`mesh` is left out for global types (Mesh, Zone); times are left out when unknown (kumactl apply
input, `--dry-run` output).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kuma.errors import UnknownResourceTypeError, ValidationError, Violation
from kuma.model import codec, registry
from kuma.model.resource import Resource, ResourceMeta, ResourceType
from kuma.model.validation import Violations

__all__ = ["ENVELOPE_KEYS", "list_to_dict", "resource_from_dict", "resource_to_dict"]

ENVELOPE_KEYS = frozenset({"type", "mesh", "name", "creationTime", "modificationTime"})


def resource_to_dict(resource: Resource, *, with_times: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": resource.type.name}
    if resource.type.mesh_scoped:
        out["mesh"] = resource.meta.mesh
    out["name"] = resource.meta.name
    if with_times:
        if resource.meta.creation_time is not None:
            out["creationTime"] = codec.format_timestamp(
                resource.meta.creation_time, nano_style=True
            )
        if resource.meta.modification_time is not None:
            out["modificationTime"] = codec.format_timestamp(
                resource.meta.modification_time, nano_style=True
            )
    out.update(resource.spec_dict())
    return out


def list_to_dict(items: Iterable[Resource], total: int, next_url: str | None) -> dict[str, Any]:
    return {"total": total, "items": [resource_to_dict(r) for r in items], "next": next_url}


def _str_field(data: Mapping[str, Any], key: str, errs: Violations) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errs.add(key, "must be a string")
        return ""
    return value


def resource_from_dict(data: Any, *, rtype: ResourceType | None = None) -> Resource:
    """Parse an envelope. The body's `type` picks the spec class unless `rtype` is given.

    Raises UnknownResourceTypeError for an unknown `type`, ValidationError for malformed fields
    (each with its path). Semantic validation (Kuma's rules) is the manager's job.
    """
    if not isinstance(data, Mapping):
        raise ValidationError([Violation("", f"must be an object, got {type(data).__name__}")])
    errs = Violations()
    type_name = _str_field(data, "type", errs)
    name = _str_field(data, "name", errs)
    mesh = _str_field(data, "mesh", errs)
    errs.raise_if_any()
    if rtype is None:
        found = registry.find(type_name)
        if found is None:
            raise UnknownResourceTypeError(type_name)
        rtype = found
    spec_data = {k: v for k, v in data.items() if k not in ENVELOPE_KEYS}
    spec = codec.decode(rtype.spec_cls, spec_data)
    return Resource(rtype, ResourceMeta(name=name, mesh=mesh if rtype.mesh_scoped else ""), spec)
