"""Request metrics of the REST API (Kuma 1.x names, prefix `api_server`).

| name | type | labels |
|---|---|---|
| `api_server_http_request_duration_seconds` | histogram | `code`, `handler`, `method` |
| `api_server_http_response_size_bytes` | histogram | `code`, `handler`, `method` |
| `api_server_http_requests_inflight` | gauge | |

`handler` is the route template (`/meshes/{mesh}/dataplanes/{name}`), never the raw path, so a
scan of random URLs cannot blow up the number of series: requests no route matched are counted
under `handler="unmatched"`. Kuma's go-http-metrics also carries an always-empty `service`
label; kuma-py leaves it out.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ApiMetrics", "ApiMetricsMiddleware"]

_SIZE_BUCKETS = (100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0)


class ApiMetrics:
    """The API's metric families, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "api_server_http_request_duration_seconds",
            "The latency of the HTTP requests.",
            ("code", "handler", "method"),
            registry=registry,
        )
        self.size = Histogram(
            "api_server_http_response_size_bytes",
            "The size of the HTTP responses.",
            ("code", "handler", "method"),
            buckets=_SIZE_BUCKETS,
            registry=registry,
        )
        self.inflight = Gauge(
            "api_server_http_requests_inflight",
            "The number of inflight requests being handled at the same time.",
            registry=registry,
        )


class ApiMetricsMiddleware:
    """ASGI middleware recording every HTTP request into `metrics`."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response started
        size = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        self.metrics.inflight.inc()
        try:
            await self.app(scope, receive, counting_send)
        finally:
            self.metrics.inflight.dec()
            route: Any = scope.get("route")  # set by starlette's router once a route matched
            handler = getattr(route, "path", None) or "unmatched"
            labels = (str(status), handler, scope["method"])
            self.metrics.duration.labels(*labels).observe(time.perf_counter() - started)
            self.metrics.size.labels(*labels).observe(size)
