"""Per-dataplane Envoy config generation time: topology + generators + serialisation.

A synthetic mesh of `n_dataplanes` dataplanes over `n_services` services (every tenth service
http, every tenth+1 grpc, the rest tcp; two versions per service), each dataplane with one
inbound and `outbounds` outbounds, and TrafficRoutes splitting a tenth of the services by
version. For each dataplane the timed step is what the reconciler does: `build_proxy`,
`generate`, `Snapshot.build` (which serialises and hashes every resource not already done).

* cold: a fresh SharedResources per dataplane (nothing reused, the worst case);
* first: one SharedResources for the mesh, starting empty (a control plane starting up);
* warm: the same SharedResources again (steady state: only per-proxy resources are built).

    python -m tools.bench_xds_generation [--dataplanes 1000] [--services 100] [--outbounds 3]

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
from kuma.xds.generators import SharedResources, generate
from kuma.xds.topology import build_endpoints, build_proxy

__all__ = ["bench_generation", "synthetic_mesh"]

TARGET_P99_MS = 5.0


def _protocol(service: int) -> str | None:
    return {0: "http", 1: "grpc"}.get(service % 10)


def synthetic_mesh(n_dataplanes: int, n_services: int, outbounds: int) -> MeshContext:
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
    resources = [resource_from_dict(d) for d in docs]
    dataplanes = {r.meta.name: r for r in resources if r.type is registry.DATAPLANE}
    routes = tuple(
        sorted(
            (r for r in resources if r.type is registry.TRAFFIC_ROUTE), key=lambda r: r.meta.name
        )
    )
    return MeshContext(
        mesh=Resource(registry.MESH, ResourceMeta("default")),
        dataplanes=dataplanes,
        policies={"TrafficRoute": routes},
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


def bench_generation(
    n_dataplanes: int = 1000, n_services: int = 100, outbounds: int = 3
) -> dict[str, Any]:
    """Time topology + generation + serialisation per dataplane (see the module docstring)."""
    ctx = synthetic_mesh(n_dataplanes, n_services, outbounds)
    metadata = DataplaneMetadata(admin_port=9901)
    dataplanes = list(ctx.dataplanes.values())
    clock = time.perf_counter

    def one(dp: Any, shared: SharedResources) -> tuple[float, int]:
        start = clock()
        snapshot = Snapshot.build(generate(ctx, build_proxy(ctx, dp, metadata), shared))
        elapsed = clock() - start
        return elapsed, sum(len(snapshot.of_type(t)) for t in snapshot.resources)

    result: dict[str, Any] = {
        "dataplanes": n_dataplanes,
        "services": n_services,
        "outbounds": outbounds,
    }
    gc.collect()
    gc.disable()  # keep collector pauses out of per-dataplane figures
    try:
        cold = [one(dp, SharedResources("default"))[0] for dp in dataplanes]
        shared = SharedResources("default")
        first = [one(dp, shared)[0] for dp in dataplanes]
        warm_runs = [one(dp, shared) for dp in dataplanes]
    finally:
        gc.enable()
    result["cold"] = _percentiles(cold)
    result["first"] = _percentiles(first)
    result["warm"] = _percentiles([t for t, _ in warm_runs])
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
    args = parser.parse_args()
    print(json.dumps(bench_generation(args.dataplanes, args.services, args.outbounds), indent=2))


if __name__ == "__main__":
    main()
