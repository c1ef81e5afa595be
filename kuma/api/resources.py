"""Generic endpoints for every resource type: list, get, put, delete.

Nothing here knows a particular type: `resource_routes()` turns each `ResourceType` of the
registry into routes (Kuma's `pkg/api-server/resource_endpoints.go`):

* global types (Mesh, Zone): `GET /<path>`, `GET|PUT|DELETE /<path>/{name}`;
* mesh-scoped types: `GET /meshes/{mesh}/<path>`, `GET|PUT|DELETE /meshes/{mesh}/<path>/{name}`
  and `GET /<path>` (every mesh).

PUT checks the request against the URL (Kuma's messages), decodes the spec strictly, then reads
the current resource: absent -> create (201), present -> update at the version read (200).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from kuma.api.body import ClientDisconnect, read_json_body
from kuma.api.errors import JsonResponse, error_response, text_response
from kuma.api.paging import next_link, parse_page, parse_query
from kuma.api.render import RenderCache, list_body
from kuma.errors import ResourceNotFoundError, ValidationError, Violation
from kuma.manager.manager import ResourceManager
from kuma.model import codec, registry
from kuma.model.resource import Resource, ResourceType
from kuma.model.rest import resource_from_dict
from kuma.model.validation import Violations
from kuma.model.validators import validate_meta

__all__ = [
    "TITLE_CREATE",
    "TITLE_DELETE",
    "TITLE_FIND",
    "TITLE_GET",
    "TITLE_LIST",
    "TITLE_PROCESS",
    "TITLE_UPDATE",
    "ApiContext",
    "ResourceEndpoints",
    "RouteSpec",
    "resource_routes",
]

TITLE_GET = "Could not retrieve a resource"
TITLE_LIST = "Could not retrieve resources"
TITLE_PROCESS = "Could not process a resource"
TITLE_FIND = "Could not find a resource"
TITLE_CREATE = "Could not create a resource"
TITLE_UPDATE = "Could not update a resource"
TITLE_DELETE = "Could not delete a resource"

NAME_MISMATCH = "name from the URL has to be the same as in body"
TYPE_MISMATCH = "type from the URL has to be the same as in body"
MESH_MISMATCH = "mesh from the URL has to be the same as in body"
BASE64_MESSAGE = "has to be valid base64 string"

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(slots=True)
class ApiContext:
    """What every endpoint of one app shares."""

    manager: ResourceManager
    public_url: str
    max_body_bytes: int
    cache: RenderCache = field(default_factory=RenderCache)


class _Methods:
    """The ASGI app of one path: picks the endpoint by method (HEAD is served as GET).

    A plain ASGI callable, so Starlette's router matches the path and the method but adds no
    per-request wrapper of its own; endpoints handle their errors themselves.
    """

    __slots__ = ("endpoints",)

    def __init__(self, endpoints: dict[str, Endpoint]) -> None:
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        endpoint = self.endpoints["GET" if method == "HEAD" else method]
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)


@dataclass(frozen=True, slots=True)
class RouteSpec:
    """One path with its endpoints by method, in registration order (CORS lists them so)."""

    path: str
    methods: dict[str, Endpoint]

    def route(self) -> Route:
        return Route(self.path, _Methods(self.methods), methods=list(self.methods))


def _empty(status: int) -> Response:
    return Response(b"", status_code=status)


class ResourceEndpoints:
    """The four operations on one resource type.

    `read_only_message`: PUT and DELETE answer 405 with this text (Kuma's read-only modes).
    `admin`: the admin server's flavour (secrets): lists are not paged, the URL checks run in
    the order name, mesh, type, and a bad base64 `data` gets Kuma's message.
    """

    def __init__(
        self,
        ctx: ApiContext,
        rtype: ResourceType,
        *,
        read_only_message: str | None = None,
        admin: bool = False,
    ) -> None:
        self.ctx = ctx
        self.rtype = rtype
        self.read_only_message = read_only_message
        self.admin = admin

    # -- helpers --------------------------------------------------------------------------------

    def _key(self, request: Request) -> tuple[str, str]:
        params = request.path_params
        return params["name"], params.get("mesh", "") if self.rtype.mesh_scoped else ""

    def _read_only(self) -> Response | None:
        if self.read_only_message is None:
            return None
        return text_response(405, self.read_only_message)

    # -- GET one --------------------------------------------------------------------------------

    async def get(self, request: Request) -> Response:
        name, mesh = self._key(request)
        try:
            resource = await self.ctx.manager.get(self.rtype, name, mesh)
        except Exception as e:
            return error_response(e, TITLE_GET)
        text = self.ctx.cache.resource(resource)
        return JsonResponse((text + "\n").encode("utf-8"))

    # -- GET list -------------------------------------------------------------------------------

    async def list_in_mesh(self, request: Request) -> Response:
        return await self._list(request, request.path_params["mesh"])

    async def list_all(self, request: Request) -> Response:
        return await self._list(request, None)

    async def _list(self, request: Request, mesh: str | None) -> Response:
        query = parse_query(request.scope["query_string"])
        try:
            if self.admin:  # Kuma's admin server lists secrets whole
                size, offset = None, None
            else:
                page = parse_page(query)
                size, offset = page.size, page.offset
            result = await self.ctx.manager.list(self.rtype, mesh, size=size, offset=offset)
        except Exception as e:
            return error_response(e, TITLE_LIST)
        render = self.ctx.cache.resource
        fragments = [render(r) for r in result.items]
        next_url = (
            None
            if self.admin
            else next_link(self.ctx.public_url, request.scope["path"], query, result.next_offset)
        )
        return JsonResponse(list_body(result.total, fragments, next_url))

    # -- PUT ------------------------------------------------------------------------------------

    def _check_request(self, name: str, mesh: str, data: Any) -> None:
        """Kuma's validateResourceRequest: the body must agree with the URL."""
        if not isinstance(data, dict):
            raise ValidationError(
                [Violation("", f"must be an object, got {codec.type_name(data)}")]
            )
        rtype = self.rtype
        errs = Violations()
        name_ok = data.get("name") == name
        type_ok = data.get("type") == rtype.name
        mesh_ok = not rtype.mesh_scoped or data.get("mesh") == mesh
        checks = (
            [
                (name_ok, "name", NAME_MISMATCH),
                (mesh_ok, "mesh", MESH_MISMATCH),
                (type_ok, "type", TYPE_MISMATCH),
            ]
            if self.admin
            else [
                (name_ok, "name", NAME_MISMATCH),
                (type_ok, "type", TYPE_MISMATCH),
                (mesh_ok, "mesh", MESH_MISMATCH),
            ]
        )
        for ok, path, message in checks:
            if not ok:
                errs.add(path, message)
        # Kuma validates the URL's name and mesh; a Mesh's mesh is its own name.
        if rtype is registry.MESH:
            meta_err = validate_meta(name, name)
        else:
            meta_err = validate_meta(name, mesh, mesh_scoped=rtype.mesh_scoped)
        if meta_err:
            errs.extend(meta_err)
        errs.raise_if_any()

    def _check_secret_data(self, data: Any) -> None:
        """Kuma reads a Secret's body first and names a bad `data` before anything else."""
        if not isinstance(data, dict) or data.get("data") is None:
            return
        try:
            codec.decode(self.rtype.spec_cls, {"data": data["data"]})
        except ValidationError:
            raise ValidationError([Violation("data", BASE64_MESSAGE)]) from None

    def _parse(self, name: str, mesh: str, data: Any) -> Resource:
        if self.admin and self.rtype is registry.SECRET:
            self._check_secret_data(data)
        self._check_request(name, mesh, data)
        return resource_from_dict(data, rtype=self.rtype)

    async def put(self, request: Request) -> Response:
        read_only = self._read_only()
        if read_only is not None:
            return read_only
        name, mesh = self._key(request)
        try:
            data = await read_json_body(request, self.ctx.max_body_bytes)
            resource = self._parse(name, mesh, data)
        except ClientDisconnect:
            return _empty(400)
        except Exception as e:
            return error_response(e, TITLE_PROCESS)
        manager = self.ctx.manager
        try:
            current = await manager.get(self.rtype, name, mesh)
        except ResourceNotFoundError:
            current = None
        except Exception as e:
            return error_response(e, TITLE_FIND)
        if current is None:
            try:
                await manager.create(resource)
            except ResourceNotFoundError as e:
                if e.type_name != self.rtype.name:  # the owner is missing (an insight's Dataplane)
                    return error_response(_missing_owner(e), TITLE_CREATE)
                return error_response(e, TITLE_CREATE)
            except Exception as e:
                return error_response(e, TITLE_CREATE)
            return _empty(201)
        resource.meta.version = current.meta.version
        try:
            await manager.update(resource)
        except Exception as e:
            return error_response(e, TITLE_UPDATE)
        return _empty(200)

    # -- DELETE ---------------------------------------------------------------------------------

    async def delete(self, request: Request) -> Response:
        read_only = self._read_only()
        if read_only is not None:
            return read_only
        name, mesh = self._key(request)
        try:
            await self.ctx.manager.delete(self.rtype, name, mesh)
        except Exception as e:
            return error_response(e, TITLE_DELETE)
        return _empty(200)

    # -- routes ---------------------------------------------------------------------------------

    def item(self) -> dict[str, Endpoint]:
        return {"PUT": self.put, "DELETE": self.delete, "GET": self.get}


def _missing_owner(e: ResourceNotFoundError) -> ValidationError:
    where = f" in mesh {e.mesh}" if e.mesh else ""
    return ValidationError(
        [Violation("name", f"{e.type_name} of name {e.name}{where} is not found")]
    )


def resource_routes(
    ctx: ApiContext,
    rtype: ResourceType,
    *,
    read_only_message: str | None = None,
    admin: bool = False,
) -> list[RouteSpec]:
    """The routes of one type, generated from its descriptor (see the module docstring)."""
    if rtype.rest_path is None:
        return []
    endpoints = ResourceEndpoints(ctx, rtype, read_only_message=read_only_message, admin=admin)
    path = rtype.rest_path
    if not rtype.mesh_scoped:
        return [
            RouteSpec(f"/{path}", {"GET": endpoints.list_all}),
            RouteSpec(f"/{path}/{{name}}", endpoints.item()),
        ]
    return [
        RouteSpec(f"/meshes/{{mesh}}/{path}", {"GET": endpoints.list_in_mesh}),
        RouteSpec(f"/meshes/{{mesh}}/{path}/{{name}}", endpoints.item()),
        RouteSpec(f"/{path}", {"GET": endpoints.list_all}),
    ]
