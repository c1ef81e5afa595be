"""An in-process fake Kubernetes API server for tests (no real API server can run here).

`FakeKube` is a starlette app served by hypercorn on a free loopback port, in a background thread
with its own event loop, so sync and async tests use it the same way::

    with FakeKube() as kube:                 # or: with fake_kube() as kube
        kube.url                             # http://127.0.0.1:<port>
        kube.write_kubeconfig(tmp_path / "kubeconfig")
        kube.create({...})                   # direct helpers (create/update/patch/delete)
                                             # run on the server's loop, through admission
        kube.objects("meshes")               # thread-safe snapshot of stored objects

What it implements, for the kinds in `KINDS` (core v1 Namespaces, Pods, Services, Secrets,
ConfigMaps, Events; apps/v1 Deployments; CRDs, webhook configurations; every Kuma CRD from
`kuma.k8s.crds.all_crds()`):

* get, list (`labelSelector` equality and set-based, `fieldSelector` on dotted paths,
  `limit`/`continue` paging), create (`generateName`, 409 AlreadyExists, 404 when the namespace
  does not exist, 422 for names that are not DNS-1123), update (PUT; 409 Conflict on a stale
  `metadata.resourceVersion`; custom resources must carry one, core kinds may update
  unconditionally; an update that changes nothing keeps the resourceVersion), patch (JSON merge
  patch, JSON patch, strategic merge patch approximated as a merge patch on core kinds, 415 on
  custom resources like the real server), delete (`propagationPolicy` Background/Foreground
  garbage-collects objects whose `ownerReferences` all point at deleted uids and drops dangling
  references from objects that keep another owner; Orphan removes the references; preconditions;
  `metadata.finalizers` hold an object with a `deletionTimestamp` until an update empties them),
  deletecollection, and deleting a Namespace deletes everything in it.
* watch (`?watch=true`): newline-delimited JSON events ADDED/MODIFIED/DELETED; without
  `resourceVersion` (or with "0") the current objects come first as ADDED; with one, events after
  it are replayed from the retained history, or an ERROR event with a 410 Expired Status when it
  is older than the history (`compact()` forgets history on demand). Label selectors apply to
  watches the way the real server applies them (an object leaving the selector is DELETED, one
  entering it is ADDED). `allowWatchBookmarks=true` sends BOOKMARKs when idle;
  `timeoutSeconds` ends the stream. `drop_watches()` ends every open watch (reconnect tests).
* one cluster-wide, monotonically increasing resourceVersion; `metadata.uid`,
  `creationTimestamp`, `generation`; errors as `kind: Status` bodies with reason and code.
* admission: Mutating- and ValidatingWebhookConfigurations are honoured for writes through
  the API (and the `create`/`update`/`patch`/`delete` helpers): webhooks whose rules, namespaceSelector
  and objectSelector match get an AdmissionReview (v1, or v1beta1 when that is all they list)
  at `clientConfig.url` (verified with `caBundle`; services cannot be reached), mutating ones
  first (their JSONPatch applied), then validating ones; a refusal is returned as the real API
  server words it (`admission webhook "<name>" denied the request: <message>`), a failed call
  is a 500 unless `failurePolicy: Ignore`. Writes to `/status`, garbage collection and
  namespace cleanup skip admission.
* server-side apply (`application/apply-patch+yaml`, `fieldManager` required) is approximated:
  it creates a missing object, else merge-patches it (no field ownership, no apply conflicts).
* pods, services, namespaces and deployments have a `/status` subresource: updates through the
  main endpoint keep the stored status. Deviation: a status given on *create* is kept, so a test
  can create a running Pod (with `status.podIP`) in one call.

TokenReviews (`POST /apis/authentication.k8s.io/v1/tokenreviews`, as kuma-cp checks sidecars):
`issue_service_account_token(namespace, name)` (or `issue_token(username, groups)` for any user)
returns a token the server then reviews as `authenticated: true` with that user; any other token
is `authenticated: false` with an error, an empty one is a 400 like the real server's. The server
itself still accepts every request (no authentication of its own clients).

Not implemented: authentication/authorization of requests, consistent list snapshots across `continue` pages
(a later page reflects the current state), pruning fields a CRD schema does not declare,
discovery beyond `/version`, `/api` and `/apis`.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import concurrent.futures
import contextlib
import copy
import datetime as dt
import json
import logging
import re
import socket
import ssl
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from kuma.k8s import crds

__all__ = [
    "KINDS",
    "ApiError",
    "FakeKube",
    "Kind",
    "LabelSelector",
    "fake_kube",
    "json_patch",
    "merge_patch",
    "serve_app",
]

T = TypeVar("T")
Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    group: str
    """"" for the core API group."""
    version: str
    plural: str
    kind: str
    namespaced: bool
    status_subresource: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """How error messages name the resource: `meshes.kuma.io`, `pods`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def custom(self) -> bool:
        return self.group == crds.GROUP

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = f"/apis/{self.api_version}" if self.group else "/api/v1"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


KINDS: tuple[Kind, ...] = (
    Kind("", "v1", "namespaces", "Namespace", False, True),
    Kind("", "v1", "pods", "Pod", True, True),
    Kind("", "v1", "services", "Service", True, True),
    Kind("", "v1", "secrets", "Secret", True),
    Kind("", "v1", "configmaps", "ConfigMap", True),
    Kind("", "v1", "events", "Event", True),
    Kind("apps", "v1", "deployments", "Deployment", True, True),
    Kind(
        "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", False
    ),
    Kind(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
    ),
    Kind(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
    ),
    *(Kind(crds.GROUP, crds.VERSION, c.plural, c.kind, c.namespaced) for c in crds.all_crds()),
)

_BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}
_BY_PLURAL = {k.plural: k for k in KINDS}


def _kind(plural_or_kind: str | Kind) -> Kind:
    if isinstance(plural_or_kind, Kind):
        return plural_or_kind
    k = _BY_PLURAL.get(plural_or_kind)
    if k is None:
        k = next((k for k in KINDS if k.kind == plural_or_kind), None)
    if k is None:
        raise KeyError(f"fake_kube: unknown kind {plural_or_kind!r}")
    return k


# ---------------------------------------------------------------------------------------------
# Errors


