"""Loading the kuma-cp configuration the way Kuma 0.7.3 does.

1. the packaged defaults (`kuma/config/kuma-cp.defaults.yaml`);
2. the YAML file given with `-c/--config-file`: only the keys it sets change. Values are read
   with Go's yaml.v2 rules: a string setting takes any scalar's text (`port: 80` into a string
   is "80"), an int setting needs an integer, a bool a YAML bool, a duration a Go duration
   string (`1s`); `null` means the zero value. Unknown keys are logged and ignored;
3. each setting's own `KUMA_*` environment variable, parsed like Go's envconfig: ints in Go
   syntax, bools as strconv.ParseBool (`true`, `1`, `F`, ...), durations in Go syntax, lists
   comma-separated, maps `k1:v1,k2:v2`;
4. validation (`kuma.config.validate`).

Any failure raises ConfigError naming the key(s), and where the bad value came from.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Mapping
from importlib import resources
from typing import Any

import structlog
import yaml
from pydantic import ValidationError as PydanticValidationError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kuma.config.duration import parse_duration
from kuma.config.errors import ConfigError, ConfigProblem
from kuma.config.model import (
    KumaCpConfig,
    Section,
    field_key,
    iter_settings,
    leaf_kind,
    section_type,
)
from kuma.config.validate import validate_config


def _q(text: str) -> str:
    """A double-quoted string for messages, like Go's %q."""
    return json.dumps(text, ensure_ascii=False)


__all__ = ["DEFAULTS_RESOURCE", "defaults_yaml", "load_config", "parse_env_value"]

log = structlog.get_logger("kuma.config")

DEFAULTS_RESOURCE = "kuma-cp.defaults.yaml"

_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"

_ZERO: dict[str, Any] = {
    "str": "",
    "int": 0,
    "bool": False,
    "list[str]": [],
    "list[int]": [],
    "map[str]str": {},
}


def defaults_yaml() -> str:
    """The text of the packaged defaults file."""
    return resources.files("kuma.config").joinpath(DEFAULTS_RESOURCE).read_text("utf-8")


