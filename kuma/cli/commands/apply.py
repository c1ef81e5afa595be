"""`kumactl apply`: create or update resources from YAML.

The input (a file, stdin, or an http(s) URL) is rendered with the `-v` variables (see
`kuma.cli.template`), split into YAML documents, and every document is checked before anything
is sent: YAML syntax, `name` and `mesh` present (Mesh and Zone have no mesh), a known `type`,
a spec of the right shape, and names and meshes made of Kuma's allowed characters. Only when
all documents pass is each one upserted (`GET`, then `PUT`) in order; Secrets go to the admin
server. With `--dry-run` the resolved resources are printed instead.

Error messages are Kuma's (`YAML contains invalid resource: Mesh field cannot be empty`); when
the input has several documents they end with `(document N)`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import re
import sys
from dataclasses import dataclass
from typing import Any

import click
import httpx
import yaml

from kuma.cli.client import resource_output
from kuma.cli.context import Kumactl, kumactl_of
from kuma.cli.errors import KumactlError, NotFoundError
from kuma.cli.framework import GoFlag, KumaCommand
from kuma.cli.output import to_yaml
from kuma.cli.template import TemplateError, build_context, render
from kuma.errors import UnknownResourceTypeError, ValidationError
from kuma.model import codec, registry
from kuma.model.resource import Resource
from kuma.model.rest import resource_from_dict
from kuma.model.validators import validate_meta
from kuma.model.yamlio import load_documents

__all__ = ["URL_TIMEOUT", "Document", "apply_command", "parse_documents", "read_input"]

URL_TIMEOUT = 10.0
"""Seconds to wait for `-f http(s)://...`."""

_DOC_START = re.compile(r"^---(?=[ \t]|$)", re.M)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def read_input(file: str) -> str:
    """The text of `-f`: stdin for `` or `-`, a GET for http(s) URLs, else a file."""
    if file in ("", "-"):
        return sys.stdin.read()
    if file.startswith(("http://", "https://")):
        try:
            with httpx.Client(timeout=URL_TIMEOUT, verify=False, follow_redirects=True) as http:
                response = http.get(file)
        except httpx.HTTPError as e:
            raise KumactlError(
                f"error with GET http request: Get {json.dumps(file)}: {e or type(e).__name__}"
            ) from None
        if response.status_code != 200:
            raise KumactlError(
                f"error while retrieving URL: {file} answered {response.status_code}"
            )
        return response.text
    try:
        with open(file, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        raise KumactlError(
            f"error while reading provided file: open {file}: {(e.strerror or str(e)).lower()}"
        ) from None
    except UnicodeDecodeError as e:
        raise KumactlError(f"error while reading provided file: {file}: {e}") from None


@dataclass
class Document:
    index: int
    """1-based position in the input."""
    resource: Resource


def _chunks(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each `---`-separated part (document markers removed)."""
    out: list[tuple[int, str]] = []
    starts = [m.start() for m in _DOC_START.finditer(text)]
    bounds = [0, *starts, len(text)]
    for a, b in itertools.pairwise(bounds):
        part = text[a:b]
        if a in starts:
            part = "   " + part[3:]  # keep columns, drop the marker
        out.append((text.count("\n", 0, a), part))
    return out


def _yaml_problem(e: yaml.YAMLError, line_offset: int) -> str:
    if isinstance(e, yaml.MarkedYAMLError):
        problem = e.problem or e.context or "invalid YAML"
        mark = e.problem_mark or e.context_mark
        if mark is not None:
            return f"{problem} (line {mark.line + 1 + line_offset}, column {mark.column + 1})"
        return problem
    return str(e)


def parse_documents(text: str) -> list[Document]:
    """Every document of the (already rendered) input, checked as kumactl does."""
    docs: list[tuple[int, Any]] = []
    for line_offset, chunk in _chunks(text):
        try:
            values = load_documents(chunk)
        except yaml.YAMLError as e:
            docs.append((line_offset, _YamlFailure(_yaml_problem(e, line_offset))))
            continue
        docs.extend((line_offset, v) for v in values)
    many = len(docs) > 1
    out: list[Document] = []
    for i, (_, value) in enumerate(docs, start=1):
        suffix = f" (document {i})" if many else ""
        out.append(Document(i, _parse_one(value, suffix)))
    return out


