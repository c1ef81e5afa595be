"""The admin server's app (127.0.0.1:5679): `build_admin_app(manager, settings)`.

Kuma 0.7.3 (`pkg/admin-server/secrets_ws.go`) serves the admin-only resource types (Secrets)
here, with the same envelope and errors as the REST API:

    GET /secrets                          every mesh, not paged
    GET /meshes/{mesh}/secrets            not paged
    GET|PUT|DELETE /meshes/{mesh}/secrets/{name}

A Secret's `data` is base64 in JSON. `POST /tokens` issues dataplane tokens (kuma/api/tokens.py)
unless `settings.dataplane_token_enabled` is False.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from kuma.api.app import K8S_READ_ONLY_MESSAGE, ROUTER_ERROR_HANDLERS, TrailingSlashMiddleware
from kuma.api.render import RenderCache
from kuma.api.resources import ApiContext, RouteSpec, resource_routes
from kuma.api.settings import AdminSettings
from kuma.api.tokens import token_route_specs
from kuma.manager.manager import ResourceManager
from kuma.model import registry

__all__ = ["build_admin_app"]


def admin_route_specs(ctx: ApiContext, settings: AdminSettings) -> list[RouteSpec]:
    specs: list[RouteSpec] = []
    message = K8S_READ_ONLY_MESSAGE if settings.read_only else None
    for rtype in registry.all_types():
        if rtype.admin_only:
            specs += resource_routes(ctx, rtype, read_only_message=message, admin=True)
    if settings.dataplane_token_enabled:
        from kuma.tokens import DataplaneTokenIssuer, signing_key_accessor

        issuer = DataplaneTokenIssuer(signing_key_accessor(ctx.manager))
        specs += token_route_specs(issuer, max_body_bytes=settings.max_body_bytes)
    return specs


def build_admin_app(manager: ResourceManager, settings: AdminSettings) -> Starlette:
    ctx = ApiContext(
        manager=manager,
        public_url="",
        max_body_bytes=settings.max_body_bytes,
        cache=RenderCache(),
    )
    app = Starlette(
        routes=[spec.route() for spec in admin_route_specs(ctx, settings)],
        middleware=[Middleware(TrailingSlashMiddleware)],
        exception_handlers=ROUTER_ERROR_HANDLERS,
    )
    app.router.redirect_slashes = False
    app.state.context = ctx
    return app