class ApiError(Exception):
    """A Kubernetes `Status` failure; the HTTP response of a failed request."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(kind: Kind, name: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "kind": kind.plural}
    if kind.group:
        d["group"] = kind.group
    d.update(extra)
    return d


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{kind.qualified} "{name}" not found', _details(kind, name))


def conflict(kind: Kind, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {kind.qualified} "{name}": {why}',
        _details(kind, name),
    )


STALE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def invalid(kind: Kind, name: str, field: str, value: Any, why: str) -> ApiError:
    cause = f"Invalid value: {json.dumps(value)}: {why}" if value is not None else why
    message = f'{kind.kind}.{kind.group or ""} "{name}" is invalid: {field}: {cause}'
    if not kind.group:
        message = f'{kind.kind} "{name}" is invalid: {field}: {cause}'
    return ApiError(
        422,
        "Invalid",
        message,
        _details(
            kind,
            name,
            causes=[{"reason": "FieldValueInvalid", "message": cause, "field": field}],
        ),
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


# ---------------------------------------------------------------------------------------------
# Names

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _name_problem(kind: Kind, name: str) -> str | None:
    if kind.plural == "namespaces":
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            return (
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or"
                " '-', and must start and end with an alphanumeric character"
            )
        return None
    if kind.plural == "services":
        if len(name) > 63 or not _DNS1035_LABEL.match(name):
            return (
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-',"
                " start with an alphabetic character, and end with an alphanumeric character"
            )
        return None
    if len(name) > 253:
        return "must be no more than 253 characters"
    if not _DNS1123_SUBDOMAIN.match(name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters,"
            " '-' or '.', and must start and end with an alphanumeric character"
        )
    return None


# ---------------------------------------------------------------------------------------------
# Selectors


@dataclass(frozen=True)
class _Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present  # "!"


_SET_REQ = re.compile(r"^([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)$")
_EQ_REQ = re.compile(r"^([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$")
_KEY = re.compile(r"^[A-Za-z0-9./_-]+$")


def _split_top_level(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


class LabelSelector:
    """A parsed `labelSelector` (equality- and set-based requirements, ANDed)."""

    def __init__(self, text: str | None) -> None:
        self.requirements: list[_Requirement] = []
        for part in _split_top_level(text or ""):
            if m := _SET_REQ.match(part):
                values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
                self.requirements.append(_Requirement(m.group(1), m.group(2), values))
            elif m := _EQ_REQ.match(part):
                op = "!=" if m.group(2) == "!=" else "="
                self.requirements.append(_Requirement(m.group(1), op, (m.group(3),)))
            elif part.startswith("!") and _KEY.match(part[1:].strip()):
                self.requirements.append(_Requirement(part[1:].strip(), "!"))
            elif _KEY.match(part):
                self.requirements.append(_Requirement(part, "exists"))
            else:
                raise bad_request(f"unable to parse requirement: {part!r}")

    def matches(self, obj: Obj) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        return all(r.matches(labels) for r in self.requirements)


class FieldSelector:
    """A parsed `fieldSelector`: `a.b=v`, `a.b==v`, `a.b!=v`, ANDed; paths are dotted."""

    def __init__(self, text: str | None) -> None:
        self.requirements: list[tuple[list[str], bool, str]] = []
        for part in _split_top_level(text or ""):
            m = re.match(r"^([A-Za-z0-9._-]+)\s*(==|=|!=)\s*(.*)$", part)
            if not m:
                raise bad_request(f"invalid field selector: {part!r}")
            self.requirements.append((m.group(1).split("."), m.group(2) != "!=", m.group(3)))

    def matches(self, obj: Obj) -> bool:
        for path, equal, value in self.requirements:
            cur: Any = obj
            for p in path:
                cur = cur.get(p) if isinstance(cur, dict) else None
            actual = "" if cur is None else str(cur)
            if (actual == value) != equal:
                return False
        return True


# ---------------------------------------------------------------------------------------------
# Patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str]) -> Any:
    cur = doc
    for t in tokens[:-1]:
        if isinstance(cur, list):
            cur = cur[int(t)]
        elif isinstance(cur, dict):
            cur = cur[t]
        else:
            raise KeyError(t)
    return cur


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test); ValueError on failure."""
    if not isinstance(ops, list):
        raise ValueError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)

    def get(tokens: list[str]) -> Any:
        cur = doc
        for t in tokens:
            cur = cur[int(t)] if isinstance(cur, list) else cur[t]
        return cur

    def remove(tokens: list[str]) -> Any:
        parent = _parent(doc, tokens)
        if isinstance(parent, list):
            return parent.pop(int(tokens[-1]))
        return parent.pop(tokens[-1])

    def add(tokens: list[str], value: Any) -> None:
        nonlocal doc
        if not tokens:
            doc = value
            return
        parent = _parent(doc, tokens)
        if isinstance(parent, list):
            if tokens[-1] == "-":
                parent.append(value)
            else:
                i = int(tokens[-1])
                if i > len(parent):
                    raise IndexError(i)
                parent.insert(i, value)
        elif isinstance(parent, dict):
            parent[tokens[-1]] = value
        else:
            raise KeyError(tokens[-1])

    for op in ops:
        try:
            name = op["op"]
            tokens = _pointer(op["path"])
            if name == "add":
                add(tokens, copy.deepcopy(op["value"]))
            elif name == "remove":
                remove(tokens)
            elif name == "replace":
                get(tokens)  # must exist
                if tokens:
                    remove(tokens)
                add(tokens, copy.deepcopy(op["value"]))
            elif name == "move":
                value = remove(_pointer(op["from"]))
                add(tokens, value)
            elif name == "copy":
                add(tokens, copy.deepcopy(get(_pointer(op["from"]))))
            elif name == "test":
                if get(tokens) != op["value"]:
                    raise ValueError(f"test failed at {op['path']}")
            else:
                raise ValueError(f"unknown JSON patch operation {name!r}")
        except (KeyError, IndexError, TypeError) as e:
            raise ValueError(f"JSON patch {op!r} cannot be applied: {e!r}") from None
    return doc


# ---------------------------------------------------------------------------------------------
# Admission


def _labels(obj: Obj) -> dict[str, str]:
    return dict(obj.get("metadata", {}).get("labels") or {})


