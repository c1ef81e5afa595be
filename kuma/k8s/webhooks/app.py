"""The admission webhook server (kuma-cp's `:5443` in Kubernetes mode), as a starlette app.

    POST /inject-sidecar                     mutating, Pods: the sidecar injector
    POST /default-kuma-io-v1alpha1-mesh      mutating, Meshes: Kuma's Mesh defaults
    POST /owner-reference-kuma-io-v1alpha1   mutating, mesh-scoped kinds: the Mesh as owner
    POST /validate-kuma-io-v1alpha1          validating, every Kuma kind: Kuma's validators
    POST /validate-v1-service                 validating, Services: protocol annotations
    POST /validate-v1-secret                 validating, Kuma Secrets: mesh, mesh change, value

Every endpoint takes and returns an AdmissionReview (`kuma.k8s.webhooks.admission`). A body that
is not one gets an AdmissionReview refusing with code 400 (and HTTP 200, as controller-runtime
answers). Validation failures carry Kuma's field paths (`spec.conf`) as status causes.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kuma.errors import ValidationError, Violation
from kuma.k8s import crds
from kuma.k8s.webhooks import admission
from kuma.k8s.webhooks.admission import AdmissionRequest, AdmissionResponse
from kuma.k8s.webhooks.injector import InjectionError, SidecarInjector
from kuma.k8s.webhooks.lookup import ClusterLookup, LookupError_
from kuma.manager.defaults import apply_mesh_defaults
from kuma.model import codec, registry
from kuma.model.validation import Path
from kuma.model.validators.common import allowed_values_hint
from kuma.model.validators.dataplane import SUPPORTED_PROTOCOLS

__all__ = [
    "PATH_DEFAULT_MESH",
    "PATH_INJECT",
    "PATH_OWNER_REFERENCE",
    "PATH_VALIDATE",
    "PATH_VALIDATE_SECRET",
    "PATH_VALIDATE_SERVICE",
    "ManagerMeshChecks",
    "MeshChecks",
    "build_webhook_app",
]

log = structlog.get_logger("kuma-cp.webhooks")

PATH_INJECT = "/inject-sidecar"
PATH_DEFAULT_MESH = "/default-kuma-io-v1alpha1-mesh"
PATH_OWNER_REFERENCE = "/owner-reference-kuma-io-v1alpha1"
PATH_VALIDATE = "/validate-kuma-io-v1alpha1"
PATH_VALIDATE_SERVICE = "/validate-v1-service"
PATH_VALIDATE_SECRET = "/validate-v1-secret"

MAX_BODY = 3 * 1024 * 1024
"""Kubernetes objects are at most ~1.5 MiB; a review holds two of them."""

KUMA_SECRET_TYPE = "system.kuma.io/secret"
_MESH_LABEL = "kuma.io/mesh"

Handler = Callable[[AdmissionRequest], Awaitable[AdmissionResponse]]

MESH_IN_USE = "unable to delete mesh, there are still some dataplanes attached"


class MeshChecks(Protocol):
    """Mesh rules that need the control plane's state (Kuma's MeshValidator)."""

    async def validate(self, name: str, spec: Any, previous: Any | None) -> None:
        """Raise ValidationError (paths relative to the spec) when the Mesh's CA backends are
        unusable, or when an update switches the enabled CA (`previous`: the old spec)."""

    async def dataplane_count(self, mesh: str) -> int:
        """How many Dataplanes are in `mesh` (a Mesh in use cannot be deleted)."""


class ManagerMeshChecks:
    """MeshChecks answered by kuma-cp's ResourceManager (its Mesh CA hook and store)."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    async def validate(self, name: str, spec: Any, previous: Any | None) -> None:
        if self.manager.mesh_ca is not None:
            await self.manager.mesh_ca.validate(name, spec, previous)

    async def dataplane_count(self, mesh: str) -> int:
        result = await self.manager.list(registry.DATAPLANE, mesh, size=1)
        return int(result.total)


