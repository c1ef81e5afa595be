"""ProxyTemplate: imported profiles, raw Envoy resources and modifications (Kuma's
ProxyTemplateGenerator and `pkg/xds/generator/modifications`).

For a dataplane, the most specific ProxyTemplate (or Kuma's default, which imports
`default-proxy`) is turned into resources in three steps:

1. `conf.imports`: each profile's generators run (see `PROFILES` in the package);
2. `conf.resources`: each raw resource, Envoy v3 YAML or JSON with an `@type`, is parsed into
   its message (origin `proxy-template-raw`). Kuma 0.7.3 users wrote v2 top-level types; their
   v3 successors are used instead (`envoy.api.v2.Cluster` -> `envoy.config.cluster.v3.Cluster`),
   but every field must exist in v3;
3. `conf.modifications`, in order: `cluster` / `listener` (add, remove, patch, matched by
   origin and name), `networkFilter` / `httpFilter` (addFirst, addLast, addBefore, addAfter,
   remove, patch, on every filter chain of the listeners matched by origin and listener name),
   `virtualHost` (add, remove, patch, on inline route configurations of matched listeners).
   A patch merges the value into the matched message (protobuf merge: scalars replace,
   repeated fields append); a filter patch merges its `typed_config` into the filter's.

Resources handed out by SharedResources are never mutated: a modification edits a copy.
Problems raise ProxyTemplateError naming the template and the field (`conf.resources[0]...`).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import yaml
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from google.protobuf import any_pb2, json_format, symbol_database
from google.protobuf.message import Message

from kuma.model.resource import Resource
from kuma.xds.core import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, ResourceSet, XdsResource
from kuma.xds.envoy.listeners import HTTP_CONNECTION_MANAGER
from kuma.xds.generators.base import (
    ORIGIN_PROXY_TEMPLATE_MODIFICATIONS,
    ORIGIN_PROXY_TEMPLATE_RAW,
    GenerationError,
)

__all__ = [
    "DEFAULT_IMPORTS",
    "ProxyTemplateError",
    "apply_modifications",
    "check_proxy_template",
    "parse_raw_resource",
    "register_envoy_extensions",
    "template_conf",
]

DEFAULT_IMPORTS = ("default-proxy",)
"""Kuma's default ProxyTemplate: the `default-proxy` profile and nothing else."""

_V3_CLASSES: dict[str, type[Message]] = {
    CLUSTER: cluster_pb2.Cluster,
    LISTENER: listener_pb2.Listener,
    ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
    ROUTE: route_pb2.RouteConfiguration,
    SECRET: secret_pb2.Secret,
}
_PREFIX = "type.googleapis.com/"
_V2_TYPES = {
    _PREFIX + "envoy.api.v2.Cluster": CLUSTER,
    _PREFIX + "envoy.api.v2.Listener": LISTENER,
    _PREFIX + "envoy.api.v2.ClusterLoadAssignment": ENDPOINT,
    _PREFIX + "envoy.api.v2.RouteConfiguration": ROUTE,
    _PREFIX + "envoy.api.v2.auth.Secret": SECRET,
}

# Envoy extensions a raw resource or a modification may carry in a typed_config: their
# messages must be known to protobuf's default pool for JSON parsing to resolve them.
_EXTENSION_MODULES = (
    "envoy.config.accesslog.v3.accesslog_pb2",
    "envoy.config.rbac.v3.rbac_pb2",
    "envoy.config.trace.v3.zipkin_pb2",
    "envoy.config.grpc_credential.v3.file_based_metadata_pb2",
    "envoy.extensions.access_loggers.file.v3.file_pb2",
    "envoy.extensions.access_loggers.grpc.v3.als_pb2",
    "envoy.extensions.access_loggers.stream.v3.stream_pb2",
    "envoy.extensions.filters.http.buffer.v3.buffer_pb2",
    "envoy.extensions.filters.http.cors.v3.cors_pb2",
    "envoy.extensions.filters.http.ext_authz.v3.ext_authz_pb2",
    "envoy.extensions.filters.http.fault.v3.fault_pb2",
    "envoy.extensions.filters.http.grpc_stats.v3.config_pb2",
    "envoy.extensions.filters.http.grpc_web.v3.grpc_web_pb2",
    "envoy.extensions.filters.http.header_to_metadata.v3.header_to_metadata_pb2",
    "envoy.extensions.filters.http.health_check.v3.health_check_pb2",
    "envoy.extensions.filters.http.local_ratelimit.v3.local_rate_limit_pb2",
    "envoy.extensions.filters.http.lua.v3.lua_pb2",
    "envoy.extensions.filters.http.ratelimit.v3.rate_limit_pb2",
    "envoy.extensions.filters.http.rbac.v3.rbac_pb2",
    "envoy.extensions.filters.http.router.v3.router_pb2",
    "envoy.extensions.filters.listener.http_inspector.v3.http_inspector_pb2",
    "envoy.extensions.filters.listener.original_dst.v3.original_dst_pb2",
    "envoy.extensions.filters.listener.proxy_protocol.v3.proxy_protocol_pb2",
    "envoy.extensions.filters.listener.tls_inspector.v3.tls_inspector_pb2",
    "envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2",
    "envoy.extensions.filters.network.local_ratelimit.v3.local_rate_limit_pb2",
    "envoy.extensions.filters.network.rbac.v3.rbac_pb2",
    "envoy.extensions.filters.network.tcp_proxy.v3.tcp_proxy_pb2",
    "envoy.extensions.transport_sockets.tls.v3.tls_pb2",
    "envoy.extensions.upstreams.http.v3.http_protocol_options_pb2",
)
_registered = False


