"""tools/bench_xds_generation stays runnable (figures are for `make bench`, not asserted)."""

from __future__ import annotations

from tools.bench_xds_generation import bench_generation


def test_bench_runs_on_a_small_mesh() -> None:
    result = bench_generation(n_dataplanes=40, n_services=10, outbounds=2)
    assert set(result) >= {"cold", "first", "warm", "meets_target"}
    for phase in ("cold", "first", "warm"):
        assert 0 < result[phase]["p50_ms"] <= result[phase]["p99_ms"] <= result[phase]["max_ms"]
    # one inbound (listener + local cluster), two outbounds (listener + cluster + endpoints)
    assert result["resources_per_dataplane"] == 2 + 2 * 3
    # shared: one cluster and one load assignment per service
    assert result["shared_entries"] == 2 * 10
