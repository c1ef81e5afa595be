"""Prometheus metrics of the xDS layer, under Kuma's names (Kuma 1.x, `:5680/metrics`).

    registry = prometheus_client.CollectorRegistry()
    metrics = XdsMetrics(registry)
    metrics.generation.observe(12.5)          # the reconciler: milliseconds, like Kuma
    prometheus_client.generate_latest(registry)

Kuma's Go client exports counters under their bare names (`xds_requests_received`, no `_total`)
and summaries with quantiles; Kuma's Grafana dashboards query exactly those series
(`sum(rate(xds_requests_received{confirmation="NACK"}[1m]))`, `xds_generation{quantile="0.99"}`).
prometheus-client's own Counter always appends `_total` and its Summary has no quantiles, so the
counters and summaries here are small collectors that keep Kuma's series names: counters are
exposed as untyped samples (Prometheus' `rate()` works on them the same), summaries as a
`summary` family with quantiles 0.5, 0.9 and 0.99 over a 10-minute sliding window (Kuma's
`DefaultObjectives` and Go's default max age). Durations are observed in milliseconds, as Kuma
does.

| name | labels | what |
|---|---|---|
| `xds_requests_received` | `type_url`, `confirmation` = ACK or NACK | Envoy's answers to responses |
| `xds_responses_sent` | `type_url` | DiscoveryResponses sent |
| `xds_streams_active` | | open ADS streams |
| `xds_delivery` | | ms from a version becoming current for a stream to Envoy's ACK/NACK |
| `xds_generation` | | ms to generate one proxy's snapshot (observed by the reconciler) |
| `xds_generation_errors` | | snapshot generations that failed (counted by the reconciler) |
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["DEFAULT_QUANTILES", "KumaCounter", "KumaSummary", "XdsMetrics"]

DEFAULT_QUANTILES = (0.5, 0.9, 0.99)
"""Kuma's `metrics.DefaultObjectives` quantiles."""


def _fmt(value: float) -> str:
    return repr(value) if not value.is_integer() else str(value)


class KumaCounter(Collector):
    """A monotonically increasing count per label values, exported as `name{labels} value`."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def inc(self, *labelvalues: str, amount: float = 1.0) -> None:
        if len(labelvalues) != len(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labelvalues}")
        if amount < 0:
            raise ValueError("counters only go up")
        with self._lock:
            self._values[labelvalues] = self._values.get(labelvalues, 0.0) + amount

    def value(self, *labelvalues: str) -> float:
        with self._lock:
            return self._values.get(labelvalues, 0.0)

    def describe(self) -> Iterable[Metric]:
        return [Metric(self.name, self.documentation, "unknown")]

    def collect(self) -> Iterable[Metric]:
        metric = Metric(self.name, self.documentation, "unknown")
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.labelnames:
            items = [((), 0.0)]  # an unlabelled counter exists from the start, like Go's
        for labelvalues, value in items:
            metric.add_sample(
                self.name, dict(zip(self.labelnames, labelvalues, strict=True)), value
            )
        return [metric]


class KumaSummary(Collector):
    """Observations summarised as `name{quantile=...}`, `name_sum` and `name_count`.

    Quantiles are computed over the observations of the last `max_age` seconds (at most
    `max_samples` of them are kept); `_sum` and `_count` cover the whole process lifetime.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        *,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        max_age: float = 600.0,
        max_samples: int = 100_000,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if any(not 0.0 <= q <= 1.0 for q in quantiles):
            raise ValueError("quantiles must be within [0, 1]")
        self.name = name
        self.documentation = documentation
        self.quantiles = tuple(quantiles)
        self._max_age = max_age
        self._clock = clock
        self._window: deque[tuple[float, float]] = deque(maxlen=max_samples)
        self._sum = 0.0
        self._count = 0
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def observe(self, value: float) -> None:
        with self._lock:
            self._sum += value
            self._count += 1
            self._window.append((self._clock(), value))

    @property
    def count(self) -> int:
        return self._count

    @property
    def sum(self) -> float:
        return self._sum

    def quantile(self, q: float) -> float:
        """The q-quantile (nearest rank) of the window; NaN when it is empty."""
        with self._lock:
            values = self._recent()
        return self._rank(sorted(values), q)

    def _recent(self) -> list[float]:
        horizon = self._clock() - self._max_age
        while self._window and self._window[0][0] < horizon:
            self._window.popleft()
        return [v for _, v in self._window]

    @staticmethod
    def _rank(ordered: list[float], q: float) -> float:
        if not ordered:
            return math.nan
        index = max(0, math.ceil(q * len(ordered)) - 1)
        return ordered[min(index, len(ordered) - 1)]

    def describe(self) -> Iterable[Metric]:
        return [Metric(self.name, self.documentation, "summary")]

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            ordered = sorted(self._recent())
            total, count = self._sum, self._count
        metric = Metric(self.name, self.documentation, "summary")
        for q in self.quantiles:
            metric.add_sample(self.name, {"quantile": _fmt(q)}, self._rank(ordered, q))
        metric.add_sample(self.name + "_sum", {}, total)
        metric.add_sample(self.name + "_count", {}, float(count))
        return [metric]


class XdsMetrics:
    """The xDS layer's metrics, registered on `registry` (never the global one by default, so
    every control plane instance and every test has its own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests_received = KumaCounter(
            "xds_requests_received",
            "Number of confirmations requests from a client",
            ("type_url", "confirmation"),
            registry=registry,
        )
        self.responses_sent = KumaCounter(
            "xds_responses_sent",
            "Number of responses sent by the server to a client",
            ("type_url",),
            registry=registry,
        )
        self.streams_active = Gauge(
            "xds_streams_active",
            "Number of active connections between a server and a client",
            registry=registry,
        )
        self.delivery = KumaSummary(
            "xds_delivery",
            "Summary of config delivery including a response (ACK/NACK) from the client",
            registry=registry,
        )
        self.generation = KumaSummary(
            "xds_generation", "Summary of XDS Snapshot generation", registry=registry
        )
        self.generation_errors = KumaCounter(
            "xds_generation_errors", "Counter of errors during XDS generation", registry=registry
        )

    def observe_generation(self, seconds: float) -> None:
        """Reconciler hook (`Reconciler(observe=...)` passes seconds; Kuma records ms)."""
        self.generation.observe(seconds * 1000.0)

    def count_generation_error(self) -> None:
        """Reconciler hook (`Reconciler(on_error=...)`)."""
        self.generation_errors.inc()