def register_envoy_extensions() -> None:
    global _registered
    if _registered:
        return
    for module in _EXTENSION_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:  # pragma: no cover - a leaner xds-protos
            continue
    _registered = True


class ProxyTemplateError(GenerationError):
    """A ProxyTemplate cannot be applied; the message names the template and the field."""


class _Problem(ValueError):
    pass


def _load(text: str) -> Any:
    """The first YAML (or JSON) document of `text`."""
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as e:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise _Problem(f"not YAML or JSON: {e}") from None
    return docs[0] if docs else None


def _parse_into(body: dict[str, Any], message: Message) -> None:
    register_envoy_extensions()
    try:
        json_format.ParseDict(body, message)
    except json_format.ParseError as e:
        raise _Problem(str(e)) from None


def parse_raw_resource(name: str, text: str) -> XdsResource:
    """A raw resource as an XdsResource (origin `proxy-template-raw`).

    The message's own name (`cluster_name` for a ClusterLoadAssignment) is set to `name` when
    empty, and must equal it otherwise. Raises ValueError explaining what is wrong.
    """
    body = _load(text)
    if not isinstance(body, dict):
        raise _Problem("a resource must be an object with an '@type'")
    body = dict(body)
    type_url = body.pop("@type", None)
    if not isinstance(type_url, str) or not type_url:
        raise _Problem("the resource has no '@type'")
    type_url = _V2_TYPES.get(type_url, type_url)
    cls = _V3_CLASSES.get(type_url)
    if cls is None:
        allowed = ", ".join(sorted(t.removeprefix(_PREFIX) for t in _V3_CLASSES))
        raise _Problem(f"unsupported @type {type_url!r}: expected one of {allowed}")
    message = cls()
    _parse_into(body, message)
    name_field = "cluster_name" if type_url == ENDPOINT else "name"
    own = getattr(message, name_field)
    if not own:
        setattr(message, name_field, name)
    elif own != name:
        raise _Problem(f"its {name_field} {own!r} differs from the raw resource's name {name!r}")
    return XdsResource(name, type_url, message, ORIGIN_PROXY_TEMPLATE_RAW)


def _value(text: str, cls: type[Message]) -> Any:
    body = _load(text) if text else None
    message = cls()
    if body is None:
        return message
    if not isinstance(body, dict):
        raise _Problem("the value must be an object")
    _parse_into(body, message)
    return message


def _merge_any(target: any_pb2.Any, patch: any_pb2.Any) -> None:
    if not patch.type_url:
        return
    if target.type_url and target.type_url != patch.type_url:
        raise _Problem(
            f"cannot patch a typed_config of type {target.type_url} with one of "
            f"type {patch.type_url}"
        )
    full_name = patch.type_url.rsplit("/", 1)[-1]
    try:
        cls = symbol_database.Default().GetSymbol(full_name)
    except KeyError:
        raise _Problem(f"unknown type {full_name}") from None
    merged = cls()
    if target.type_url:
        target.Unpack(merged)
    addition = cls()
    patch.Unpack(addition)
    merged.MergeFrom(addition)
    target.Pack(merged)


# -- applying modifications ---------------------------------------------------------------------


class _Editor:
    """Copy-on-write access to the messages of a ResourceSet."""

    def __init__(self, resources: ResourceSet) -> None:
        self.resources = resources
        self._owned: set[int] = set()

    def own(self, resource: XdsResource) -> Any:
        if id(resource) in self._owned:
            return resource.message
        message = resource.message
        if message is None:  # only a payload: decode it
            message = _V3_CLASSES[resource.type_url].FromString(resource.payload)
        copy = type(message)()
        copy.CopyFrom(message)
        owned = resource.with_message(copy)
        self.resources.add(owned)
        self._owned.add(id(owned))
        return copy

    def add(self, name: str, type_url: str, message: Any) -> None:
        resource = XdsResource(name, type_url, message, ORIGIN_PROXY_TEMPLATE_MODIFICATIONS)
        self.resources.add(resource)
        self._owned.add(id(resource))


