"""The REST API of kuma-cp (port 5681): `build_api_app(manager, settings)`.

Routes (Kuma 0.7.3, `pkg/api-server/server.go`):

    GET /                                  {"hostname", "tagline": "Kuma", "version"}
    GET /config                            effective control-plane config (secrets masked)
    GET /catalog                           where the other control-plane services are
    GET /status/zones                      [{"name", "url", "active"}]
    GET /meshes/{mesh}/dataplanes+insights[/{name}], GET /dataplanes+insights
    GET /zones+insights[/{name}]
    and, generated from `kuma.model.registry` for every type with a REST path that is not
    admin-only, the resource routes of `kuma.api.resources`.

Anything else is 404 (`404: Page Not Found`, text, like go-restful); a known path with another
method is 405 (`405: Method Not Allowed`). A trailing slash is ignored (`/meshes/` is `/meshes`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Receive, Scope, Send

from kuma.api.cors import CorsMiddleware, compile_allowed_domains
from kuma.api.errors import JsonResponse, text_response
from kuma.api.metrics import ApiMetrics, ApiMetricsMiddleware
from kuma.api.overviews import overview_routes, zone_status_routes
from kuma.api.render import RenderCache, dumps
from kuma.api.resources import ApiContext, RouteSpec, resource_routes
from kuma.api.settings import ApiSettings
from kuma.manager.manager import ResourceManager
from kuma.model import registry
from kuma.model.resource import ResourceType

__all__ = [
    "GLOBAL_READ_ONLY_MESSAGE",
    "K8S_READ_ONLY_MESSAGE",
    "REMOTE_READ_ONLY_MESSAGE",
    "TAGLINE",
    "build_api_app",
    "read_only_message",
]

TAGLINE = "Kuma"

K8S_READ_ONLY_MESSAGE = (
    "On Kubernetes you cannot change the state of Kuma resources with 'kumactl apply' or via the "
    "HTTP API. As a best practice, you should always be using 'kubectl apply' instead. You can "
    "still use 'kumactl' or the HTTP API to make read-only operations. On Universal this "
    "limitation does not apply.\n"
)
GLOBAL_READ_ONLY_MESSAGE = (
    "On global control plane you can not modify dataplane resources with 'kumactl apply' or via "
    "the HTTP API. You can still use 'kumactl' or the HTTP API to modify them on the remote "
    "control plane.\n"
)
REMOTE_READ_ONLY_MESSAGE = (
    "On remote control plane you can only modify dataplane resources with 'kumactl apply' or via "
    "the HTTP API. You can still use 'kumactl' or the HTTP API to modify the rest of the resource "
    "on the global control plane.\n"
)


def _mode_message(mode: str) -> str:
    if mode == "global":
        return GLOBAL_READ_ONLY_MESSAGE
    if mode == "remote":
        return REMOTE_READ_ONLY_MESSAGE
    return K8S_READ_ONLY_MESSAGE


def read_only_message(settings: ApiSettings, rtype: ResourceType) -> str | None:
    """The 405 text for PUT/DELETE of `rtype`, or None when writes are allowed.

    `read_only` makes every type read-only; besides, a global CP refuses Dataplane writes and a
    remote CP refuses writes of everything but Dataplanes (Kuma's SetupServer).
    """
    if settings.read_only:
        return _mode_message(settings.mode)
    if settings.mode == "global" and rtype is registry.DATAPLANE:
        return GLOBAL_READ_ONLY_MESSAGE
    if settings.mode == "remote" and rtype is not registry.DATAPLANE:
        return REMOTE_READ_ONLY_MESSAGE
    return None


class PathMethods:
    """Which methods each path serves, in registration order (for CORS preflights)."""

    def __init__(self, specs: Sequence[RouteSpec]) -> None:
        self._table: list[tuple[re.Pattern[str], list[str]]] = []
        for spec in specs:
            regex, _, _ = compile_path(spec.path)
            self._table.append((regex, list(spec.methods)))

    def __call__(self, path: str) -> list[str]:
        methods: list[str] = []
        for regex, route_methods in self._table:
            if regex.match(path):
                methods.extend(m for m in route_methods if m not in methods)
        return methods


class TrailingSlashMiddleware:
    """`/meshes/` is served as `/meshes` (go-restful ignores a trailing slash)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if len(path) > 1 and path.endswith("/"):
                scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)


async def _not_found(request: Request, exc: Exception) -> Response:
    return text_response(404, "404: Page Not Found")


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    return text_response(405, "405: Method Not Allowed", headers=headers)


ROUTER_ERROR_HANDLERS = {404: _not_found, 405: _method_not_allowed}


def _index_routes(settings: ApiSettings) -> list[RouteSpec]:
    index = dumps({"hostname": settings.hostname, "tagline": TAGLINE, "version": settings.version})

    async def get_index(request: Request) -> Response:
        return JsonResponse(index)

    async def get_config(request: Request) -> Response:
        return JsonResponse(dumps(settings.config_json()))

    async def get_catalog(request: Request) -> Response:
        return JsonResponse(dumps(settings.catalog))

    return [
        RouteSpec("/", {"GET": get_index}),
        RouteSpec("/config", {"GET": get_config}),
        RouteSpec("/catalog", {"GET": get_catalog}),
    ]


def api_route_specs(ctx: ApiContext, settings: ApiSettings) -> list[RouteSpec]:
    # resource routes first: Starlette tries routes in order, and these are the busy ones
    specs: list[RouteSpec] = []
    for rtype in registry.all_types():
        if rtype.rest_path is None or rtype.admin_only:
            continue
        specs += resource_routes(ctx, rtype, read_only_message=read_only_message(settings, rtype))
    specs += overview_routes(ctx)
    specs += zone_status_routes(ctx)
    specs += _index_routes(settings)
    return specs


def build_api_app(
    manager: ResourceManager, settings: ApiSettings, *, metrics: CollectorRegistry | None = None
) -> Starlette:
    """The REST API as a Starlette app. Raises ValueError for a bad CORS regex.

    With a `metrics` registry, every request is recorded there in Kuma's `api_server_*` metrics.
    """
    compile_allowed_domains(settings.cors_allowed_domains)  # fail at start, not per request
    ctx = ApiContext(
        manager=manager,
        public_url=settings.public_url,
        max_body_bytes=settings.max_body_bytes,
        cache=RenderCache(),
    )
    specs = api_route_specs(ctx, settings)
    app = Starlette(
        routes=[spec.route() for spec in specs],
        middleware=[
            *(
                [Middleware(ApiMetricsMiddleware, metrics=ApiMetrics(metrics))]
                if metrics is not None
                else []
            ),
            Middleware(TrailingSlashMiddleware),
            Middleware(
                CorsMiddleware,
                allowed_domains=settings.cors_allowed_domains,
                methods_for_path=PathMethods(specs),
            ),
        ],
        exception_handlers=ROUTER_ERROR_HANDLERS,
    )
    app.router.redirect_slashes = False
    app.state.context = ctx
    return app