def _rule_matches(rule: Obj, kind: Kind, operation: str) -> bool:
    def has(values: Any, value: str) -> bool:
        return "*" in (values or []) or value in (values or [])

    resources = rule.get("resources") or []
    scope = rule.get("scope", "*")
    return (
        has(rule.get("operations"), operation)
        and has(rule.get("apiGroups"), kind.group)
        and has(rule.get("apiVersions"), kind.version)
        and ("*" in resources or "*/*" in resources or kind.plural in resources)
        and (scope == "*" or (scope == "Namespaced") == kind.namespaced)
    )


def _selector_matches(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels and matchExpressions); None or {} matches all."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _denied(webhook: str, status: Obj | None) -> ApiError:
    """A webhook's refusal as the API server reports it (code >= 400, the webhook's message)."""
    status = status or {}
    code = int(status.get("code") or 0)
    code = code if code >= 400 else 400
    denied_by = f'admission webhook "{webhook}" denied the request'
    if status.get("message"):
        message = f"{denied_by}: {status['message']}"
    elif status.get("reason"):
        message = f"{denied_by}: {status['reason']}"
    else:
        message = f"{denied_by} without explanation"
    return ApiError(code, str(status.get("reason") or ""), message, status.get("details"))


# ---------------------------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class _Entry:
    rv: int
    kind: Kind
    type: str  # ADDED / MODIFIED / DELETED
    obj: Obj
    prev: Obj | None


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _meta(obj: Obj) -> Obj:
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    return meta


def _encode_continue(ns: str, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([ns, name]).encode()).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        ns, name = json.loads(base64.urlsafe_b64decode(token.encode()))
        return str(ns), str(name)
    except Exception:
        raise bad_request("continue key is not valid") from None