def _matches(match: Any, resource: XdsResource, name_field: str = "name") -> bool:
    if match is None:
        return True
    name = getattr(match, name_field, "")
    if name and name != resource.name:
        return False
    return not (match.origin and match.origin != resource.origin)


def _resource_modification(editor: _Editor, type_url: str, mod: Any, cls: type[Message]) -> None:
    if mod.operation == "add":
        message = _value(mod.value, cls)
        name = getattr(message, "name", "")
        if not name:
            raise _Problem("the value has no name")
        editor.add(name, type_url, message)
    elif mod.operation == "remove":
        for resource in list(editor.resources.of_type(type_url)):
            if _matches(mod.match, resource):
                editor.resources.remove(type_url, resource.name)
    elif mod.operation == "patch":
        patch = _value(mod.value, cls)
        for resource in list(editor.resources.of_type(type_url)):
            if _matches(mod.match, resource):
                editor.own(resource).MergeFrom(patch)
    else:
        raise _Problem(f"invalid operation: {mod.operation}")


def _filter_index(filters: Sequence[Any], name: str) -> int:
    for i, f in enumerate(filters):
        if f.name == name:
            return i
    return -1


def _edit_filters(filters: Any, mod: Any, new: Any, cls: type[Message]) -> bool:
    """Apply a filter modification to a repeated field of filters; True if it changed."""
    match_name = mod.match.name if mod.match is not None else ""
    items = list(filters)
    op = mod.operation
    if op == "addFirst":
        items.insert(0, new)
    elif op == "addLast":
        items.append(new)
    elif op in ("addBefore", "addAfter"):
        idx = _filter_index(items, match_name)
        if idx < 0:
            return False
        items.insert(idx if op == "addBefore" else idx + 1, new)
    elif op == "remove":
        kept = [f for f in items if match_name and f.name != match_name]
        if len(kept) == len(items):
            return False
        items = kept
    elif op == "patch":
        changed = False
        for f in items:
            if not match_name or f.name == match_name:
                _merge_any(f.typed_config, new.typed_config)
                changed = True
        return changed
    else:
        raise _Problem(f"invalid operation: {op}")
    copies = []
    for f in items:
        copy = cls()
        copy.CopyFrom(f)
        copies.append(copy)
    del filters[:]
    filters.extend(copies)
    return True


def _listeners(editor: _Editor, match: Any) -> Iterable[XdsResource]:
    return [
        r
        for r in list(editor.resources.of_type(LISTENER))
        if _matches(match, r, name_field="listener_name")
    ]


def _network_filter(editor: _Editor, mod: Any) -> None:
    new = _value(mod.value, listener_components_pb2.Filter)
    for resource in _listeners(editor, mod.match):
        listener = editor.own(resource)
        for chain in listener.filter_chains:
            _edit_filters(chain.filters, mod, new, listener_components_pb2.Filter)


def _each_hcm(
    editor: _Editor, match: Any, edit: Callable[[hcm_pb2.HttpConnectionManager], bool]
) -> None:
    for resource in _listeners(editor, match):
        if not any(
            f.name == HTTP_CONNECTION_MANAGER
            for chain in resource.message.filter_chains  # type: ignore[union-attr]
            for f in chain.filters
        ):
            continue
        listener = editor.own(resource)
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                if network_filter.name != HTTP_CONNECTION_MANAGER:
                    continue
                hcm = hcm_pb2.HttpConnectionManager()
                network_filter.typed_config.Unpack(hcm)
                if edit(hcm):
                    network_filter.typed_config.Pack(hcm)


def _http_filter(editor: _Editor, mod: Any) -> None:
    new = _value(mod.value, hcm_pb2.HttpFilter)
    _each_hcm(
        editor, mod.match, lambda hcm: _edit_filters(hcm.http_filters, mod, new, hcm_pb2.HttpFilter)
    )


def _virtual_host(editor: _Editor, mod: Any) -> None:
    vh_cls = route_components_pb2.VirtualHost
    new = _value(mod.value, vh_cls)
    match = mod.match
    vh_name = match.name if match is not None else ""
    rc_name = match.route_configuration_name if match is not None else ""
    if mod.operation not in ("add", "remove", "patch"):
        raise _Problem(f"invalid operation: {mod.operation}")
    origin_only = _OriginMatch(match.origin if match is not None else "")

    def edit(hcm: hcm_pb2.HttpConnectionManager) -> bool:
        if not hcm.HasField("route_config"):
            return False  # only inline route configurations
        rc = hcm.route_config
        if rc_name and rc_name != rc.name:
            return False
        if mod.operation == "add":
            rc.virtual_hosts.append(new)
            return True
        if mod.operation == "remove":
            kept = [vh for vh in rc.virtual_hosts if vh_name and vh.name != vh_name]
            copies = []
            for vh in kept:
                copy = vh_cls()
                copy.CopyFrom(vh)
                copies.append(copy)
            changed = len(copies) != len(rc.virtual_hosts)
            del rc.virtual_hosts[:]
            rc.virtual_hosts.extend(copies)
            return changed
        changed = False
        for vh in rc.virtual_hosts:
            if not vh_name or vh.name == vh_name:
                vh.MergeFrom(new)
                changed = True
        return changed

    _each_hcm(editor, origin_only, edit)


