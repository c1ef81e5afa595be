"""`dataplanes+insights`, `zones+insights` and `/status/zones`.

Filters on `dataplanes+insights` (Kuma's `dataplane_overview_endpoints.go`):

* `tag=k:v` (repeatable): Kuma's TagSelector semantics (`*` matches any value) against each
  inbound's tags and the gateway's; values that are not exactly `k:v` are ignored;
* `gateway=true`: gateway dataplanes only; `ingress=true`: ingress dataplanes only.

Any of `tag`, `gateway`, `ingress` together with `size` or `offset` is refused with 400
`Pagination and filtering at the same time is not supported`. A filtered list covers every
dataplane of the scope (Kuma filtered only the first default page of 100) and has no `next`.
`total` is the number of matching overviews when filtering, else the number of dataplanes.
"""

from __future__ import annotations

from collections.abc import Hashable

from starlette.requests import Request
from starlette.responses import Response

from kuma.api.errors import JsonResponse, error_response
from kuma.api.paging import next_link, parse_page, parse_query
from kuma.api.render import RenderCache, dumps, list_body
from kuma.api.resources import ApiContext, RouteSpec
from kuma.errors import PaginationWithFilterError
from kuma.manager.overview import (
    DATAPLANE_OVERVIEW,
    ZONE_OVERVIEW,
    DataplaneOverview,
    ZoneOverview,
    get_dataplane_overview,
    get_zone_overview,
    list_dataplane_overviews,
    list_zone_overviews,
    parse_tag_filters,
)

__all__ = ["overview_routes", "zone_status_routes"]

TITLE_DP_OVERVIEW = "Could not retrieve a dataplane overview"
TITLE_DP_OVERVIEWS = "Could not retrieve dataplane overviews"
TITLE_ZONE_OVERVIEW = "Could not retrieve a zone overview"
TITLE_ZONE_OVERVIEWS = "Could not retrieve zone overviews"


def _dp_text(cache: RenderCache, overview: DataplaneOverview, *, single: bool) -> str:
    insight = overview.insight
    key: Hashable = (
        DATAPLANE_OVERVIEW,
        single,
        cache.resource_key(overview.dataplane),
        None if insight is None else cache.resource_key(insight),
    )
    return cache.get_or_render(key, lambda: overview.to_dict(empty_insight=single))


def _zone_text(cache: RenderCache, overview: ZoneOverview, *, single: bool) -> str:
    insight = overview.insight
    key: Hashable = (
        ZONE_OVERVIEW,
        single,
        cache.resource_key(overview.zone),
        None if insight is None else cache.resource_key(insight),
    )
    return cache.get_or_render(key, lambda: overview.to_dict(empty_insight=single))


class _Overviews:
    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def dataplane(self, request: Request) -> Response:
        params = request.path_params
        try:
            overview = await get_dataplane_overview(
                self.ctx.manager, params["name"], params["mesh"]
            )
        except Exception as e:
            return error_response(e, TITLE_DP_OVERVIEW)
        text = _dp_text(self.ctx.cache, overview, single=True)
        return JsonResponse((text + "\n").encode("utf-8"))

    async def dataplanes_in_mesh(self, request: Request) -> Response:
        return await self._dataplanes(request, request.path_params["mesh"])

    async def dataplanes_all(self, request: Request) -> Response:
        return await self._dataplanes(request, None)

    async def _dataplanes(self, request: Request, mesh: str | None) -> Response:
        query = parse_query(request.scope["query_string"])
        try:
            page = parse_page(query)
            filtering = (
                any(v != "" for v in query.all("tag"))
                or query.first("gateway") != ""
                or query.first("ingress") != ""
            )
            if filtering and page.requested:
                raise PaginationWithFilterError()
            if filtering:
                result = await list_dataplane_overviews(self.ctx.manager, mesh)
            else:
                result = await list_dataplane_overviews(
                    self.ctx.manager, mesh, size=page.size, offset=page.offset
                )
        except Exception as e:
            return error_response(e, TITLE_DP_OVERVIEWS)
        items = result.items
        total = result.total
        next_url = None
        if filtering:
            if query.first("gateway") == "true":
                items = [o for o in items if o.is_gateway()]
            if query.first("ingress") == "true":
                items = [o for o in items if o.is_ingress()]
            tags = parse_tag_filters(query.all("tag"))
            if tags:
                items = [o for o in items if o.matches_tags(tags)]
            total = len(items)
        else:
            next_url = next_link(
                self.ctx.public_url, request.scope["path"], query, result.next_offset
            )
        cache = self.ctx.cache
        fragments = [_dp_text(cache, o, single=False) for o in items]
        return JsonResponse(list_body(total, fragments, next_url))

    async def zone(self, request: Request) -> Response:
        try:
            overview = await get_zone_overview(self.ctx.manager, request.path_params["name"])
        except Exception as e:
            return error_response(e, TITLE_ZONE_OVERVIEW)
        text = _zone_text(self.ctx.cache, overview, single=True)
        return JsonResponse((text + "\n").encode("utf-8"))

    async def zones(self, request: Request) -> Response:
        query = parse_query(request.scope["query_string"])
        try:
            page = parse_page(query)
            result = await list_zone_overviews(self.ctx.manager, size=page.size, offset=page.offset)
        except Exception as e:
            return error_response(e, TITLE_ZONE_OVERVIEWS)
        cache = self.ctx.cache
        fragments = [_zone_text(cache, o, single=False) for o in result.items]
        next_url = next_link(self.ctx.public_url, request.scope["path"], query, result.next_offset)
        return JsonResponse(list_body(result.total, fragments, next_url))

    async def zone_status(self, request: Request) -> Response:
        """`[{"name", "url", "active"}]` for every zone (Kuma's `/status/zones`)."""
        try:
            result = await list_zone_overviews(self.ctx.manager)
        except Exception as e:
            return error_response(e, TITLE_ZONE_OVERVIEW)
        body = [{"name": o.name, "url": o.address(), "active": o.is_online()} for o in result.items]
        return JsonResponse(dumps(body))


def overview_routes(ctx: ApiContext) -> list[RouteSpec]:
    o = _Overviews(ctx)
    return [
        RouteSpec("/meshes/{mesh}/dataplanes+insights", {"GET": o.dataplanes_in_mesh}),
        RouteSpec("/meshes/{mesh}/dataplanes+insights/{name}", {"GET": o.dataplane}),
        RouteSpec("/dataplanes+insights", {"GET": o.dataplanes_all}),
        RouteSpec("/zones+insights", {"GET": o.zones}),
        RouteSpec("/zones+insights/{name}", {"GET": o.zone}),
    ]


def zone_status_routes(ctx: ApiContext) -> list[RouteSpec]:
    return [RouteSpec("/status/zones", {"GET": _Overviews(ctx).zone_status})]
