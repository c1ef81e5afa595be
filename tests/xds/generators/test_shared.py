"""Outputs many proxies share are built and serialised once per mesh."""

from __future__ import annotations

import dataclasses

from kuma.model.rest import resource_from_dict
from kuma.xds.core import CLUSTER, ENDPOINT, LISTENER, DataplaneMetadata, MeshContext, Snapshot
from kuma.xds.generators import SharedResources, SnapshotGenerator, generate
from kuma.xds.topology import build_endpoints, build_proxy
from tests.xds.generators.harness import mesh_context


def dataplane(name: str, address: str, service: str, outbounds: list[str], **tags: str) -> dict:
    return {
        "type": "Dataplane",
        "mesh": "default",
        "name": name,
        "networking": {
            "address": address,
            "inbound": [{"port": 8080, "tags": {"kuma.io/service": service, **tags}}],
            "outbound": [
                {"port": 10000 + i, "tags": {"kuma.io/service": s}} for i, s in enumerate(outbounds)
            ],
        },
    }


def mesh() -> MeshContext:
    docs = [
        dataplane("web-1", "10.0.0.1", "web", ["backend", "db"]),
        dataplane("web-2", "10.0.0.2", "web", ["backend", "db"]),
        dataplane("backend-1", "10.0.1.1", "backend", ["db"], version="v1"),
        dataplane("db-1", "10.0.2.1", "db", []),
    ]
    return mesh_context([resource_from_dict(d) for d in docs])


def test_two_proxies_share_the_same_cluster_and_load_assignment_objects() -> None:
    ctx = mesh()
    shared = SharedResources("default")
    web1 = generate(ctx, build_proxy(ctx, ctx.dataplanes["web-1"]), shared)
    web2 = generate(ctx, build_proxy(ctx, ctx.dataplanes["web-2"]), shared)
    backend1 = generate(ctx, build_proxy(ctx, ctx.dataplanes["backend-1"]), shared)

    for type_url, name in [(ENDPOINT, "backend"), (CLUSTER, "backend"), (ENDPOINT, "db")]:
        first = web1.get(type_url, name)
        assert first is not None
        assert web2.get(type_url, name) is first
    assert backend1.get(ENDPOINT, "db") is web1.get(ENDPOINT, "db")
    # ... while per-proxy resources are their own
    assert web1.get(LISTENER, "inbound:10.0.0.1:8080") is not None
    assert web2.get(LISTENER, "inbound:10.0.0.1:8080") is None
    # built once: 2 load assignments + 2 clusters, every other request a hit
    assert shared.misses == 4
    assert shared.hits == 2 * 2 + 2


def test_without_shared_resources_nothing_is_shared() -> None:
    ctx = mesh()
    web1 = generate(ctx, build_proxy(ctx, ctx.dataplanes["web-1"]))
    web2 = generate(ctx, build_proxy(ctx, ctx.dataplanes["web-2"]))
    one, two = web1.get(ENDPOINT, "backend"), web2.get(ENDPOINT, "backend")
    assert one is not None
    assert two is not None
    assert one is not two
    assert one.payload == two.payload


def test_changed_endpoints_change_only_that_services_load_assignment() -> None:
    ctx = mesh()
    generator = SnapshotGenerator()
    meta = DataplaneMetadata()
    before = generator(ctx, ctx.dataplanes["web-1"], meta)

    # backend-2 appears: the catalog replaces backend's tuple and keeps db's tuple object.
    backend2 = resource_from_dict(dataplane("backend-2", "10.0.1.2", "backend", [], version="v2"))
    dataplanes = {**ctx.dataplanes, "backend-2": backend2}
    endpoints = dict(ctx.endpoints)
    endpoints["backend"] = build_endpoints(dataplanes.values())["backend"]
    changed = dataclasses.replace(ctx, dataplanes=dataplanes, endpoints=endpoints)
    after = generator(changed, changed.dataplanes["web-1"], meta)

    def digest(snapshot: Snapshot, type_url: str, name: str) -> bytes:
        return snapshot.of_type(type_url)[name].digest

    assert digest(before, ENDPOINT, "backend") != digest(after, ENDPOINT, "backend")
    assert after.of_type(ENDPOINT)["db"] is before.of_type(ENDPOINT)["db"]
    assert after.of_type(CLUSTER)["backend"] is before.of_type(CLUSTER)["backend"]
    for type_url in (CLUSTER, LISTENER):
        assert before.version(type_url) == after.version(type_url)
    assert before.version(ENDPOINT) != after.version(ENDPOINT)
    addresses = [
        e.endpoint.address.socket_address.address
        for e in after.of_type(ENDPOINT)["backend"].message.endpoints[0].lb_endpoints
    ]
    assert addresses == ["10.0.1.1", "10.0.1.2"]


def test_an_equal_but_new_endpoint_tuple_rebuilds_with_the_same_digest() -> None:
    ctx = mesh()
    shared = SharedResources("default")
    proxy = build_proxy(ctx, ctx.dataplanes["web-1"])
    first = generate(ctx, proxy, shared).get(ENDPOINT, "backend")
    copied = dataclasses.replace(
        ctx, endpoints={s: tuple(e for e in eps) for s, eps in ctx.endpoints.items()}
    )
    second = generate(copied, build_proxy(copied, copied.dataplanes["web-1"]), shared).get(
        ENDPOINT, "backend"
    )
    assert first is not None
    assert second is not None
    assert second is not first
    assert second.digest == first.digest


def test_snapshot_generator_keeps_one_shared_cache_per_mesh() -> None:
    ctx = mesh()
    other_mesh = resource_from_dict({"type": "Mesh", "name": "other"})
    other = dataclasses.replace(ctx, mesh=other_mesh)
    generator = SnapshotGenerator()
    a = generator(ctx, ctx.dataplanes["web-1"], DataplaneMetadata())
    b = generator(other, other.dataplanes["web-1"], DataplaneMetadata())
    assert a.of_type(ENDPOINT)["backend"] is not b.of_type(ENDPOINT)["backend"]
    assert generator.shared("default") is not generator.shared("other")
    generator.forget("other")
    assert len(generator.shared("other")) == 0


def test_prune_drops_load_assignments_of_services_that_are_gone() -> None:
    ctx = mesh()
    generator = SnapshotGenerator()
    first = generator(ctx, ctx.dataplanes["web-1"], DataplaneMetadata())
    endpoints = {s: eps for s, eps in ctx.endpoints.items() if s != "db"}
    without_db = dataclasses.replace(ctx, endpoints=endpoints)
    generator.prune(without_db)
    again = generator(ctx, ctx.dataplanes["web-1"], DataplaneMetadata())
    assert again.of_type(ENDPOINT)["backend"] is first.of_type(ENDPOINT)["backend"]
    assert again.of_type(ENDPOINT)["db"] is not first.of_type(ENDPOINT)["db"]