class _Reader:
    """Applies YAML documents and environment variables onto a nested dict of values."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}
        self.problems: list[ConfigProblem] = []
        self.unknown: list[str] = []
        self._constructor = SafeConstructor()

    # -- YAML -----------------------------------------------------------------------------------

    def apply_yaml(self, text: str, source: str) -> None:
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as e:
            raise ConfigError(f"Failed to parse configuration from file {_q(source)}: {e}") from e
        if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL):
            return
        if not isinstance(root, MappingNode):
            raise ConfigError(
                f"Failed to parse configuration from file {_q(source)}: "
                "the document must be a mapping of settings"
            )
        self._apply_mapping(KumaCpConfig, root, self.tree, "", source)

    def _where(self, node: Node, source: str) -> str:
        return f"{source} line {node.start_mark.line + 1}"

    def _apply_mapping(
        self,
        model: type[Section],
        node: MappingNode,
        tree: dict[str, Any],
        prefix: str,
        source: str,
    ) -> None:
        by_key = {field_key(name, f): (name, f) for name, f in model.model_fields.items()}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.problems.append(
                    ConfigProblem(
                        prefix.rstrip("."),
                        "keys must be plain strings",
                        self._where(key_node, source),
                    )
                )
                continue
            key = prefix + key_node.value
            if key_node.value not in by_key:
                self.unknown.append(key)
                continue
            name, field = by_key[key_node.value]
            sub = section_type(field)
            if sub is not None:
                if isinstance(value_node, ScalarNode) and value_node.tag == _NULL:
                    continue  # an empty section keeps its values
                if not isinstance(value_node, MappingNode):
                    self.problems.append(
                        ConfigProblem(
                            key, "must be a mapping of settings", self._where(value_node, source)
                        )
                    )
                    continue
                self._apply_mapping(sub, value_node, tree.setdefault(name, {}), key + ".", source)
                continue
            try:
                tree[name] = self._yaml_leaf(leaf_kind(field.annotation), value_node)
            except ValueError as e:
                self.problems.append(ConfigProblem(key, str(e), self._where(value_node, source)))

    def _scalar(self, node: Node) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except ConstructorError as e:
            raise ValueError(str(e.problem or e)) from e

    def _yaml_leaf(self, kind: str, node: Node) -> Any:
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return _zero(kind)
        if kind == "list[str]" or kind == "list[int]":
            if not isinstance(node, SequenceNode):
                raise ValueError("must be a list")
            elem = kind[5:-1]
            return [self._yaml_leaf(elem, item) for item in node.value]
        if kind == "map[str]str":
            if not isinstance(node, MappingNode):
                raise ValueError("must be a mapping of strings to strings")
            out: dict[str, str] = {}
            for k, v in node.value:
                if not isinstance(k, ScalarNode) or not isinstance(v, ScalarNode):
                    raise ValueError("must be a mapping of strings to strings")
                out[k.value] = "" if v.tag == _NULL else v.value
            return out
        if not isinstance(node, ScalarNode):
            raise ValueError(f"must be a single value ({_kind_name(kind)}), not a collection")
        if kind == "str":
            return node.value
        if kind == "int":
            if node.tag == _INT:
                return int(self._scalar(node))
            if node.tag == _FLOAT:
                value = self._scalar(node)
                if float(value).is_integer():
                    return int(value)
            raise ValueError(f"cannot use {_q(node.value)} as an integer")
        if kind == "bool":
            if node.tag == _BOOL:
                return bool(self._scalar(node))
            raise ValueError(f"cannot use {_q(node.value)} as a boolean (true or false)")
        if kind == "duration":
            if node.tag != _STR:
                raise ValueError(
                    f'cannot use {_q(node.value)} as a duration (Go syntax such as "1s", "500ms")'
                )
            return parse_duration(node.value)
        raise AssertionError(kind)  # pragma: no cover - leaf_kind() knows no other kinds

    # -- environment ----------------------------------------------------------------------------

    def apply_env(self, env: Mapping[str, str]) -> None:
        for info in iter_settings():
            if info.env not in env:
                continue
            try:
                value = parse_env_value(info.kind, env[info.env])
            except ValueError as e:
                self.problems.append(ConfigProblem(info.key, str(e), f"env {info.env}"))
                continue
            node = self.tree
            for name in info.path[:-1]:
                node = node.setdefault(name, {})
            node[info.path[-1]] = value


def _zero(kind: str) -> Any:
    if kind == "duration":
        return parse_duration("0")
    value = _ZERO[kind]
    return type(value)() if isinstance(value, list | dict) else value


def _kind_name(kind: str) -> str:
    return {
        "str": "a string",
        "int": "an integer",
        "bool": "a boolean",
        "duration": "a duration",
    }.get(kind, kind)


_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _go_int(text: str) -> int:
    """strconv.ParseInt(text, 0, 64): decimal, 0x/0o/0b prefixes, a leading 0 means octal;
    underscores only between digits of a prefixed number."""
    sign, body = 1, text
    if body[:1] in ("+", "-"):
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    prefix = body[:2].lower()
    if prefix in ("0x", "0o", "0b"):
        base, digits, prefixed = {"0x": 16, "0o": 8, "0b": 2}[prefix], body[2:], True
        digits = digits[1:] if digits.startswith("_") else digits
    elif len(body) > 1 and body.startswith("0"):
        base, digits, prefixed = 8, body[1:].removeprefix("_"), True
    else:
        base, digits, prefixed = 10, body, False
    if not digits or not all(c.isascii() and (c.isalnum() or c == "_") for c in digits):
        raise ValueError(text)
    if "_" in digits and not prefixed:
        raise ValueError(text)
    value = sign * int(digits, base)  # int() itself rejects "__" and a trailing "_"
    if not -(2**63) <= value < 2**63:
        raise ValueError(text)
    return value


def parse_env_value(kind: str, text: str) -> Any:
    """Parse one environment variable's text into a setting of `kind` (envconfig's rules)."""
    if kind == "str":
        return text
    if kind == "int":
        try:
            return _go_int(text)
        except ValueError:
            raise ValueError(f"cannot parse {_q(text)} as an integer") from None
    if kind == "bool":
        if text in _GO_TRUE:
            return True
        if text in _GO_FALSE:
            return False
        raise ValueError(f"cannot parse {_q(text)} as a boolean (true or false)")
    if kind == "duration":
        return parse_duration(text)
    if kind == "list[str]":
        return text.split(",") if text else []
    if kind == "list[int]":
        if not text:
            return []
        return [parse_env_value("int", item) for item in text.split(",")]
    if kind == "map[str]str":
        out: dict[str, str] = {}
        if not text:
            return out
        for item in text.split(","):
            key, sep, value = item.partition(":")
            if not sep:
                raise ValueError(f"invalid map item {_q(item)}: expected key:value")
            out[key] = value
        return out
    raise AssertionError(kind)  # pragma: no cover


@functools.cache
def _defaults_tree() -> dict[str, Any]:
    reader = _Reader()
    reader.apply_yaml(defaults_yaml(), DEFAULTS_RESOURCE)
    if reader.problems or reader.unknown:  # pragma: no cover - guarded by the tests
        raise AssertionError(f"packaged defaults are broken: {reader.problems} {reader.unknown}")
    return reader.tree


def load_config(
    path: str | None = None,
    env: Mapping[str, str] | None = None,
    *,
    validate: bool = True,
) -> KumaCpConfig:
    """Defaults, then the YAML file at `path`, then `KUMA_*` variables from `env` (default:
    `os.environ`), then validation (skipped with `validate=False`, for tools that only want
    to read values). Raises ConfigError naming every bad key."""
    reader = _Reader()
    reader.tree = copy.deepcopy(_defaults_tree())
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise ConfigError(f"Failed to access configuration file {_q(path)}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"Failed to read configuration from file {_q(path)}: {e}") from e
        reader.apply_yaml(text, path)
        if reader.unknown:
            log.warning(
                "unknown configuration keys are ignored", file=path, keys=list(reader.unknown)
            )
    else:
        log.debug("no configuration file given, using defaults and environment variables")
    reader.apply_env(os.environ if env is None else env)
    if reader.problems:
        raise ConfigError("Invalid configuration", reader.problems)
    try:
        config = KumaCpConfig.model_validate(reader.tree)
    except PydanticValidationError as e:  # pragma: no cover - values are typed by the reader
        raise ConfigError(f"Invalid configuration: {e}") from e
    problems = validate_config(config) if validate else []
    if problems:
        raise ConfigError("Invalid configuration", problems)
    return config
