"""kumactl's HTTP clients for the control plane's REST API and admin server.

Everything here is synchronous httpx: kumactl makes a handful of requests per run. Like Kuma's
clients, TLS certificates of the control plane are not verified.

`RemoteStore` reads and writes resources of any type in the registry (`GET`/`PUT`/`DELETE`
on `/meshes/{mesh}/<type>/{name}`, `/meshes/{name}`, `/zones/{name}`); `list_overviews` reads
`dataplanes+insights` and `zones+insights`. Server errors in Kuma's shape become `ApiError`,
other failures `KumactlError` with Go's wording (`(<status>): <body>`,
`Get "<url>": <reason>`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import betterproto2
import httpx

from kuma.cli.errors import ApiError, Cause, KumactlError, NotFoundError
from kuma.cli.output import go_time_string
from kuma.errors import UnknownResourceTypeError, ValidationError
from kuma.model import codec, registry
from kuma.model.resource import Resource, ResourceType
from kuma.model.rest import ENVELOPE_KEYS, resource_from_dict

__all__ = [
    "API_TIMEOUT",
    "ApiClient",
    "Overview",
    "RemoteList",
    "RemoteStore",
    "item_path",
    "list_overviews",
    "list_path",
    "parse_api_error",
    "resource_output",
]

log = logging.getLogger("kumactl")

API_TIMEOUT = 60.0
"""Seconds for each request to the control plane (Kuma's kumactl uses 60 s)."""


def _q(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


def list_path(rtype: ResourceType, mesh: str) -> str:
    if rtype is registry.MESH:
        return "/meshes"
    if not rtype.mesh_scoped:
        return f"/{rtype.rest_path}"
    return f"/meshes/{_q(mesh)}/{rtype.rest_path}"


def item_path(rtype: ResourceType, mesh: str, name: str) -> str:
    return f"{list_path(rtype, mesh)}/{_q(name)}"


def _method_word(method: str) -> str:
    return method[:1].upper() + method[1:].lower()


class ApiClient:
    """Requests against one base URL; raises ApiError / KumactlError."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = API_TIMEOUT,
        cert: tuple[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            timeout=timeout, verify=False, cert=cert, transport=transport, trust_env=False
        )

    def close(self) -> None:
        self._http.close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: Any = None,
    ) -> tuple[int, bytes]:
        """(status, body). A 4xx/5xx with a Kuma error body raises ApiError."""
        url = self.url(path)
        if params:
            url += "?" + urllib.parse.urlencode(list(params))
        headers = {"Accept": "application/json"}
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        log.debug("%s %s", method, url)
        try:
            response = self._http.request(method, url, content=content, headers=headers)
        except httpx.TimeoutException:
            raise KumactlError(
                f'{_method_word(method)} "{url}": the Control Plane at {self.base_url} did not '
                f"answer within {self._http.timeout.read} seconds"
            ) from None
        except httpx.HTTPError as e:
            reason = str(e) or type(e).__name__
            raise KumactlError(
                f'{_method_word(method)} "{url}": could not connect to the Control Plane at '
                f"{self.base_url}: {reason}"
            ) from None
        status = response.status_code
        data = response.content
        if status >= 400:
            api_error = parse_api_error(status, data)
            if api_error is not None:
                raise api_error
        return status, data

    def get_json(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        status, data = self.request("GET", path, params=params)
        if status != 200:
            raise KumactlError(f"({status}): {data.decode('utf-8', 'replace')}")
        return _json(data)


def parse_api_error(status: int, data: bytes) -> ApiError | None:
    """Kuma's error body, or None when the body is something else."""
    try:
        body = json.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    title, details = body.get("title"), body.get("details")
    if not (isinstance(title, str) and title and isinstance(details, str) and details):
        return None
    causes = []
    for c in body.get("causes") or []:
        if isinstance(c, dict):
            causes.append(Cause(str(c.get("field", "")), str(c.get("message", ""))))
    return ApiError(status, title, details, causes)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise KumactlError(f"invalid response from the Control Plane: {e}") from None


def _time(data: Mapping[str, Any], key: str) -> dt.datetime | None:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        return None
    try:
        return codec.parse_timestamp(value)
    except ValueError:
        raise KumactlError(f"invalid response from the Control Plane: {key}: {value!r}") from None


def _resource(data: Any, rtype: ResourceType) -> Resource:
    if not isinstance(data, Mapping):
        raise KumactlError("invalid response from the Control Plane: a resource is not an object")
    try:
        resource = resource_from_dict(data, rtype=rtype)
    except (ValidationError, UnknownResourceTypeError) as e:
        raise KumactlError(f"invalid response from the Control Plane: {e}") from None
    resource.meta.creation_time = _time(data, "creationTime")
    resource.meta.modification_time = _time(data, "modificationTime")
    return resource


def resource_output(resource: Resource) -> dict[str, Any]:
    """The REST shape kumactl prints: meta (`mesh` only for mesh-scoped types) then the spec."""
    out: dict[str, Any] = {"type": resource.type.name}
    if resource.type.mesh_scoped and resource.meta.mesh:
        out["mesh"] = resource.meta.mesh
    out["name"] = resource.meta.name
    out["creationTime"] = go_time_string(resource.meta.creation_time)
    out["modificationTime"] = go_time_string(resource.meta.modification_time)
    out.update(resource.spec_dict())
    return out


@dataclass
class RemoteList:
    items: list[Any]
    total: int
    next_offset: str
    """`offset` of the server's `next` link; empty on the last page."""


def _list_meta(body: Any) -> tuple[list[Any], int, str]:
    if not isinstance(body, Mapping) or not isinstance(body.get("items", []), list):
        raise KumactlError("invalid response from the Control Plane: not a list of resources")
    items = body.get("items") or []
    total = body.get("total") or 0
    next_offset = ""
    next_url = body.get("next")
    if isinstance(next_url, str) and next_url:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(next_url).query)
        next_offset = (query.get("offset") or [""])[0]
    return items, int(total), next_offset


class RemoteStore:
    """Resources over REST: `get`, `list`, `put` (create or update), `delete`."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def get(self, rtype: ResourceType, name: str, mesh: str) -> Resource:
        """Raises NotFoundError on 404."""
        try:
            status, data = self.client.request("GET", item_path(rtype, mesh, name))
        except ApiError as e:
            if e.status == 404:
                raise NotFoundError(e.status, e.message) from None
            raise
        if status == 404:
            raise NotFoundError(status, data.decode("utf-8", "replace"))
        if status != 200:
            raise KumactlError(f"({status}): {data.decode('utf-8', 'replace')}")
        return _resource(_json(data), rtype)

    def list(
        self, rtype: ResourceType, mesh: str, *, size: int = 0, offset: str = ""
    ) -> RemoteList:
        params: list[tuple[str, str]] = []
        if offset:
            params.append(("offset", offset))
        if size:
            params.append(("size", str(size)))
        body = self.client.get_json(list_path(rtype, mesh), params)
        items, total, next_offset = _list_meta(body)
        return RemoteList([_resource(i, rtype) for i in items], total, next_offset)

    def put(self, resource: Resource) -> None:
        rtype = resource.type
        body: dict[str, Any] = {"type": rtype.name, "name": resource.meta.name}
        if rtype.mesh_scoped:
            body["mesh"] = resource.meta.mesh
        body.update(resource.spec_dict())
        path = item_path(rtype, resource.meta.mesh, resource.meta.name)
        status, data = self.client.request("PUT", path, body=body)
        if status not in (200, 201):
            text = data.decode("utf-8", "replace")
            raise KumactlError(text if status == 405 else f"({status}): {text}")

    def delete(self, rtype: ResourceType, name: str, mesh: str) -> None:
        """Raises NotFoundError on 404."""
        try:
            status, data = self.client.request("DELETE", item_path(rtype, mesh, name))
        except ApiError as e:
            if e.status == 404:
                raise NotFoundError(e.status, e.message) from None
            raise
        text = data.decode("utf-8", "replace")
        if status == 404:
            raise NotFoundError(status, text)
        if status != 200:
            raise KumactlError(text if status == 405 else f"({status}): {text}")


@dataclass
class Overview:
    """One item of `dataplanes+insights` / `zones+insights`: meta plus a decoded spec."""

    type_name: str
    mesh: str
    name: str
    creation_time: dt.datetime | None
    modification_time: dt.datetime | None
    spec: Any

    def output(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type_name}
        if self.mesh:
            out["mesh"] = self.mesh
        out["name"] = self.name
        out["creationTime"] = go_time_string(self.creation_time)
        out["modificationTime"] = go_time_string(self.modification_time)
        out.update(codec.encode(self.spec))
        return out


def list_overviews(
    client: ApiClient,
    path: str,
    spec_cls: type[betterproto2.Message],
    params: Sequence[tuple[str, str]] = (),
) -> RemoteList:
    body = client.get_json(path, params)
    items, total, next_offset = _list_meta(body)
    out = []
    for item in items:
        if not isinstance(item, Mapping):
            raise KumactlError("invalid response from the Control Plane: an item is not an object")
        spec_data = {k: v for k, v in item.items() if k not in ENVELOPE_KEYS}
        try:
            spec = codec.decode(spec_cls, spec_data)
        except ValidationError as e:
            raise KumactlError(f"invalid response from the Control Plane: {e}") from None
        out.append(
            Overview(
                type_name=str(item.get("type", "")),
                mesh=str(item.get("mesh", "")),
                name=str(item.get("name", "")),
                creation_time=_time(item, "creationTime"),
                modification_time=_time(item, "modificationTime"),
                spec=spec,
            )
        )
    return RemoteList(out, total, next_offset)
