"""YAML in and out, the way Kuma reads and prints it.

Loading is YAML 1.1 through PyYAML's safe loader, except that timestamps stay strings and
non-string keys become strings (Kuma converts YAML to JSON before parsing). Dumping sorts keys
like kumactl's `-o yaml`.
"""

from __future__ import annotations

from typing import Any

import yaml

from kuma.model.resource import Resource
from kuma.model.rest import resource_from_dict, resource_to_dict

__all__ = ["dump_yaml", "load_documents", "load_resources"]


class _Loader(yaml.SafeLoader):
    pass


# Keep `2020-01-01` and friends as strings: every Kuma field that holds a time is a string.
_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _jsonish(value: Any) -> Any:
    if isinstance(value, dict):
        return {k if isinstance(k, str) else _key(k): _jsonish(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonish(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _key(k: Any) -> str:
    if isinstance(k, bool):
        return "true" if k else "false"
    if k is None:
        return "null"
    return str(k)


def load_documents(text: str) -> list[Any]:
    """Every non-empty document of a multi-document YAML (or JSON) text, as plain JSON values.

    Raises yaml.YAMLError on malformed input.
    """
    return [_jsonish(doc) for doc in yaml.load_all(text, Loader=_Loader) if doc is not None]


def load_resources(text: str) -> list[Resource]:
    """Parse every document into a Resource (structure only; see kuma.model.validate)."""
    return [resource_from_dict(doc) for doc in load_documents(text)]


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(value: Any) -> str:
    """YAML with sorted keys and block style; a Resource is dumped in its REST shape."""
    if isinstance(value, Resource):
        value = resource_to_dict(value)
    return yaml.dump(
        value, Dumper=_Dumper, sort_keys=True, default_flow_style=False, allow_unicode=True
    )
