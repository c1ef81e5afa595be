"""Per-dataplane Envoy config generation time: topology + generators + serialisation.

A synthetic mesh of `n_dataplanes` dataplanes over `n_services` services (every tenth service
http, every tenth+1 grpc, the rest tcp; two versions per service), each dataplane with one
inbound and `outbounds` outbounds, and TrafficRoutes splitting a tenth of the services by
version. For each dataplane the timed step is what the reconciler does: `build_proxy`,
`generate`, `Snapshot.build` (which serialises and hashes every resource not already done).

* cold: a fresh SharedResources per dataplane (nothing reused, the worst case);
* first: one SharedResources for the mesh, starting empty (a control plane starting up);
* warm: the same SharedResources again (steady state: only per-proxy resources are built).

With `--policies`, the mesh has mTLS on and every policy type present (a TrafficPermission,
HealthCheck, CircuitBreaker and Retry per service, FaultInjections on the http services, a
mesh-wide TrafficLog, TrafficTrace and Timeout), and one more figure is measured:

* after_permission_change: every dataplane regenerated after one TrafficPermission changed
  (the catalog publishes new TrafficPermission objects; everything else stays cached).

    python -m tools.bench_xds_generation [--dataplanes 1000] [--services 100] [--outbounds 3]
                                         [--policies]

Target: p99 <= 5 ms per dataplane, warm, at 1,000 dataplanes / 100 services.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from typing import Any

from kuma.model.rest import resource_from_dict
from kuma.xds.core import DataplaneMetadata, MeshContext, Snapshot
from kuma.xds.generators import GeneratorSettings, SharedResources, generate
from kuma.xds.topology import build_endpoints, build_proxy

__all__ = ["bench_generation", "synthetic_mesh"]

TARGET_P99_MS = 5.0
SETTINGS = GeneratorSettings(
    sds_target="kuma-control-plane:5677",
    sds_ca_pem=b"-----BEGIN CERTIFICATE-----\n" + b"A" * 900 + b"\n-----END CERTIFICATE-----\n",
)


def _protocol(service: int) -> str | None:
    return {0: "http", 1: "grpc"}.get(service % 10)


def _policy_docs(n_services: int) -> list[dict[str, Any]]:
    star = [{"match": {"kuma.io/service": "*"}}]

    def to(s: int, **extra: str) -> list[dict[str, Any]]:
        return [{"match": {"kuma.io/service": f"svc-{s}", **extra}}]

    docs: list[dict[str, Any]] = [
        {
            "type": "TrafficLog",
            "mesh": "default",
            "name": "all",
            "sources": star,
            "destinations": star,
        },
        {"type": "TrafficTrace", "mesh": "default", "name": "all", "selectors": star},
        {
            "type": "Timeout",
            "mesh": "default",
            "name": "all",
            "sources": star,
            "destinations": star,
            "conf": {"connectTimeout": "2s", "http": {"requestTimeout": "5s"}},
        },
    ]
    for s in range(n_services):
        common = {"mesh": "default", "sources": star, "destinations": to(s)}
        docs += [
            {"type": "TrafficPermission", "name": f"tp-{s}", **common},
            {
                "type": "HealthCheck",
                "name": f"hc-{s}",
                **common,
                "conf": {
                    "interval": "10s",
                    "timeout": "1s",
                    "unhealthyThreshold": 3,
                    "healthyThreshold": 1,
                },
            },
            {
                "type": "CircuitBreaker",
                "name": f"cb-{s}",
                **common,
                "conf": {"detectors": {"totalErrors": {"consecutive": 5}}},
            },
            {
                "type": "Retry",
                "name": f"retry-{s}",
                **common,
                "conf": {"http": {"numRetries": 3}, "tcp": {"maxConnectAttempts": 2}},
            },
        ]
        if _protocol(s) == "http":
            http = {"kuma.io/protocol": "http"}
            docs.append(
                {
                    "type": "FaultInjection",
                    "mesh": "default",
                    "name": f"fi-{s}",
                    "sources": [{"match": {"kuma.io/service": "*", **http}}],
                    "destinations": to(s, **http),
                    "conf": {"abort": {"percentage": 1, "httpStatus": 503}},
                }
            )
    return docs


_MESH_WITH_POLICIES = {
    "type": "Mesh",
    "name": "default",
    "mtls": {"enabledBackend": "ca", "backends": [{"name": "ca", "type": "builtin"}]},
    "logging": {
        "defaultBackend": "file",
        "backends": [{"name": "file", "type": "file", "conf": {"path": "/tmp/access.log"}}],
    },
    "tracing": {
        "defaultBackend": "zipkin",
        "backends": [
            {"name": "zipkin", "type": "zipkin", "conf": {"url": "http://zipkin:9411/api/v2/spans"}}
        ],
    },
}


def synthetic_mesh(
    n_dataplanes: int, n_services: int, outbounds: int, *, policies: bool = False
) -> MeshContext:
    from kuma.model import registry
    from kuma.model.resource import Resource, ResourceMeta

    docs: list[dict[str, Any]] = []
    for i in range(n_dataplanes):
        service = i % n_services
        tags = {"kuma.io/service": f"svc-{service}", "version": f"v{i // n_services % 2 + 1}"}
        protocol = _protocol(service)
        if protocol:
            tags["kuma.io/protocol"] = protocol
        docs.append(
            {
                "type": "Dataplane",
                "mesh": "default",
                "name": f"dp-{i:05d}",
                "networking": {
                    "address": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                    "inbound": [{"port": 8080, "servicePort": 18080, "tags": tags}],
                    "outbound": [
                        {
                            "port": 20000 + k,
                            "tags": {"kuma.io/service": f"svc-{(service + 1 + k) % n_services}"},
                        }
                        for k in range(outbounds)
                    ],
                },
            }
        )
    for s in range(0, n_services, 10):
        docs.append(
            {
                "type": "TrafficRoute",
                "mesh": "default",
                "name": f"split-svc-{s}",
                "sources": [{"match": {"kuma.io/service": "*"}}],
                "destinations": [{"match": {"kuma.io/service": f"svc-{s}"}}],
                "conf": [
                    {"weight": 90, "destination": {"kuma.io/service": f"svc-{s}", "version": "v1"}},
                    {"weight": 10, "destination": {"kuma.io/service": f"svc-{s}", "version": "v2"}},
                ],
            }
        )
    if policies:
        docs += _policy_docs(n_services)
    resources = [resource_from_dict(d) for d in docs]
    dataplanes = {r.meta.name: r for r in resources if r.type is registry.DATAPLANE}
    by_type: dict[str, list[Any]] = {}
    for r in resources:
        if r.type is not registry.DATAPLANE:
            by_type.setdefault(r.type.name, []).append(r)
    mesh = Resource(registry.MESH, ResourceMeta("default"))
    if policies:
        mesh = resource_from_dict(_MESH_WITH_POLICIES)
    return MeshContext(
        mesh=mesh,
        dataplanes=dataplanes,
        policies={t: tuple(sorted(rs, key=lambda r: r.meta.name)) for t, rs in by_type.items()},
        endpoints=build_endpoints(dataplanes.values()),
    )


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(p99 * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def _with_new_permissions(ctx: MeshContext) -> MeshContext:
    """`ctx` after one TrafficPermission changed: the catalog re-lists that type (new objects)."""
    permissions = tuple(p.copy() for p in ctx.policies_of("TrafficPermission"))
    for p in permissions:
        _ = p.spec
    return MeshContext(
        mesh=ctx.mesh,
        dataplanes=ctx.dataplanes,
        policies={**ctx.policies, "TrafficPermission": permissions},
        endpoints=ctx.endpoints,
        generation=ctx.generation + 1,
    )


def bench_generation(
    n_dataplanes: int = 1000, n_services: int = 100, outbounds: int = 3, *, policies: bool = False
) -> dict[str, Any]:
    """Time topology + generation + serialisation per dataplane (see the module docstring)."""
    ctx = synthetic_mesh(n_dataplanes, n_services, outbounds, policies=policies)
    metadata = DataplaneMetadata(admin_port=9901, dataplane_token_path="/var/run/kuma/token")
    dataplanes = list(ctx.dataplanes.values())
    clock = time.perf_counter

    def one(dp: Any, shared: SharedResources, at: MeshContext = ctx) -> tuple[float, int]:
        start = clock()
        snapshot = Snapshot.build(generate(at, build_proxy(at, dp, metadata), shared))
        elapsed = clock() - start
        return elapsed, sum(len(snapshot.of_type(t)) for t in snapshot.resources)

    def fresh() -> SharedResources:
        return SharedResources("default", settings=SETTINGS)

    result: dict[str, Any] = {
        "dataplanes": n_dataplanes,
        "services": n_services,
        "outbounds": outbounds,
        "policies": policies,
    }
    gc.collect()
    gc.disable()  # keep collector pauses out of per-dataplane figures
    try:
        cold = [one(dp, fresh())[0] for dp in dataplanes]
        shared = fresh()
        first = [one(dp, shared)[0] for dp in dataplanes]
        warm_runs = [one(dp, shared) for dp in dataplanes]
        changed = None
        if policies:
            after = _with_new_permissions(ctx)
            changed = [one(dp, shared, after)[0] for dp in dataplanes]
    finally:
        gc.enable()
    result["cold"] = _percentiles(cold)
    result["first"] = _percentiles(first)
    result["warm"] = _percentiles([t for t, _ in warm_runs])
    if changed is not None:
        result["after_permission_change"] = _percentiles(changed)
    result["resources_per_dataplane"] = round(statistics.mean(n for _, n in warm_runs), 1)
    result["shared_entries"] = len(shared)
    result["target_p99_ms"] = TARGET_P99_MS
    result["meets_target"] = result["warm"]["p99_ms"] <= TARGET_P99_MS
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataplanes", type=int, default=1000)
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--outbounds", type=int, default=3)
    parser.add_argument("--policies", action="store_true", help="mTLS and every policy type")
    args = parser.parse_args()
    result = bench_generation(
        args.dataplanes, args.services, args.outbounds, policies=args.policies
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