class _YamlFailure:
    def __init__(self, message: str) -> None:
        self.message = message


def _invalid(message: str, suffix: str) -> KumactlError:
    return KumactlError(f"YAML contains invalid resource: {message}{suffix}")


def _parse_one(value: Any, suffix: str) -> Resource:
    if isinstance(value, _YamlFailure):
        raise _invalid(value.message, suffix)
    if not isinstance(value, dict):
        raise _invalid(f"a resource must be an object, got {codec.type_name(value)}", suffix)
    type_name = value.get("type")
    name = value.get("name")
    mesh = value.get("mesh")
    for key, field in (("type", type_name), ("name", name), ("mesh", mesh)):
        if field is not None and not isinstance(field, str):
            raise _invalid(f"{key}: must be a string", suffix)
    if not name:
        raise _invalid("Name field cannot be empty", suffix)
    if not mesh and type_name not in (registry.MESH.name, registry.ZONE.name):
        raise _invalid("Mesh field cannot be empty", suffix)
    try:
        resource = resource_from_dict(value)
    except UnknownResourceTypeError as e:
        known = ", ".join(t.name for t in registry.all_types() if t.rest_path)
        what = f'unknown resource type "{e.type_name}"' if e.type_name else "type cannot be empty"
        raise _invalid(f"{what}. Known types: {known}", suffix) from None
    except ValidationError as e:
        raise _invalid(str(e), suffix) from None
    meta_error = validate_meta(
        resource.meta.name, resource.meta.mesh, mesh_scoped=resource.type.mesh_scoped
    )
    if meta_error:
        raise KumactlError(f"{meta_error}{suffix}")
    return resource


def _dry_run_output(resource: Resource) -> dict[str, Any]:
    resource.meta.creation_time = _EPOCH
    resource.meta.modification_time = _EPOCH
    return resource_output(resource)


@click.pass_context
def _apply(
    ctx: click.Context, file: str, var: tuple[list[tuple[str, str]], ...], dry_run: bool
) -> None:
    kumactl = kumactl_of(ctx)
    text = read_input(file)
    pairs = [pair for group in var for pair in group]
    try:
        rendered = render(text, build_context(pairs))
    except TemplateError as e:
        raise KumactlError(f"error compiling config from template: {e}") from None
    documents = parse_documents(rendered)
    if dry_run:
        click.echo("---\n".join(to_yaml(_dry_run_output(d.resource)) for d in documents), nl=False)
        return
    for position, doc in enumerate(documents):
        try:
            _upsert(kumactl, doc.resource)
        except KumactlError as e:
            if len(documents) > 1:
                res = doc.resource
                raise KumactlError(
                    f"{e.message}\n{_progress(position, len(documents), res)}"
                ) from None
            raise


def _progress(position: int, count: int, resource: Resource) -> str:
    """Which resource of a multi-document input failed, and what happened to the others."""
    before, after = position, count - position - 1
    parts = []
    if before:
        parts.append(f"the {before} before it {'was' if before == 1 else 'were'} applied")
    if after:
        parts.append(f"the {after} after it {'was' if after == 1 else 'were'} not")
    what = f"{resource.type.name} {json.dumps(resource.meta.name)}"
    text = f"Resource {position + 1} of {count} ({what}) was not applied"
    return text + (": " + ", ".join(parts) if parts else "") + "."


def _upsert(kumactl: Kumactl, resource: Resource) -> None:
    rtype = resource.type
    store = kumactl.admin_store() if rtype.admin_only else kumactl.resource_store()
    mesh = resource.meta.name if rtype is registry.MESH else resource.meta.mesh
    # Kuma's upsert: look the resource up (any error but "not found" stops here), then PUT.
    with contextlib.suppress(NotFoundError):
        store.get(rtype, resource.meta.name, mesh)
    store.put(resource)


def apply_command() -> KumaCommand:
    return KumaCommand(
        "apply",
        short="Create or modify Kuma resources",
        callback=_apply,
        params=[
            GoFlag(["-f", "--file"], help="Path to file to apply"),
            GoFlag(
                ["-v", "--var"],
                go_type="stringToString",
                help="Variable to replace in configuration",
            ),
            GoFlag(
                ["--dry-run"],
                go_type=None,
                help="Resolve variable and prints result out without actual applying",
            ),
        ],
    )
