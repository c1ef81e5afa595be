"""ProxyTemplate: selectors, imported profiles, raw Envoy resources and modifications.

Raw resources and modification values are Envoy objects written as YAML or JSON. Kuma 0.7.3
decodes them as Envoy v2 messages and runs Envoy's own field rules on them. kuma-py drives Envoy
with the v3 API, so here they are only checked for shape: a resource must be an object with an
`@type` (it is a google.protobuf.Any), a value must be an object. The deep check against Envoy's
v3 messages comes with the xDS generators, which own the Envoy message classes.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.golang import go_quote
from kuma.model.validators.selectors import SelectorsOpts, validate_selectors
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = ["AVAILABLE_PROFILES", "OPERATIONS", "validate_proxy_template"]

AVAILABLE_PROFILES = ("default-proxy",)
"""Profiles `conf.imports` may name."""

OP_ADD = "add"
OP_ADD_FIRST = "addFirst"
OP_ADD_LAST = "addLast"
OP_ADD_BEFORE = "addBefore"
OP_ADD_AFTER = "addAfter"
OP_REMOVE = "remove"
OP_PATCH = "patch"
OPERATIONS = (OP_ADD, OP_ADD_FIRST, OP_ADD_LAST, OP_ADD_BEFORE, OP_ADD_AFTER, OP_REMOVE, OP_PATCH)

_SELECTORS = SelectorsOpts(require_at_least_one_tag=True, require_service=True)
_NOT_VALID = "native Envoy resource is not valid: "
_ADD_PATCH_REMOVE = ", ".join(go_quote(op) for op in (OP_ADD, OP_PATCH, OP_REMOVE))
_FILTER_OPS = ", ".join(
    go_quote(op)
    for op in (OP_ADD_FIRST, OP_ADD_LAST, OP_ADD_BEFORE, OP_ADD_AFTER, OP_PATCH, OP_REMOVE)
)


class _Unparsable(Exception):
    pass


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array"


def _load(text: str) -> Any:
    """The first document of a YAML (or JSON) text; raises _Unparsable with Kuma-like text."""
    # (not kuma.model.yamlio: it imports the registry, which imports these validators)
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError:
        pass
    else:
        return docs[0] if docs else None
    # like Kuma: what is not YAML is read as JSON
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        if e.pos >= len(text.rstrip()):
            raise _Unparsable("unexpected EOF") from None
        raise _Unparsable(f"invalid JSON at offset {e.pos + 1}: {e.msg}") from None


def _resource_error(text: str) -> str | None:
    """Why a raw resource is not an Envoy resource (an Any with `@type`), or None."""
    try:
        value = _load(text)
    except _Unparsable as e:
        return str(e)
    if value is not None and not isinstance(value, dict):
        kind = _json_kind(value)
        return f"json: cannot unmarshal {kind} into Go value of type map[string]*json.RawMessage"
    if value is None or not isinstance(value.get("@type"), str) or not value["@type"]:
        return "Any JSON doesn't have '@type'"
    return None


def _value_error(text: str, *, patch: bool) -> str | None:
    """Why a modification value is not an Envoy object, or None. A patch may be empty."""
    try:
        value = _load(text)
    except _Unparsable as e:
        return str(e)
    if value is None:
        return None if patch else "value cannot be empty"
    if not isinstance(value, dict):
        kind = _json_kind(value)
        return f"json: cannot unmarshal {kind} into Go value of type map[string]json.RawMessage"
    return None


def _check_value(errs: Violations, path: Path, text: str, *, patch: bool = False) -> None:
    problem = _value_error(text, patch=patch)
    if problem is not None:
        errs.add(path.field("value"), _NOT_VALID + problem)


def _cluster_or_listener(errs: Violations, path: Path, mod: Any) -> None:
    if mod.operation == OP_ADD:
        if mod.match is not None:
            errs.add(path.field("match"), "cannot be defined")
        _check_value(errs, path, mod.value)
    elif mod.operation == OP_PATCH:
        _check_value(errs, path, mod.value, patch=True)
    elif mod.operation != OP_REMOVE:
        errs.add(
            path.field("operation"), f"invalid operation. Available operations: {_ADD_PATCH_REMOVE}"
        )


def _filter(errs: Violations, path: Path, mod: Any) -> None:
    match_name = mod.match.name if mod.match is not None else ""
    if mod.operation in (OP_ADD_FIRST, OP_ADD_LAST):
        _check_value(errs, path, mod.value)
    elif mod.operation in (OP_ADD_BEFORE, OP_ADD_AFTER):
        if not match_name:
            where = "before" if mod.operation == OP_ADD_BEFORE else "after"
            errs.add(
                path.field("match").field("name"),
                f"cannot be empty. You need to pick a filter {where} which this one will be added",
            )
        _check_value(errs, path, mod.value)
    elif mod.operation == OP_PATCH:
        if not match_name:
            errs.add(path.field("match").field("name"), "cannot be empty")
        _check_value(errs, path, mod.value, patch=True)
    elif mod.operation != OP_REMOVE:
        errs.add(path.field("operation"), f"invalid operation. Available operations: {_FILTER_OPS}")


def _virtual_host(
    errs: Violations, path: Path, mod: mesh_pb.ProxyTemplateModificationsVirtualHost
) -> None:
    if mod.operation == OP_ADD:
        if mod.match is not None and mod.match.name:
            errs.add(path.field("match").field("name"), "cannot be defined")
        _check_value(errs, path, mod.value)
    elif mod.operation == OP_PATCH:
        _check_value(errs, path, mod.value, patch=True)
    elif mod.operation != OP_REMOVE:
        errs.add(
            path.field("operation"), f"invalid operation. Available operations: {_ADD_PATCH_REMOVE}"
        )


def _modification(errs: Violations, path: Path, mod: mesh_pb.ProxyTemplateModifications) -> None:
    if mod.cluster is not None:
        _cluster_or_listener(errs, path.field("cluster"), mod.cluster)
    elif mod.listener is not None:
        _cluster_or_listener(errs, path.field("listener"), mod.listener)
    elif mod.network_filter is not None:
        _filter(errs, path.field("networkFilter"), mod.network_filter)
    elif mod.http_filter is not None:
        _filter(errs, path.field("httpFilter"), mod.http_filter)
    elif mod.virtual_host is not None:
        _virtual_host(errs, path.field("virtualHost"), mod.virtual_host)


def _conf(errs: Violations, conf: mesh_pb.ProxyTemplateConf) -> None:
    root = Path("conf")
    for i, profile in enumerate(conf.imports):
        path = root.field("imports").index(i)
        if not profile:
            errs.add(path, "cannot be empty")
        elif profile not in AVAILABLE_PROFILES:
            errs.add(path, f"profile not found. Available profiles: {','.join(AVAILABLE_PROFILES)}")
    for i, resource in enumerate(conf.resources):
        path = root.field("resources").index(i)
        if not resource.name:
            errs.add(path.field("name"), "cannot be empty")
        if not resource.version:
            errs.add(path.field("version"), "cannot be empty")
        if not resource.resource:
            errs.add(path.field("resource"), "cannot be empty")
        else:
            problem = _resource_error(resource.resource)
            if problem is not None:
                errs.add(path.field("resource"), _NOT_VALID + problem)
    for i, mod in enumerate(conf.modifications):
        _modification(errs, root.field("modifications").index(i), mod)


def validate_proxy_template(
    name: str, mesh: str, spec: mesh_pb.ProxyTemplate
) -> ValidationError | None:
    errs = Violations()
    # Unlike the other policies, a ProxyTemplate may have no selectors at all.
    validate_selectors(errs, Path("selectors"), spec.selectors, _SELECTORS)
    if spec.conf is not None:
        _conf(errs, spec.conf)
    return errs.error()
