"""xDS metrics: Kuma's series names in the exposition, summaries with quantiles."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.registry import DuplicateTimeseries

from kuma.xds.core import CLUSTER
from kuma.xds.metrics import KumaSummary, XdsMetrics


def exposition(registry: CollectorRegistry) -> list[str]:
    return [
        line for line in generate_latest(registry).decode().splitlines() if not line.startswith("#")
    ]


def test_series_have_kumas_names() -> None:
    registry = CollectorRegistry()
    metrics = XdsMetrics(registry)
    metrics.requests_received.inc(CLUSTER, "ACK")
    metrics.requests_received.inc(CLUSTER, "ACK")
    metrics.requests_received.inc(CLUSTER, "NACK")
    metrics.responses_sent.inc(CLUSTER)
    metrics.streams_active.inc()
    metrics.observe_generation(0.012)  # seconds in, milliseconds recorded (Kuma's unit)
    lines = exposition(registry)
    assert f'xds_requests_received{{confirmation="ACK",type_url="{CLUSTER}"}} 2.0' in lines
    assert f'xds_requests_received{{confirmation="NACK",type_url="{CLUSTER}"}} 1.0' in lines
    assert f'xds_responses_sent{{type_url="{CLUSTER}"}} 1.0' in lines
    assert "xds_streams_active 1.0" in lines
    assert "xds_generation_count 1.0" in lines
    assert 'xds_generation{quantile="0.99"} 12.0' in lines
    assert "xds_generation_errors 0.0" in lines  # present before the first error, like Go's
    metrics.count_generation_error()
    assert "xds_generation_errors 1.0" in exposition(registry)
    assert not [line for line in lines if "_total" in line or "_created" in line]


def test_each_registry_is_separate_and_names_are_not_registered_twice() -> None:
    a, b = CollectorRegistry(), CollectorRegistry()
    XdsMetrics(a).responses_sent.inc(CLUSTER)
    XdsMetrics(b)
    assert f'xds_responses_sent{{type_url="{CLUSTER}"}} 1.0' not in exposition(b)
    with pytest.raises(DuplicateTimeseries):
        XdsMetrics(a)


def test_summary_quantiles_cover_a_sliding_window() -> None:
    now = [0.0]
    summary = KumaSummary("x", "help", max_age=60, clock=lambda: now[0])
    assert math.isnan(summary.quantile(0.5))
    for value in range(1, 101):  # 1..100
        summary.observe(float(value))
    assert summary.quantile(0.5) == 50.0
    assert summary.quantile(0.9) == 90.0
    assert summary.quantile(0.99) == 99.0
    now[0] = 61.0
    summary.observe(1000.0)
    assert summary.quantile(0.5) == 1000.0  # older observations left the window
    assert summary.count == 101  # count and sum cover everything
    assert summary.sum == 5050.0 + 1000.0


def test_counter_labels_are_checked() -> None:
    metrics = XdsMetrics(CollectorRegistry())
    with pytest.raises(ValueError, match="takes labels"):
        metrics.requests_received.inc(CLUSTER)
    with pytest.raises(ValueError, match="only go up"):
        metrics.responses_sent.inc(CLUSTER, amount=-1)