def build_webhook_app(
    injector: SidecarInjector,
    lookup: ClusterLookup,
    *,
    mesh_checks: MeshChecks | None = None,
    mode: str = "standalone",
) -> Starlette:
    """The webhook app; `lookup` answers the namespace and Mesh questions, `mesh_checks` (when
    given) the Mesh rules that need the control plane's state; `mode` is kuma-cp's (a Zone
    can only be applied to a global control plane)."""
    hooks = _Webhooks(injector, lookup, mesh_checks, mode)
    routes = [
        Route(path, _endpoint(handler), methods=["POST"])
        for path, handler in (
            (PATH_INJECT, hooks.inject),
            (PATH_DEFAULT_MESH, hooks.default_mesh),
            (PATH_OWNER_REFERENCE, hooks.owner_reference),
            (PATH_VALIDATE, hooks.validate),
            (PATH_VALIDATE_SERVICE, hooks.validate_service),
            (PATH_VALIDATE_SECRET, hooks.validate_secret),
        )
    ]
    return Starlette(routes=routes)


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_BODY:
            resp = admission.errored(413, f"the request body is larger than {MAX_BODY} bytes")
            return JSONResponse(resp.review(None))
        try:
            review = admission.parse_review(json.loads(raw))
        except (ValueError, admission.BadReview) as e:
            return JSONResponse(
                admission.errored(400, f"invalid AdmissionReview: {e}").review(None)
            )
        try:
            resp = await handler(review)
        except LookupError_ as e:
            resp = admission.errored(500, str(e))
        log.debug(
            "admission review",
            path=request.url.path,
            kind=review.kind,
            name=review.name,
            namespace=review.namespace,
            operation=review.operation,
            allowed=resp.allowed,
        )
        return JSONResponse(resp.review(review))

    return endpoint


