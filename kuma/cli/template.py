"""`kumactl apply -v key=value`: the mustache templating Kuma applies to the input first.

Kuma 0.7.3 renders the file with the `hoisie/mustache` Go library; this module follows it:

* `{{name}}` is replaced by the value, HTML-escaped (`&`, `<`, `>`, `"`, `'` become entities,
  exactly like Go's `template.HTMLEscape`); `{{{name}}}` and `{{&name}}` insert it unescaped;
  a name nobody set renders as nothing;
* dotted variables nest: `-v a.b.c=1` makes `a` a map with `b` a map with `c` = `1`, and
  `{{a.b.c}}` looks it up step by step (Kuma's test `apply-dataplane-template-dots.yaml`);
* `{{#name}}...{{/name}}` renders its body when `name` is set (inside it, the names of a map
  value are in scope), `{{^name}}...{{/name}}` when it is not; `{{! comment }}` renders
  nothing; `{{=<% %>=}}` changes the delimiters.

Differences from Kuma, each a fix of a Kuma bug: variables sharing a prefix are merged
(`-v a.b=1 -v a.c=2` keeps both; Kuma keeps one of them at random), a value and a prefix of the
same name (`-v a=1 -v a.b=2`) is an error instead of a random pick, a malformed template is an
error instead of the library's error text becoming the document, and partials (`{{> file}}`)
are refused instead of read from disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TemplateError", "build_context", "render"]


class TemplateError(ValueError):
    """The template or the variables cannot be used; the message says where and why."""


# -- variables -----------------------------------------------------------------------------


def build_context(variables: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The mustache context of `-v` pairs: dotted keys become nested maps."""
    ctx: dict[str, Any] = {}
    for key, value in variables:
        parts = key.split(".")
        node = ctx
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                prefix = ".".join(parts[: depth + 1])
                raise TemplateError(
                    f'variable "{key}" needs "{prefix}" to be a group of variables, '
                    f'but "{prefix}" is set to a value'
                )
            node = child
        last = parts[-1]
        if isinstance(node.get(last), dict):
            raise TemplateError(
                f'variable "{key}" is set to a value, but it is also the prefix of other variables'
            )
        node[last] = value
    return ctx


# -- parsing -------------------------------------------------------------------------------


@dataclass
class _Var:
    name: str
    raw: bool


@dataclass
class _Section:
    name: str
    inverted: bool
    line: int
    elems: list[_Elem] = field(default_factory=list)


_Elem = str | _Var | _Section


class _Parser:
    def __init__(self, data: str) -> None:
        self.data = data
        self.otag = "{{"
        self.ctag = "}}"
        self.pos = 0
        self.line = 1

    def _read_until(self, token: str) -> tuple[str, bool]:
        """Text up to and including `token`; (rest, False) when it never comes."""
        i = self.data.find(token, self.pos)
        if i < 0:
            text = self.data[self.pos :]
            return text, False
        end = i + len(token)
        text = self.data[self.pos : end]
        self.line += text.count("\n")
        self.pos = end
        return text, True

    def parse(self, section: _Section | None = None) -> list[_Elem]:
        elems: list[_Elem] = []
        while True:
            text, found = self._read_until(self.otag)
            if not found:
                if section is not None:
                    raise TemplateError(
                        f"line {section.line}: Section {section.name} has no closing tag"
                    )
                elems.append(text)
                return elems
            elems.append(text[: len(text) - len(self.otag)])
            triple = self.pos < len(self.data) and self.data[self.pos] == "{"
            text, found = self._read_until(("}" if triple else "") + self.ctag)
            if not found:
                raise TemplateError(f"line {self.line}: unmatched open tag")
            tag = text[: len(text) - len(self.ctag)].strip()
            if not tag:
                raise TemplateError(f"line {self.line}: empty tag")
            kind = tag[0]
            if kind == "!":
                continue
            if kind in "#^":
                name = tag[1:].strip()
                start_line = self.line
                # the newline right after a section's opening tag is not output
                if self.data.startswith("\n", self.pos):
                    self.pos += 1
                    self.line += 1
                elif self.data.startswith("\r\n", self.pos):
                    self.pos += 2
                    self.line += 1
                child = _Section(name, kind == "^", start_line)
                child.elems = self.parse(child)
                elems.append(child)
            elif kind == "/":
                name = tag[1:].strip()
                if section is None:
                    raise TemplateError(f"line {self.line}: unmatched close tag")
                if name != section.name:
                    raise TemplateError(f"line {self.line}: interleaved closing tag: {name}")
                return elems
            elif kind == ">":
                raise TemplateError(
                    f"line {self.line}: partials ({{{{> {tag[1:].strip()}}}}}) are not supported"
                )
            elif kind == "=":
                if not tag.endswith("=") or len(tag) < 2:
                    raise TemplateError(f"line {self.line}: Invalid meta tag")
                new = tag[1:-1].strip().split(" ", 1)
                if len(new) == 2:
                    self.otag, self.ctag = new[0], new[1].strip()
            elif kind == "{":
                if tag.endswith("}"):
                    elems.append(_Var(tag[1:-1].strip(), raw=True))
            elif kind == "&":
                elems.append(_Var(tag[1:].strip(), raw=True))
            else:
                elems.append(_Var(tag, raw=False))


# -- rendering -----------------------------------------------------------------------------

_MISSING = object()


def _lookup(chain: list[Any], name: str) -> Any:
    if name == ".":
        return chain[0] if chain else _MISSING
    if "." in name:
        first, rest = name.split(".", 1)
        value = _lookup(chain, first)
        if value is _MISSING:
            return _MISSING
        return _lookup([value], rest)
    for ctx in chain:
        if isinstance(ctx, Mapping) and name in ctx:
            return ctx[name]
    return _MISSING


def _go_sprint(value: Any) -> str:
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_go_sprint(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


_HTML_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;", "\0": "\ufffd"}
)


def _render(elems: list[_Elem], chain: list[Any], out: list[str]) -> None:
    for elem in elems:
        if isinstance(elem, str):
            out.append(elem)
        elif isinstance(elem, _Var):
            value = _lookup(chain, elem.name)
            if value is _MISSING:
                continue
            text = _go_sprint(value)
            out.append(text if elem.raw else text.translate(_HTML_ESCAPES))
        else:
            value = _lookup(chain, elem.name)
            empty = value is _MISSING or value is None or value is False or value == []
            if empty != elem.inverted:
                continue
            inner = [value, *chain] if isinstance(value, Mapping) else chain
            _render(elem.elems, inner, out)


def render(text: str, context: Mapping[str, Any]) -> str:
    """Render `text` with `context` (see the module docstring); TemplateError if malformed."""
    elems = _Parser(text).parse()
    out: list[str] = []
    _render(elems, [context], out)
    return "".join(out)
