"""AdmissionReview plumbing: parse a request, build the response (`admission.k8s.io/v1`).

The API server POSTs `{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
"request": {...}}` and reads back the same envelope with a `response`: `uid` echoed, `allowed`,
for a mutation a base64 RFC 6902 `patch` with `patchType: JSONPatch`, and for a refusal a
`status` (a `metav1.Status`: code, reason, message, and for invalid objects `details.causes`
with one `{type: FieldValueInvalid, field, message}` per violation, Kuma's field paths).
`admission.k8s.io/v1beta1` requests are answered in v1beta1 (the shapes are the same).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kuma.errors import Violation
from kuma.k8s.webhooks.jsonpatch import create_patch

__all__ = [
    "ADMISSION_V1",
    "AdmissionRequest",
    "AdmissionResponse",
    "BadReview",
    "allowed",
    "denied",
    "errored",
    "invalid",
    "parse_review",
    "patched",
]

ADMISSION_V1 = "admission.k8s.io/v1"
_VERSIONS = (ADMISSION_V1, "admission.k8s.io/v1beta1")


class BadReview(Exception):
    """The body is not an AdmissionReview request."""


@dataclass(frozen=True)
class AdmissionRequest:
    uid: str
    api_version: str
    """Version of the AdmissionReview envelope (the answer uses the same)."""
    kind: str
    """Kind of the object under review: `Pod`, `TrafficRoute`."""
    group: str
    operation: str
    """CREATE, UPDATE, DELETE or CONNECT."""
    name: str
    namespace: str
    object: dict[str, Any] | None
    old_object: dict[str, Any] | None


@dataclass
class AdmissionResponse:
    allowed: bool
    status: dict[str, Any] | None = None
    patch: list[dict[str, Any]] = field(default_factory=list)

    def review(self, request: AdmissionRequest | None) -> dict[str, Any]:
        """The AdmissionReview envelope answering `request` (None: unparseable request)."""
        body: dict[str, Any] = {
            "uid": request.uid if request else "",
            "allowed": self.allowed,
        }
        if self.status is not None:
            body["status"] = self.status
        if self.patch:
            raw = json.dumps(self.patch, separators=(",", ":")).encode()
            body["patchType"] = "JSONPatch"
            body["patch"] = base64.b64encode(raw).decode()
        return {
            "apiVersion": request.api_version if request else ADMISSION_V1,
            "kind": "AdmissionReview",
            "response": body,
        }


def parse_review(body: Any) -> AdmissionRequest:
    """The `request` of an AdmissionReview; BadReview when the envelope is wrong."""
    if not isinstance(body, dict):
        raise BadReview("the body is not an AdmissionReview object")
    version = body.get("apiVersion")
    if body.get("kind") != "AdmissionReview" or version not in _VERSIONS:
        raise BadReview(
            f"expected kind AdmissionReview in {' or '.join(_VERSIONS)}, "
            f"got {body.get('kind')!r} in {version!r}"
        )
    req = body.get("request")
    if not isinstance(req, dict) or not isinstance(req.get("uid"), str):
        raise BadReview("the AdmissionReview has no request (or no request.uid)")
    raw_kind = req.get("kind")
    kind: dict[str, Any] = raw_kind if isinstance(raw_kind, dict) else {}
    obj = req.get("object")
    old = req.get("oldObject")
    return AdmissionRequest(
        uid=req["uid"],
        api_version=str(version),
        kind=str(kind.get("kind", "")),
        group=str(kind.get("group", "")),
        operation=str(req.get("operation", "")),
        name=str(req.get("name") or ""),
        namespace=str(req.get("namespace") or ""),
        object=obj if isinstance(obj, dict) else None,
        old_object=old if isinstance(old, dict) else None,
    )


def allowed(message: str = "") -> AdmissionResponse:
    status: dict[str, Any] = {"code": 200}
    if message:
        status["message"] = message
    return AdmissionResponse(True, status)


def patched(original: Mapping[str, Any], mutated: Mapping[str, Any]) -> AdmissionResponse:
    """Allowed, with the patch turning `original` into `mutated` (none when they are equal)."""
    return AdmissionResponse(True, {"code": 200}, create_patch(original, mutated))


def denied(message: str, *, code: int = 403, reason: str = "Forbidden") -> AdmissionResponse:
    return AdmissionResponse(
        False,
        {"metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code},
    )


def errored(code: int, message: str) -> AdmissionResponse:
    """The webhook could not decide (bad request, cluster unreachable): refused with `code`."""
    return AdmissionResponse(False, {"metadata": {}, "code": code, "message": message})


def invalid(kind: str, name: str, violations: Iterable[Violation]) -> AdmissionResponse:
    """422 Invalid with one cause per violation (Kuma's `convertValidationErrorOf`)."""
    items = list(violations)
    message = "; ".join(f"{v.field}: {v.message}" for v in items)
    details: dict[str, Any] = {"name": name, "kind": kind}
    if items:
        details["causes"] = [
            {"type": "FieldValueInvalid", "message": v.message, "field": v.field} for v in items
        ]
    return AdmissionResponse(
        False,
        {
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "Invalid",
            "details": details,
            "code": 422,
        },
    )
