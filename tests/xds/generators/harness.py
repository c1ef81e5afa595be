"""Golden-file harness: `<case>.input.yaml` (a mesh's resources) -> `<case>.golden.yaml`.

Input format:

    proxy: dp-1            # the Dataplane to generate config for
    tokenPath: /path       # optional: the dataplane token file (Envoy's node metadata)
    resources:             # REST-shaped resources of one mesh (Mesh optional: a default one)
    - type: Dataplane
      mesh: default
      name: dp-1
      networking: ...
    - type: TrafficRoute
      ...

Golden format: `resources:` sorted by type (clusters, endpoints, listeners, routes) then name,
each `{name, origin, resource}` with `resource` as Envoy's proto3 JSON plus `@type`.

Every case is generated with `SETTINGS`: the SDS server at `kuma-control-plane:5677` with the
certificate in `testdata/sds-ca.pem` (what mTLS cases put into their SDS configs).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import json_format

from kuma.model import registry
from kuma.model.resource import Resource, ResourceMeta
from kuma.model.rest import resource_from_dict
from kuma.xds.core import ALL_TYPES, DataplaneMetadata, MeshContext, ResourceSet
from kuma.xds.generators import GeneratorSettings, SharedResources, generate
from kuma.xds.topology import build_endpoints, build_proxy

TESTDATA = Path(__file__).parent / "testdata"
UPDATE = os.environ.get("UPDATE_GOLDEN_FILES", "").lower() in ("1", "true", "yes")
SDS_TARGET = "kuma-control-plane:5677"
SETTINGS = GeneratorSettings(
    sds_target=SDS_TARGET, sds_ca_pem=(TESTDATA / "sds-ca.pem").read_bytes()
)


def cases() -> list[str]:
    return sorted(p.name.removesuffix(".input.yaml") for p in TESTDATA.glob("*.input.yaml"))


def mesh_context(resources: list[Resource], mesh_name: str = "default") -> MeshContext:
    """A MeshContext the way the catalog builds one (specs validated here, like the manager)."""
    mesh: Resource | None = None
    dataplanes: dict[str, Resource] = {}
    policies: dict[str, list[Resource]] = {}
    for r in resources:
        validator = r.type.validator
        if validator is not None:
            error = validator(r.meta.name, r.meta.mesh, r.spec)
            assert error is None, f"invalid test input {r!r}: {error}"
        if r.type is registry.MESH:
            mesh = r
        elif r.type is registry.DATAPLANE:
            dataplanes[r.meta.name] = r
        else:
            policies.setdefault(r.type.name, []).append(r)
    if mesh is None:
        mesh = Resource(registry.MESH, ResourceMeta(mesh_name))
    return MeshContext(
        mesh=mesh,
        dataplanes=dataplanes,
        policies={t: tuple(sorted(ps, key=lambda p: p.meta.name)) for t, ps in policies.items()},
        endpoints=build_endpoints(dataplanes.values()),
    )


def load_case(name: str) -> tuple[MeshContext, Resource, DataplaneMetadata]:
    data = yaml.safe_load((TESTDATA / f"{name}.input.yaml").read_text())
    resources = [resource_from_dict(doc) for doc in data["resources"]]
    ctx = mesh_context(resources)
    metadata = DataplaneMetadata(admin_port=9901, dataplane_token_path=data.get("tokenPath", ""))
    return ctx, ctx.dataplanes[data["proxy"]], metadata


def generate_case(name: str, shared: SharedResources | None = None) -> ResourceSet:
    ctx, dataplane, metadata = load_case(name)
    proxy = build_proxy(ctx, dataplane, metadata)
    if shared is None:
        shared = SharedResources(ctx.name, settings=SETTINGS)
    return generate(ctx, proxy, shared)


def to_plain(resources: ResourceSet) -> dict[str, Any]:
    order = {t: i for i, t in enumerate(ALL_TYPES)}
    items = sorted(resources, key=lambda r: (order.get(r.type_url, len(order)), r.name))
    out = []
    for r in items:
        body = json_format.MessageToDict(r.message, preserving_proto_field_name=False)
        out.append({"name": r.name, "origin": r.origin, "resource": {"@type": r.type_url, **body}})
    # json round trip: plain dicts only (MessageToDict returns OrderedDicts inside Any)
    plain: dict[str, Any] = json.loads(json.dumps({"resources": out}))
    return plain


def dump(plain: dict[str, Any]) -> str:
    return yaml.safe_dump(plain, sort_keys=True, default_flow_style=False, width=100)


def golden_path(name: str) -> Path:
    return TESTDATA / f"{name}.golden.yaml"