class _OriginMatch:
    """A listener match on origin only (virtual host modifications match names elsewhere)."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.listener_name = ""


def apply_modifications(resources: ResourceSet, modifications: Sequence[Any]) -> None:
    """Apply ProxyTemplate `modifications` in order to `resources` (in place, copy-on-write).

    Raises ValueError naming the modification (`modifications[2].cluster: ...`).
    """
    editor = _Editor(resources)
    for i, mod in enumerate(modifications):
        kind = ""
        try:
            if mod.cluster is not None:
                kind = "cluster"
                _resource_modification(editor, CLUSTER, mod.cluster, cluster_pb2.Cluster)
            elif mod.listener is not None:
                kind = "listener"
                _resource_modification(editor, LISTENER, mod.listener, listener_pb2.Listener)
            elif mod.network_filter is not None:
                kind = "networkFilter"
                _network_filter(editor, mod.network_filter)
            elif mod.http_filter is not None:
                kind = "httpFilter"
                _http_filter(editor, mod.http_filter)
            elif mod.virtual_host is not None:
                kind = "virtualHost"
                _virtual_host(editor, mod.virtual_host)
        except _Problem as e:
            raise _Problem(f"modifications[{i}].{kind}: {e}") from None


# -- the template -------------------------------------------------------------------------------


def template_conf(template: Resource | None) -> tuple[Sequence[str], Sequence[Any], Sequence[Any]]:
    """`(imports, raw resources, modifications)` of a ProxyTemplate (None: Kuma's default)."""
    if template is None or template.spec.conf is None:
        return DEFAULT_IMPORTS, (), ()
    conf = template.spec.conf
    return conf.imports, conf.resources, conf.modifications


def raw_resources(template: Resource, raws: Sequence[Any]) -> list[XdsResource]:
    result = []
    for i, raw in enumerate(raws):
        try:
            result.append(parse_raw_resource(raw.name, raw.resource))
        except ValueError as e:
            raise ProxyTemplateError(
                f"proxytemplate{{name={template.meta.name!r}}}: "
                f"conf.resources[{i}]{{name={raw.name!r}}}.resource: {e}"
            ) from None
    return result


def modify(template: Resource, resources: ResourceSet, modifications: Sequence[Any]) -> None:
    try:
        apply_modifications(resources, modifications)
    except ValueError as e:
        raise ProxyTemplateError(
            f"proxytemplate{{name={template.meta.name!r}}}: could not apply conf.{e}"
        ) from None


def check_proxy_template(spec: Any) -> list[tuple[str, str]]:
    """Check a ProxyTemplate spec's raw resources and modification values against Envoy's v3
    messages: `[(field path, message)]`, empty when they are all valid.

    What `kuma.model.validators.proxy_template` cannot check (it owns no Envoy classes), in its
    style: `native Envoy resource is not valid: ...` at `conf.resources[i].resource` and
    `conf.modifications[i].<kind>.value`.
    """
    problems: list[tuple[str, str]] = []
    conf = spec.conf
    if conf is None:
        return problems
    prefix = "native Envoy resource is not valid: "
    for i, raw in enumerate(conf.resources):
        if not raw.resource:
            continue
        try:
            parse_raw_resource(raw.name or "resource", raw.resource)
        except ValueError as e:
            problems.append((f"conf.resources[{i}].resource", prefix + str(e)))
    kinds: tuple[tuple[str, str, type[Message]], ...] = (
        ("cluster", "cluster", cluster_pb2.Cluster),
        ("listener", "listener", listener_pb2.Listener),
        ("network_filter", "networkFilter", listener_components_pb2.Filter),
        ("http_filter", "httpFilter", hcm_pb2.HttpFilter),
        ("virtual_host", "virtualHost", route_components_pb2.VirtualHost),
    )
    for i, mod in enumerate(conf.modifications):
        for attr, field, cls in kinds:
            sub = getattr(mod, attr)
            if sub is None or not sub.value:
                continue
            try:
                _value(sub.value, cls)
            except ValueError as e:
                problems.append((f"conf.modifications[{i}].{field}.value", prefix + str(e)))
    return problems