class FakeKube:
    """The fake API server; see the module docstring. Start with `with FakeKube() as kube:`."""

    def __init__(
        self,
        *,
        namespaces: tuple[str, ...] = ("default", "kube-system", "kube-public"),
        history: int = 10_000,
        bookmark_interval: float = 1.0,
    ) -> None:
        self.history = history
        self.bookmark_interval = bookmark_interval
        self._lock = threading.RLock()
        self._objects: dict[Kind, dict[tuple[str, str], Obj]] = {k: {} for k in KINDS}
        self._uids: dict[str, tuple[Kind, tuple[str, str]]] = {}
        self._owned: dict[str, set[tuple[Kind, tuple[str, str]]]] = {}
        """owner uid -> the objects whose ownerReferences name it"""
        self._rv = 0
        self._log: list[_Entry] = []
        self._compacted = 0
        """Events at or below this resourceVersion are forgotten."""
        self._watch_epoch = 0
        self._closing = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[tuple[str, str]] = []
        """(method, path?query) of every request served, in order."""
        self.open_watches = 0
        self.port = 0
        self._tokens: dict[str, Obj] = {}
        """issued token -> the `status.user` its TokenReview answers"""
        for ns in namespaces:
            self._create(_kind("namespaces"), {"metadata": {"name": ns}}, None)
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._handle,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                )
            ]
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKube:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.port = int(sock.getsockname()[1])
        started = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve(sock.detach(), started)),
            name=f"fake-kube-{self.port}",
            daemon=True,
        )
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake kube API server did not start")
        return self

    async def _serve(self, fd: int, started: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        config = HypercornConfig()
        config.bind = [f"fd://{fd}"]
        config.accesslog = None
        errorlog = logging.getLogger("tests.fake_kube")
        errorlog.setLevel(logging.WARNING)  # not hypercorn's "Running on ..." for every test
        config.errorlog = errorlog
        config.graceful_timeout = 2.0
        config.keep_alive_max_requests = 2**31
        started.set()
        await serve(self.app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]

    def close(self) -> None:
        if self._thread is None:
            return
        loop, stop = self._loop, self._stop
        assert loop is not None
        assert stop is not None

        def _shutdown() -> None:
            self._closing = True
            self._notify()
            stop.set()

        loop.call_soon_threadsafe(_shutdown)
        self._thread.join(15)
        self._thread = None

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write_kubeconfig(self, path: Path | str, *, namespace: str = "default") -> Path:
        """A kubeconfig file whose current context points at this server."""
        path = Path(path)
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config))  # JSON is YAML
        return path

    # -- tokens (TokenReview) -----------------------------------------------------------------

    def issue_token(self, username: str, groups: tuple[str, ...] = ()) -> str:
        """A bearer token that TokenReviews authenticate as `username` (JWT-shaped, unsigned)."""

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        uid = str(uuid.uuid4())
        claims = {"iss": "kubernetes/serviceaccount", "sub": username, "jti": uid}
        token = ".".join(
            (
                b64(json.dumps({"alg": "RS256", "kid": "fake"}).encode()),
                b64(json.dumps(claims).encode()),
                b64(uuid.uuid4().bytes + uuid.uuid4().bytes),
            )
        )
        user = {"username": username, "uid": uid, "groups": [*groups, "system:authenticated"]}
        with self._lock:
            self._tokens[token] = user
        return token

    def issue_service_account_token(self, namespace: str, name: str = "default") -> str:
        """The token the pods of ServiceAccount `<namespace>/<name>` get mounted."""
        return self.issue_token(
            f"system:serviceaccount:{namespace}:{name}",
            ("system:serviceaccounts", f"system:serviceaccounts:{namespace}"),
        )

    def _token_review(self, body: Any) -> Obj:
        if not isinstance(body, dict) or body.get("kind", "TokenReview") != "TokenReview":
            raise bad_request("the body of the request must be a TokenReview")
        spec = body.get("spec") or {}
        token = spec.get("token") or ""
        if not token:
            raise bad_request("token is required for TokenReview in authentication")
        with self._lock:
            user = copy.deepcopy(self._tokens.get(token))
        status: Obj = {"user": {}}
        if user is not None:
            status = {"authenticated": True, "user": user}
            if spec.get("audiences"):
                status["audiences"] = list(spec["audiences"])
        else:
            status["error"] = "[invalid bearer token, token lookup failed]"
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }

    # -- test helpers (thread-safe) ---------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop (where watchers live) and return its result."""
        if self._loop is None:
            return fn()
        try:
            if asyncio.get_running_loop() is self._loop:
                return fn()
        except RuntimeError:
            pass
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn())
            except BaseException as e:
                fut.set_exception(e)

        self._loop.call_soon_threadsafe(run)
        return fut.result(10)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the server's loop and wait (10 s at most) for its result."""
        assert self._loop is not None, "start the fake API server first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def objects(self, kind: str | Kind, namespace: str | None = None) -> list[Obj]:
        """Deep copies of the stored objects of `kind`, sorted by (namespace, name)."""
        k = _kind(kind)
        with self._lock:
            return [
                copy.deepcopy(o)
                for (ns, _), o in sorted(self._objects[k].items())
                if namespace is None or ns == namespace
            ]

    def get(self, kind: str | Kind, name: str, namespace: str | None = None) -> Obj | None:
        k = _kind(kind)
        with self._lock:
            o = self._objects[k].get((namespace or "" if k.namespaced else "", name))
            return copy.deepcopy(o) if o is not None else None

    def create(self, obj: Obj, *, namespace: str | None = None) -> Obj:
        """Create `obj` (kind from `obj["kind"]`) as if POSTed; raises ApiError."""
        k = _kind(obj["kind"])
        ns = namespace or obj.get("metadata", {}).get("namespace") or None
        return self._run(self._admitted_create(k, copy.deepcopy(obj), ns if k.namespaced else None))

    def update(self, obj: Obj) -> Obj:
        k = _kind(obj["kind"])
        meta = obj.get("metadata", {})
        ns = meta.get("namespace") if k.namespaced else None
        current, new = self._prepare_update(k, ns, meta["name"], copy.deepcopy(obj), False)
        return self._run(self._admitted_update(k, current, new, True))

    def patch(
        self,
        kind: str | Kind,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        content_type: str = "application/merge-patch+json",
        status: bool = False,
    ) -> Obj:
        """PATCH an object (`status=True`: its /status subresource, e.g. a Pod's podIP)."""
        k = _kind(kind)
        ns = namespace if k.namespaced else None
        current, new = self._prepare_patch(k, ns, name, content_type, copy.deepcopy(patch), status)
        return self._run(self._admitted_update(k, current, new, not status))

    def delete(
        self,
        kind: str | Kind,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
    ) -> Obj:
        k = _kind(kind)
        return self._run(
            self._admitted_delete(k, namespace if k.namespaced else None, name, propagation, {})
        )

    def compact(self) -> None:
        """Forget the event history: watches resuming from any earlier version get 410 Gone."""

        def run() -> None:
            with self._lock:
                self._compacted = self._rv
                self._log.clear()

        self._call(run)

    def drop_watches(self) -> None:
        """End every open watch stream (clients should reconnect and resume)."""

        def run() -> None:
            self._watch_epoch += 1
            self._notify()

        self._call(run)

    # -- storage ---------------------------------------------------------------------------

    def _notify(self) -> None:
        if self._wake is not None:
            wake, self._wake = self._wake, asyncio.Event()
            wake.set()

    def _record(self, kind: Kind, type_: str, obj: Obj, prev: Obj | None) -> None:
        self._log.append(_Entry(self._rv, kind, type_, copy.deepcopy(obj), prev))
        if len(self._log) > self.history:
            drop = len(self._log) - self.history
            self._compacted = self._log[drop - 1].rv
            del self._log[:drop]
        self._notify()

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _key(self, kind: Kind, ns: str | None, name: str) -> tuple[str, str]:
        return (ns or "" if kind.namespaced else "", name)

    def _existing(self, kind: Kind, ns: str | None, name: str) -> Obj:
        obj = self._objects[kind].get(self._key(kind, ns, name))
        if obj is None:
            raise not_found(kind, name)
        return obj

    def _check_body(self, kind: Kind, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise bad_request("the body of the request was not an object")
        if body.setdefault("kind", kind.kind) != kind.kind:
            raise bad_request(f"the kind {body['kind']!r} does not match {kind.kind!r}")
        if body.setdefault("apiVersion", kind.api_version) != kind.api_version:
            raise bad_request(
                f"the API version {body['apiVersion']!r} does not match {kind.api_version!r}"
            )
        _meta(body)
        return body

    def _create(self, kind: Kind, body: Any, ns: str | None) -> Obj:
        """Create without admission (the constructor's namespaces)."""
        with self._lock:
            return self._insert(kind, self._prepare_create(kind, body, ns))

    def _prepare_create(self, kind: Kind, body: Any, ns: str | None) -> Obj:
        """Validate and default a new object (what admission webhooks then see)."""
        with self._lock:
            obj = self._check_body(kind, body)
            meta = obj["metadata"]
            if kind.namespaced:
                if not ns:
                    raise bad_request("a namespace is required to create a namespaced object")
                if meta.get("namespace") not in (None, "", ns):
                    raise bad_request(
                        "the namespace of the provided object does not match the namespace sent"
                        " on the request"
                    )
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
                else:
                    raise invalid(
                        kind,
                        "",
                        "metadata.name",
                        None,
                        "Required value: name or generateName is required",
                    )
            name = meta["name"]
            if not isinstance(name, str) or (problem := _name_problem(kind, name)):
                raise invalid(kind, str(name), "metadata.name", name, problem or "not a string")
            if meta.get("resourceVersion"):
                raise bad_request("resourceVersion should not be set on objects to be created")
            for field_ in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
                meta.pop(field_, None)
            return obj

    def _insert(self, kind: Kind, obj: Obj) -> Obj:
        with self._lock:
            meta = _meta(obj)
            ns = meta.get("namespace") if kind.namespaced else None
            name = meta["name"]
            if kind.namespaced and ("", ns) not in self._objects[_kind("namespaces")]:
                raise not_found(_kind("namespaces"), str(ns))
            key = self._key(kind, ns, name)
            if key in self._objects[kind]:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{kind.qualified} "{name}" already exists',
                    _details(kind, name),
                )
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
            meta["resourceVersion"] = self._next_rv()
            if kind.plural == "namespaces":
                obj.setdefault("status", {"phase": "Active"})
            self._put(kind, key, obj)
            self._record(kind, "ADDED", obj, None)
            return copy.deepcopy(obj)

    def _prepare_update(
        self, kind: Kind, ns: str | None, name: str, body: Any, status_only: bool
    ) -> tuple[Obj, Obj]:
        """(current, new) for a PUT; nothing is stored yet."""
        with self._lock:
            obj = self._check_body(kind, body)
            current = self._existing(kind, ns, name)
            meta = obj["metadata"]
            if meta.get("name", name) != name:
                raise bad_request(
                    f"the name of the object ({meta.get('name')}) does not match the name on the"
                    f" URL ({name})"
                )
            if kind.namespaced and meta.get("namespace") not in (None, "", ns):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on"
                    " the request"
                )
            rv = meta.get("resourceVersion")
            if rv:
                if rv != current["metadata"]["resourceVersion"]:
                    raise conflict(kind, name, STALE)
            elif kind.custom:
                raise invalid(
                    kind,
                    name,
                    "metadata.resourceVersion",
                    None,
                    "Invalid value: 0x0: must be specified for an update",
                )
            if status_only:
                new = copy.deepcopy(current)
                if "status" in obj:
                    new["status"] = obj["status"]
                else:
                    new.pop("status", None)
            else:
                new = obj
                if kind.status_subresource:
                    if "status" in current:
                        new["status"] = copy.deepcopy(current["status"])
                    else:
                        new.pop("status", None)
            return copy.deepcopy(current), new

    def _commit(self, kind: Kind, current: Obj, new: Obj) -> Obj:
        """Store `new` over `current` unless the object changed meanwhile (during admission)."""
        with self._lock:
            meta = current["metadata"]
            latest = self._existing(kind, meta.get("namespace"), meta["name"])
            if latest["metadata"]["resourceVersion"] != meta["resourceVersion"]:
                raise conflict(kind, meta["name"], STALE)
            return self._store_update(kind, latest, new)

    def _store_update(self, kind: Kind, current: Obj, new: Obj) -> Obj:
        """Replace `current` with `new`, keeping server-owned metadata; no-ops keep the version."""
        cur_meta = current["metadata"]
        meta = _meta(new)
        for field_ in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "generation",
            "resourceVersion",
        ):
            if field_ in cur_meta:
                meta[field_] = cur_meta[field_]
            else:
                meta.pop(field_, None)
        if new == current:
            return copy.deepcopy(current)
        if {k: v for k, v in new.items() if k not in ("metadata", "status")} != {
            k: v for k, v in current.items() if k not in ("metadata", "status")
        }:
            meta["generation"] = int(cur_meta.get("generation", 1)) + 1
        meta["resourceVersion"] = self._next_rv()
        key = self._key(kind, cur_meta.get("namespace"), cur_meta["name"])
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # the last finalizer is gone: the object goes away now
            self._put(kind, key, None)
            self._record(kind, "DELETED", new, current)
            self._collect(cur_meta["uid"], "Background")
            return copy.deepcopy(new)
        self._put(kind, key, new)
        self._record(kind, "MODIFIED", new, current)
        return copy.deepcopy(new)

    def _prepare_patch(
        self,
        kind: Kind,
        ns: str | None,
        name: str,
        content_type: str,
        patch: Any,
        status_only: bool,
    ) -> tuple[Obj, Obj]:
        """(current, new) for a PATCH; nothing is stored yet."""
        with self._lock:
            current = self._existing(kind, ns, name)
            ctype = content_type.split(";")[0].strip()
            if ctype in ("application/merge-patch+json", "application/apply-patch+yaml") or (
                ctype == "application/strategic-merge-patch+json" and not kind.custom
            ):
                new = merge_patch(current, patch)
            elif ctype == "application/json-patch+json":
                try:
                    new = json_patch(current, patch)
                except ValueError as e:
                    raise ApiError(422, "Invalid", str(e)) from None
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types"
                    f" include: application/json-patch+json, application/merge-patch+json,"
                    f" application/apply-patch+yaml (got {ctype})",
                )
            if not isinstance(new, dict):
                raise ApiError(422, "Invalid", "a patch must produce an object")
            meta = _meta(new)
            for field_ in ("name", "namespace", "uid"):
                if meta.get(field_) != current["metadata"].get(field_):
                    raise invalid(
                        kind, name, f"metadata.{field_}", meta.get(field_), "field is immutable"
                    )
            rv = meta.get("resourceVersion")
            if rv and rv != current["metadata"]["resourceVersion"]:
                raise conflict(kind, name, STALE)
            if status_only:
                only = copy.deepcopy(current)
                only["status"] = new.get("status")
                new = only
            elif kind.status_subresource:
                new["status"] = copy.deepcopy(current.get("status"))
            if new.get("status") is None:
                new.pop("status", None)
            return copy.deepcopy(current), new

    def _delete(
        self, kind: Kind, ns: str | None, name: str, propagation: str, preconditions: Obj
    ) -> Obj:
        with self._lock:
            current = self._existing(kind, ns, name)
            meta = current["metadata"]
            if (uid := preconditions.get("uid")) and uid != meta["uid"]:
                raise conflict(
                    kind,
                    name,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta:"
                    f" {meta['uid']}",
                )
            if (rv := preconditions.get("resourceVersion")) and rv != meta["resourceVersion"]:
                raise conflict(
                    kind,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {rv},"
                    f" ResourceVersion in object meta: {meta['resourceVersion']}",
                )
            if propagation not in ("Background", "Foreground", "Orphan"):
                raise bad_request(f"unsupported propagationPolicy {propagation!r}")
            if meta.get("finalizers"):
                if meta.get("deletionTimestamp"):
                    return copy.deepcopy(current)
                new = copy.deepcopy(current)
                new["metadata"]["deletionTimestamp"] = _now()
                new["metadata"]["resourceVersion"] = self._next_rv()
                self._put(kind, self._key(kind, ns, name), new)
                self._record(kind, "MODIFIED", new, current)
                return copy.deepcopy(new)
            if kind.plural == "namespaces":
                for k in KINDS:
                    if k.namespaced:
                        for o_ns, o_name in sorted(self._objects[k]):
                            if o_ns == name and (o_ns, o_name) in self._objects[k]:
                                self._delete(k, o_ns, o_name, "Background", {})
            if propagation == "Foreground":
                self._collect(meta["uid"], "Foreground")
            self._put(kind, self._key(kind, ns, name), None)
            gone = copy.deepcopy(current)
            gone["metadata"]["resourceVersion"] = self._next_rv()
            self._record(kind, "DELETED", gone, current)
            if propagation == "Orphan":
                self._orphan(meta["uid"])
            else:
                self._collect(meta["uid"], propagation)
            return gone

    def _put(self, kind: Kind, key: tuple[str, str], obj: Obj | None) -> None:
        """The one place objects are stored or removed; keeps the uid and owner indexes."""
        old = self._objects[kind].get(key)
        if old is not None:
            self._uids.pop(old["metadata"]["uid"], None)
            for ref in old["metadata"].get("ownerReferences") or []:
                deps = self._owned.get(ref.get("uid", ""))
                if deps is not None:
                    deps.discard((kind, key))
                    if not deps:
                        del self._owned[ref["uid"]]
        if obj is None:
            self._objects[kind].pop(key, None)
            return
        self._objects[kind][key] = obj
        self._uids[obj["metadata"]["uid"]] = (kind, key)
        for ref in obj["metadata"].get("ownerReferences") or []:
            if ref.get("uid"):
                self._owned.setdefault(ref["uid"], set()).add((kind, key))

    def _dependents(self, uid: str) -> list[tuple[Kind, Obj]]:
        keys = sorted(self._owned.get(uid, ()), key=lambda d: (d[0].plural, d[1]))
        return [(k, self._objects[k][key]) for k, key in keys]

    def _collect(self, uid: str, propagation: str) -> None:
        """Garbage collection: dependents with no other live owner go; others lose the ref."""
        for k, dep in self._dependents(uid):
            meta = dep["metadata"]
            if self._objects[k].get(self._key(k, meta.get("namespace"), meta["name"])) is not dep:
                continue  # already collected through another path
            refs = meta.get("ownerReferences") or []
            if any(r.get("uid") in self._uids and r.get("uid") != uid for r in refs):
                new = copy.deepcopy(dep)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                self._store_update(k, dep, new)
            else:
                self._delete(k, meta.get("namespace"), meta["name"], propagation, {})

    def _orphan(self, uid: str) -> None:
        for k, dep in self._dependents(uid):
            new = copy.deepcopy(dep)
            refs = new["metadata"].get("ownerReferences") or []
            new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
            if not new["metadata"]["ownerReferences"]:
                del new["metadata"]["ownerReferences"]
            self._store_update(k, dep, new)

    def _list(
        self,
        kind: Kind,
        ns: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        limit: int,
        cont: str | None,
    ) -> Obj:
        with self._lock:
            start = _decode_continue(cont) if cont else None
            matching = [
                o
                for key, o in sorted(self._objects[kind].items())
                if (ns is None or key[0] == ns)
                and (start is None or key > start)
                and labels.matches(o)
                and fields.matches(o)
            ]
            meta: Obj = {"resourceVersion": str(self._rv)}
            if limit > 0 and len(matching) > limit:
                last = matching[limit - 1]["metadata"]
                meta["continue"] = _encode_continue(last.get("namespace", ""), last["name"])
                meta["remainingItemCount"] = len(matching) - limit
                matching = matching[:limit]
            items = []
            for o in matching:
                item = copy.deepcopy(o)
                if not kind.custom:
                    item.pop("kind", None)
                    item.pop("apiVersion", None)
                items.append(item)
            return {
                "kind": f"{kind.kind}List",
                "apiVersion": kind.api_version,
                "metadata": meta,
                "items": items,
            }

    # -- watch -----------------------------------------------------------------------------

    async def _watch(
        self,
        kind: Kind,
        ns: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        since: str | None,
        timeout_s: float | None,
        bookmarks: bool,
        epoch: int,
    ) -> AsyncIterator[bytes]:
        """The watch stream; it ends when `drop_watches()` moves past `epoch` (taken when the
        request arrived, so a drop after the response started always ends it)."""

        def line(type_: str, obj: Obj) -> bytes:
            return (json.dumps({"type": type_, "object": obj}) + "\n").encode()

        def selected(o: Obj | None) -> bool:
            return (
                o is not None
                and (ns is None or o["metadata"].get("namespace") == ns)
                and labels.matches(o)
                and fields.matches(o)
            )

        def gone(rv: int) -> bytes:
            status = ApiError(
                410, "Expired", f"too old resource version: {rv} ({self._compacted + 1})"
            ).status()
            return line("ERROR", status)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s if timeout_s else None
        self.open_watches += 1
        try:
            with self._lock:
                if since in (None, "", "0"):
                    cursor = self._rv
                    initial = [
                        copy.deepcopy(o)
                        for key, o in sorted(self._objects[kind].items())
                        if selected(o)
                    ]
                else:
                    assert since is not None
                    try:
                        cursor = int(since)
                    except ValueError:
                        raise bad_request(f"invalid resource version {since!r}") from None
                    initial = []
                    if cursor < self._compacted:
                        yield gone(cursor)
                        return
            for o in initial:
                yield line("ADDED", o)
            while True:
                with self._lock:
                    if cursor < self._compacted:
                        yield gone(cursor)
                        return
                    i = bisect.bisect_right(self._log, cursor, key=lambda e: e.rv)
                    batch = self._log[i:]
                    wake = self._wake
                for e in batch:
                    cursor = e.rv
                    if e.kind != kind:
                        continue
                    now_in, was_in = selected(e.obj), selected(e.prev)
                    if e.type == "ADDED" and now_in:
                        yield line("ADDED", e.obj)
                    elif e.type == "DELETED" and (now_in or was_in):
                        yield line("DELETED", e.obj)
                    elif e.type == "MODIFIED":
                        if now_in and was_in:
                            yield line("MODIFIED", e.obj)
                        elif now_in:
                            yield line("ADDED", e.obj)
                        elif was_in:
                            yield line("DELETED", e.obj)
                if self._closing or self._watch_epoch != epoch:
                    return
                if batch:
                    continue
                wait = self.bookmark_interval if bookmarks else 3600.0
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        return
                assert wake is not None
                try:
                    await asyncio.wait_for(wake.wait(), wait)
                except TimeoutError:
                    if bookmarks:
                        with self._lock:
                            if self._log and self._log[-1].rv > cursor:
                                continue
                            cursor = self._rv
                        yield line(
                            "BOOKMARK",
                            {
                                "kind": kind.kind,
                                "apiVersion": kind.api_version,
                                "metadata": {"resourceVersion": str(cursor)},
                            },
                        )
        finally:
            self.open_watches -= 1

    # -- admission webhooks ----------------------------------------------------------------

    async def _admitted_create(self, kind: Kind, body: Any, ns: str | None) -> Obj:
        obj = self._prepare_create(kind, body, ns)
        obj = await self._admit(kind, "CREATE", obj, None)
        return self._insert(kind, obj)

    async def _admitted_update(self, kind: Kind, current: Obj, new: Obj, admit: bool) -> Obj:
        if admit:  # webhooks see main-resource writes, not /status
            new = await self._admit(kind, "UPDATE", new, current)
        return self._commit(kind, current, new)

    async def _admitted_delete(
        self, kind: Kind, ns: str | None, name: str, propagation: str, preconditions: Obj
    ) -> Obj:
        with self._lock:
            current = copy.deepcopy(self._existing(kind, ns, name))
        await self._admit(kind, "DELETE", None, current)
        return self._delete(kind, ns, name, propagation, preconditions)

    async def _apply(
        self, request: Request, kind: Kind, ns: str | None, name: str, sub: str | None
    ) -> Response:
        """Server-side apply, approximated: create when missing, else a JSON merge patch (no
        field ownership, so no apply conflicts)."""
        if not request.query_params.get("fieldManager"):
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is'
                " required for apply patch",
            )
        try:
            body = yaml.safe_load(await request.body())
        except yaml.YAMLError:
            raise bad_request("the body of the request was not valid YAML") from None
        with self._lock:
            exists = self._key(kind, ns, name) in self._objects[kind]
        if not exists and sub is None:
            if isinstance(body, dict) and _meta(body).get("name", name) != name:
                raise bad_request("the name of the object does not match the name on the URL")
            obj = await self._admitted_create(kind, body, ns)
            return JSONResponse(obj, status_code=201)
        ctype = "application/apply-patch+yaml"
        current, new = self._prepare_patch(kind, ns, name, ctype, body, sub == "status")
        return JSONResponse(await self._admitted_update(kind, current, new, sub is None))

    async def _admit(self, kind: Kind, operation: str, obj: Obj | None, old: Obj | None) -> Obj:
        """Run the matching mutating, then validating webhooks (clientConfig.url only)."""
        if kind.group == "admissionregistration.k8s.io":
            return obj or {}
        for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
            mutating = plural.startswith("mutating")
            for webhook in self._matching_webhooks(plural, kind, operation, obj, old):
                patched = await self._call_webhook(webhook, kind, operation, obj, old, mutating)
                if patched is not None:
                    obj = patched
        return obj or {}

    def _matching_webhooks(
        self, plural: str, kind: Kind, operation: str, obj: Obj | None, old: Obj | None
    ) -> list[Obj]:
        with self._lock:
            configs = [copy.deepcopy(c) for _, c in sorted(self._objects[_kind(plural)].items())]
            some = obj or old or {}
            ns = some.get("metadata", {}).get("namespace")
            ns_obj = self._objects[_kind("namespaces")].get(("", ns)) if ns else None
            if kind.plural == "namespaces":
                ns_obj = some
        out = []
        for config in configs:
            for webhook in config.get("webhooks") or []:
                if not any(_rule_matches(r, kind, operation) for r in webhook.get("rules") or []):
                    continue
                if ns_obj is not None and not _selector_matches(
                    webhook.get("namespaceSelector"), _labels(ns_obj)
                ):
                    continue
                selector = webhook.get("objectSelector")
                if not any(_selector_matches(selector, _labels(o)) for o in (obj, old) if o):
                    continue
                out.append(webhook)
        return out

    async def _call_webhook(
        self,
        webhook: Obj,
        kind: Kind,
        operation: str,
        obj: Obj | None,
        old: Obj | None,
        mutating: bool,
    ) -> Obj | None:
        """The object as `webhook` patched it (None: unchanged); ApiError when it denies."""
        name = str(webhook.get("name", ""))
        versions = webhook.get("admissionReviewVersions") or ["v1"]
        version = "v1" if "v1" in versions else str(versions[0])
        uid = str(uuid.uuid4())
        gvk = {"group": kind.group, "version": kind.version, "kind": kind.kind}
        gvr = {"group": kind.group, "version": kind.version, "resource": kind.plural}
        some = obj or old or {}
        request: Obj = {
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": some.get("metadata", {}).get("name", ""),
            "operation": operation,
            "userInfo": {
                "username": "kubernetes-admin",
                "groups": ["system:masters", "system:authenticated"],
            },
            "object": obj,
            "oldObject": old,
            "dryRun": False,
        }
        if kind.namespaced:
            request["namespace"] = some.get("metadata", {}).get("namespace", "")
        review = {
            "apiVersion": f"admission.k8s.io/{version}",
            "kind": "AdmissionReview",
            "request": request,
        }
        try:
            client_config = webhook.get("clientConfig") or {}
            url = client_config.get("url")
            if not url:
                raise ValueError(
                    "the fake API server reaches webhooks by clientConfig.url only (no services)"
                )
            verify: Any = True
            if client_config.get("caBundle"):
                verify = ssl.create_default_context(
                    cadata=base64.b64decode(client_config["caBundle"]).decode()
                )
            timeout = float(webhook.get("timeoutSeconds") or 10)
            async with httpx.AsyncClient(verify=verify, timeout=timeout) as client:
                resp = await client.post(url, json=review)
                resp.raise_for_status()
                response = resp.json().get("response") or {}
            if response.get("uid") != uid:
                raise ValueError(f"expected response.uid={uid!r}, got {response.get('uid')!r}")
            patch = None
            if response.get("allowed") and mutating and response.get("patch"):
                if response.get("patchType") != "JSONPatch":
                    raise ValueError(f"unsupported patchType {response.get('patchType')!r}")
                patch = json.loads(base64.b64decode(response["patch"]))
        except (httpx.HTTPError, ValueError, KeyError, ssl.SSLError) as e:
            if webhook.get("failurePolicy", "Fail") == "Ignore":
                return None
            raise ApiError(
                500,
                "InternalError",
                f'Internal error occurred: failed calling webhook "{name}": {e}',
            ) from None
        if not response.get("allowed"):
            raise _denied(name, response.get("status"))
        if patch is None or obj is None:
            return None
        try:
            patched = json_patch(obj, patch)
        except ValueError as e:
            raise ApiError(
                500, "InternalError", f'Internal error occurred: webhook "{name}": {e}'
            ) from None
        return patched if isinstance(patched, dict) else None

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        path = request.url.path
        query = request.url.query
        self.requests.append((request.method, f"{path}?{query}" if query else path))
        # read the whole body first: answering before it is read makes the server drop the
        # connection, and the client's next request on it fails
        await request.body()
        try:
            return await self._dispatch(request)
        except ApiError as e:
            return JSONResponse(e.status(), status_code=e.code)

    async def _dispatch(self, request: Request) -> Response:
        parts = [p for p in request.url.path.split("/") if p]
        if parts == ["apis", "authentication.k8s.io", "v1", "tokenreviews"]:
            if request.method != "POST":
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
            return JSONResponse(self._token_review(await self._json(request)), status_code=201)
        if parts == ["version"]:
            return JSONResponse({"major": "1", "minor": "19", "gitVersion": "v1.19.0-kuma-py-fake"})
        if parts == ["api"]:
            return JSONResponse({"kind": "APIVersions", "versions": ["v1"]})
        if parts == ["apis"]:
            groups = sorted({(k.group, k.version) for k in KINDS if k.group})
            return JSONResponse(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [
                        {
                            "name": g,
                            "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                            "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                        }
                        for g, v in groups
                    ],
                }
            )
        if len(parts) >= 3 and parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        kind = _BY_PATH.get((group, version, rest[0]))
        if kind is None or len(rest) > 3 or (ns is not None and not kind.namespaced):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and (sub != "status" or not kind.status_subresource):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is not None and kind.namespaced and ns is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        q = request.query_params
        method = request.method

        if name is None:
            labels = LabelSelector(q.get("labelSelector"))
            fields = FieldSelector(q.get("fieldSelector"))
            if method == "GET" and q.get("watch") in ("true", "1"):
                timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
                # fail fast on a bad resourceVersion, before the 200 goes out
                since = q.get("resourceVersion")
                if since not in (None, "", "0") and not str(since).isdigit():
                    raise bad_request(f"invalid resource version {since!r}")
                stream = self._watch(
                    kind,
                    ns,
                    labels,
                    fields,
                    since,
                    timeout,
                    q.get("allowWatchBookmarks") in ("true", "1"),
                    self._watch_epoch,
                )
                return StreamingResponse(stream, media_type="application/json")
            if method == "GET":
                try:
                    limit = int(q.get("limit") or 0)
                except ValueError:
                    raise bad_request("limit must be an integer") from None
                return JSONResponse(
                    self._list(kind, ns, labels, fields, limit, q.get("continue") or None)
                )
            if method == "POST":
                if kind.namespaced and ns is None:
                    raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
                obj = await self._admitted_create(kind, await self._json(request), ns)
                return JSONResponse(obj, status_code=201)
            if method == "DELETE":
                listed = self._list(kind, ns, labels, fields, 0, None)
                for item in listed["items"]:
                    with contextlib.suppress(ApiError):  # collected as a dependent meanwhile
                        self._delete(
                            kind,
                            item["metadata"].get("namespace"),
                            item["metadata"]["name"],
                            "Background",
                            {},
                        )
                return JSONResponse(listed)
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")

        if method == "GET" and sub is None:
            with self._lock:
                return JSONResponse(copy.deepcopy(self._existing(kind, ns, name)))
        if method == "GET":
            with self._lock:
                return JSONResponse(copy.deepcopy(self._existing(kind, ns, name)))
        if method == "PUT":
            body = await self._json(request)
            current, new = self._prepare_update(kind, ns, name, body, sub == "status")
            return JSONResponse(await self._admitted_update(kind, current, new, sub is None))
        if method == "PATCH":
            ctype = request.headers.get("content-type", "").split(";")[0].strip()
            if ctype == "application/apply-patch+yaml":
                return await self._apply(request, kind, ns, name, sub)
            body = await self._json(request)
            current, new = self._prepare_patch(kind, ns, name, ctype, body, sub == "status")
            return JSONResponse(await self._admitted_update(kind, current, new, sub is None))
        if method == "DELETE" and sub is None:
            raw = await request.body()
            options: Obj = {}
            if raw.strip():
                try:
                    options = json.loads(raw)
                except ValueError:
                    raise bad_request("the body of the request was not valid JSON") from None
            propagation = q.get("propagationPolicy") or options.get("propagationPolicy")
            return JSONResponse(
                await self._admitted_delete(
                    kind, ns, name, propagation or "Background", options.get("preconditions") or {}
                )
            )
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")

    @staticmethod
    async def _json(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            raise bad_request("the body of the request was not valid JSON") from None


@contextmanager
def serve_app(
    app: Any, *, certfile: str | None = None, keyfile: str | None = None
) -> Iterator[str]:
    """Serve any ASGI `app` on a free loopback port in a background thread (HTTPS when given a
    certificate); yields its base URL. For test doubles such as an admission webhook server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = int(sock.getsockname()[1])
    loop_box: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
    started = threading.Event()

    async def main(fd: int) -> None:
        stop = asyncio.Event()
        loop_box.append((asyncio.get_running_loop(), stop))
        config = HypercornConfig()
        config.bind = [f"fd://{fd}"]
        config.accesslog = None
        errorlog = logging.getLogger("tests.fake_kube")
        errorlog.setLevel(logging.WARNING)
        config.errorlog = errorlog
        config.graceful_timeout = 1.0
        config.certfile = certfile
        config.keyfile = keyfile
        started.set()
        await serve(app, config, shutdown_trigger=stop.wait)

    thread = threading.Thread(target=lambda: asyncio.run(main(sock.detach())), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("test server did not start")
    try:
        yield f"{'https' if certfile else 'http'}://127.0.0.1:{port}"
    finally:
        loop, stop = loop_box[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(15)


@contextmanager
def fake_kube(**kwargs: Any) -> Iterator[FakeKube]:
    """`with fake_kube() as kube:` — a started FakeKube, stopped on exit."""
    kube = FakeKube(**kwargs)
    kube.start()
    try:
        yield kube
    finally:
        kube.close()
