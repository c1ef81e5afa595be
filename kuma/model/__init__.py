"""kuma.model: Kuma's resources as a Python library.

from kuma.model import load_resources, validate, select_dataplane_policy

dataplane, permission = load_resources(open("mesh.yaml").read())
validate(dataplane)  # raises kuma.errors.ValidationError with Kuma's field paths
"""

from __future__ import annotations

from kuma.model import registry
from kuma.model.policy import (
    outbound_services,
    select_connection_policies,
    select_dataplane_policy,
    select_inbound_policies,
)
from kuma.model.resource import Resource, ResourceKey, ResourceMeta, ResourceType, Scope
from kuma.model.rest import resource_from_dict, resource_to_dict
from kuma.model.selectors import Rank, dataplane_matches, dataplane_tags, rank, selector_matches
from kuma.model.yamlio import dump_yaml, load_documents, load_resources

__all__ = [
    "Rank",
    "Resource",
    "ResourceKey",
    "ResourceMeta",
    "ResourceType",
    "Scope",
    "dataplane_matches",
    "dataplane_tags",
    "dump_yaml",
    "load_documents",
    "load_resources",
    "outbound_services",
    "rank",
    "registry",
    "resource_from_dict",
    "resource_to_dict",
    "select_connection_policies",
    "select_dataplane_policy",
    "select_inbound_policies",
    "selector_matches",
    "validate",
]


def validate(resource: Resource) -> None:
    """Raise kuma.errors.ValidationError if the resource breaks any of Kuma's rules."""
    from kuma.manager.manager import ResourceManager

    ResourceManager.validate(resource)
