"""The diagnostics server of kuma-cp (`xdsServer.diagnosticsPort`, 5680).

`GET /healthy` answers 200 while the process serves at all; `GET /ready` answers 503 until the
control plane has finished starting (store open, default resources created, every listener
bound) and 200 afterwards, and 503 again once shutdown begins. Bodies are empty, as in Kuma.
`GET /metrics` serves the control plane's Prometheus metrics (Kuma 1.0 added it here).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["Readiness", "build_diagnostics_app"]

_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]  # Kuma: any method


class Readiness:
    """Whether the control plane is ready; flipped by `kuma.cp` as it starts and stops."""

    def __init__(self) -> None:
        self._ready = False

    @property
    def ready(self) -> bool:
        return self._ready

    def set(self, ready: bool = True) -> None:
        self._ready = ready


def build_diagnostics_app(
    readiness: Readiness, registry: CollectorRegistry | None = None
) -> Starlette:
    async def ready(_request: Request) -> Response:
        return Response(status_code=200 if readiness.ready else 503)

    async def healthy(_request: Request) -> Response:
        return Response(status_code=200)

    routes = [
        Route("/ready", ready, methods=_METHODS),
        Route("/healthy", healthy, methods=_METHODS),
    ]
    if registry is not None:
        metrics_registry = registry

        async def metrics(_request: Request) -> Response:
            return Response(generate_latest(metrics_registry), media_type=CONTENT_TYPE_LATEST)

        routes.append(Route("/metrics", metrics, methods=["GET"]))
    return Starlette(routes=routes)