class _Webhooks:
    def __init__(
        self,
        injector: SidecarInjector,
        lookup: ClusterLookup,
        mesh_checks: MeshChecks | None,
        mode: str,
    ) -> None:
        self.injector = injector
        self.lookup = lookup
        self.mesh_checks = mesh_checks
        self.mode = mode

    async def inject(self, req: AdmissionRequest) -> AdmissionResponse:
        if req.object is None:
            return admission.errored(400, "the request has no Pod object")
        try:
            mutated = await self.injector.inject(req.object, req.namespace)
        except InjectionError as e:
            return admission.errored(500, str(e))
        if mutated is None:
            return admission.allowed()
        return admission.patched(req.object, mutated)

    async def default_mesh(self, req: AdmissionRequest) -> AdmissionResponse:
        obj = req.object
        if obj is None:
            return admission.errored(400, "the request has no Mesh object")
        raw_spec = obj.get("spec")
        try:
            spec = codec.decode(registry.MESH.spec_cls, raw_spec, "spec")
        except ValidationError as e:
            return admission.invalid("Mesh", _name(obj), e.violations)
        before = codec.encode(spec)
        apply_mesh_defaults(spec)
        after = codec.encode(spec)
        if after == before:
            return admission.allowed()
        return admission.patched(obj, {**obj, "spec": after})

    async def owner_reference(self, req: AdmissionRequest) -> AdmissionResponse:
        obj = req.object
        crd = crds.by_kind(req.kind)
        if obj is None or crd is None:
            return admission.errored(400, f"unsupported kind {req.kind!r}")
        if crd.type.owner_type != registry.MESH.name:
            return admission.allowed()  # Meshes, Zones and insights have no Mesh owner
        mesh_name = obj.get("mesh") or ""
        if not mesh_name:
            return admission.invalid(req.kind, _name(obj), [Violation("mesh", "cannot be empty")])
        mesh = await self.lookup.mesh(mesh_name)
        if mesh is None:
            return admission.errored(400, f'meshes.kuma.io "{mesh_name}" not found')
        mesh_meta = mesh.get("metadata") or {}
        owner = {
            "apiVersion": crds.API_VERSION,
            "kind": "Mesh",
            "name": mesh_name,
            "uid": mesh_meta.get("uid", ""),
        }
        meta = dict(obj.get("metadata") or {})
        refs = [
            r
            for r in meta.get("ownerReferences") or []
            if not (
                r.get("kind") == "Mesh"
                and r.get("name") == mesh_name
                and str(r.get("apiVersion", "")).split("/")[0] == crds.GROUP
            )
        ]
        meta["ownerReferences"] = [*refs, owner]
        return admission.patched(obj, {**obj, "metadata": meta})

    async def validate(self, req: AdmissionRequest) -> AdmissionResponse:
        if req.operation == "DELETE":
            checks = self.mesh_checks if req.kind == "Mesh" else None
            if checks is not None and await checks.dataplane_count(req.name) > 0:
                return admission.errored(400, MESH_IN_USE)
            return admission.allowed()
        obj = req.object
        crd = crds.by_kind(req.kind)
        if obj is None or crd is None:
            return admission.errored(400, f"unsupported kind {req.kind!r}")
        name = _name(obj)
        raw_spec = obj.get("spec")
        default_mesh = crd.kind == "Mesh" and name == "default" and not raw_spec
        if crd.kind == "Zone" and self.mode != "global":
            return admission.denied("Zone resource can only be applied on CP with mode: [global]")
        try:
            spec = codec.decode(crd.type.spec_cls, raw_spec, "spec")
        except ValidationError as e:
            return admission.invalid(req.kind, name, e.violations)
        validator = crd.type.validator
        if validator is not None and not default_mesh:  # kuma-cp creates the default Mesh
            namespace = (obj.get("metadata") or {}).get("namespace") or req.namespace
            core_name = f"{name}.{namespace}" if crd.namespaced and namespace else name
            mesh = str(obj.get("mesh") or "") if crd.type.mesh_scoped else ""
            err = validator(core_name, mesh, spec)
            if err:
                return admission.invalid(req.kind, name, _prefixed("spec", err.violations))
        if crd.kind == "Mesh" and self.mesh_checks is not None:
            return await self._check_mesh(req, name, spec)
        return admission.allowed()

    async def _check_mesh(self, req: AdmissionRequest, name: str, spec: Any) -> AdmissionResponse:
        assert self.mesh_checks is not None
        previous = None
        if req.operation == "UPDATE" and req.old_object is not None:
            try:
                previous = codec.decode(
                    registry.MESH.spec_cls, req.old_object.get("spec"), ignore_unknown=True
                )
            except ValidationError:
                previous = None  # an old object Kuma could not read does not block the update
        try:
            await self.mesh_checks.validate(name, spec, previous)
        except ValidationError as e:
            return admission.invalid("Mesh", name, _prefixed("spec", e.violations))
        return admission.allowed()

    async def validate_service(self, req: AdmissionRequest) -> AdmissionResponse:
        obj = req.object
        if obj is None:
            return admission.errored(400, "the request has no Service object")
        annotations = (obj.get("metadata") or {}).get("annotations") or {}
        violations = []
        for port in (obj.get("spec") or {}).get("ports") or []:
            key = f"{port.get('port')}.service.kuma.io/protocol"
            if key in annotations and str(annotations[key]).lower() not in SUPPORTED_PROTOCOLS:
                path = Path().field("metadata").field("annotations").key(key)
                violations.append(
                    Violation(
                        str(path),
                        f'value "{annotations[key]}" is not valid. '
                        + allowed_values_hint(*SUPPORTED_PROTOCOLS),
                    )
                )
        if violations:
            return admission.invalid("Service", _name(obj), violations)
        return admission.allowed()

    async def validate_secret(self, req: AdmissionRequest) -> AdmissionResponse:
        obj = req.object
        if req.operation == "DELETE" or obj is None or obj.get("type") != KUMA_SECRET_TYPE:
            return admission.allowed()
        mesh_label = Path().field("metadata").field("labels").key(_MESH_LABEL)
        violations = []
        mesh = _secret_mesh(obj)
        if await self.lookup.mesh(mesh) is None:
            violations.append(Violation(str(mesh_label), "mesh does not exist"))
        if req.old_object is not None and _secret_mesh(req.old_object) != mesh:
            violations.append(
                Violation(
                    str(mesh_label),
                    "cannot change mesh of the Secret. Delete the Secret first and apply it again.",
                )
            )
        if not (obj.get("data") or {}).get("value"):
            violations.append(Violation("data.value", "cannot be empty."))
        if violations:
            return admission.invalid("Secret", _name(obj), violations)
        return admission.allowed()


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _secret_mesh(obj: Mapping[str, Any]) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return str(labels.get(_MESH_LABEL) or "default")


def _prefixed(prefix: str, violations: list[Violation]) -> list[Violation]:
    out = []
    for v in violations:
        if not v.field:
            field = prefix
        elif v.field.startswith("["):
            field = prefix + v.field
        else:
            field = f"{prefix}.{v.field}"
        out.append(Violation(field, v.message))
    return out
