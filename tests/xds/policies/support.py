"""Building meshes of dataplanes and policies, and generating config for one of them."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from kuma.model.rest import resource_from_dict
from kuma.xds.core import CLUSTER, LISTENER, DataplaneMetadata, MeshContext, ResourceSet
from kuma.xds.generators import SharedResources, generate
from kuma.xds.topology import build_proxy
from tests.xds.generators.harness import SETTINGS, mesh_context

__all__ = [
    "MTLS_MESH",
    "cluster",
    "ctx_of",
    "dp",
    "gen",
    "listener",
    "policy",
    "sel",
]

MTLS_MESH: dict[str, Any] = {
    "type": "Mesh",
    "name": "default",
    "mtls": {"enabledBackend": "ca-1", "backends": [{"name": "ca-1", "type": "builtin"}]},
}


def dp(
    name: str,
    address: str,
    inbounds: list[tuple[int, dict[str, str]]],
    outbounds: list[tuple[int, str]] = (),  # type: ignore[assignment]
    **networking: Any,
) -> dict[str, Any]:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {
            "address": address,
            "inbound": [{"port": port, "tags": tags} for port, tags in inbounds],
            "outbound": [{"port": port, "tags": {"kuma.io/service": s}} for port, s in outbounds],
            **networking,
        },
    }


def policy(type_name: str, name: str, **spec: Any) -> dict[str, Any]:
    return {"type": type_name, "mesh": "default", "name": name, **spec}


def sel(*matches: dict[str, str]) -> list[dict[str, Any]]:
    return [{"match": m} for m in matches]


def ctx_of(*docs: dict[str, Any]) -> MeshContext:
    return mesh_context([resource_from_dict(d) for d in docs])


def gen(
    ctx: MeshContext,
    name: str,
    shared: SharedResources | None = None,
    token_path: str = "/token",
) -> ResourceSet:
    proxy = build_proxy(ctx, ctx.dataplanes[name], DataplaneMetadata(9901, token_path))
    if shared is None:
        shared = SharedResources(ctx.name, settings=SETTINGS)
    return generate(ctx, proxy, shared)


def _plain(resources: ResourceSet, type_url: str, name: str) -> dict[str, Any]:
    resource = resources.get(type_url, name)
    assert resource is not None, f"no {type_url.rsplit('.', 1)[-1]} {name!r}"
    plain: dict[str, Any] = json_format.MessageToDict(resource.message)
    return plain


def listener(resources: ResourceSet, name: str) -> dict[str, Any]:
    return _plain(resources, LISTENER, name)


def cluster(resources: ResourceSet, name: str) -> dict[str, Any]:
    return _plain(resources, CLUSTER, name)
