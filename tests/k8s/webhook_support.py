"""Helpers for the webhook tests: an AdmissionReview client and an RFC 6902 patch applier.

The applier is written from RFC 6902/6901 independently of kuma.k8s.webhooks.jsonpatch (which
only creates patches), so a wrong patch shows up as a wrong pod or as an error here.
"""

from __future__ import annotations

import base64
import copy
import json
import os
from pathlib import Path
from typing import Any

import httpx
import yaml

from kuma.config import load_config
from kuma.k8s.webhooks import DictLookup, build_webhook_app, injector_from_config

TESTDATA = Path(__file__).parent / "testdata" / "webhooks"
UPDATE = os.environ.get("UPDATE_GOLDEN_FILES", "").lower() == "true"


def admission_env(directory: Path) -> tuple[dict[str, str], Path]:
    """What kuma-cp needs to run in Kubernetes mode: a cert dir with a trustme certificate for
    `localhost` and a free admission port, as KUMA_* variables; and the CA file to trust."""
    import trustme

    from tests.support.procs import free_port

    ca = trustme.CA()
    cert = ca.issue_cert("kuma-control-plane.kuma-system.svc", "localhost", "127.0.0.1")
    cert_dir = directory / "admission-tls"
    cert_dir.mkdir(parents=True, exist_ok=True)
    cert.cert_chain_pems[0].write_to_path(str(cert_dir / "tls.crt"))
    cert.private_key_pem.write_to_path(str(cert_dir / "tls.key"))
    ca_file = directory / "admission-ca.crt"
    ca.cert_pem.write_to_path(str(ca_file))
    env = {
        "KUMA_ENVIRONMENT": "kubernetes",
        "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT": str(free_port()),
        "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR": str(cert_dir),
    }
    return env, ca_file


def review(
    kind: str,
    obj: Any,
    *,
    operation: str = "CREATE",
    namespace: str = "",
    group: str = "kuma.io",
    version: str = "v1alpha1",
    old: Any = None,
    uid: str = "00000000-0000-0000-0000-0000000000aa",
) -> dict[str, Any]:
    """An AdmissionReview request as the API server sends it."""
    meta = obj.get("metadata", {}) if isinstance(obj, dict) else {}
    plural = kind.lower() + ("es" if kind.endswith("sh") else "s")
    req: dict[str, Any] = {
        "uid": uid,
        "kind": {"group": group, "version": version, "kind": kind},
        "resource": {"group": group, "version": version, "resource": plural},
        "name": meta.get("name", ""),
        "operation": operation,
        "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters"]},
        "object": obj,
        "oldObject": old,
        "dryRun": False,
    }
    if namespace:
        req["namespace"] = namespace
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


def make_app(config_file: str = "inject.config.yaml", **lookup: Any) -> Any:
    cfg = load_config(str(TESTDATA / config_file), env={})
    dicts = DictLookup(**lookup)
    return build_webhook_app(injector_from_config(cfg, dicts), dicts)


async def post(app: Any, path: str, body: Any) -> dict[str, Any]:
    """POST an AdmissionReview; the answer's envelope is checked, its `response` returned."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://webhook") as client:
        r = await client.post(path, json=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    assert answer["kind"] == "AdmissionReview"
    if isinstance(body, dict) and isinstance(body.get("request"), dict):
        assert answer["response"]["uid"] == body["request"]["uid"]
    return dict(answer["response"])


def decoded_patch(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    assert isinstance(ops, list)
    return ops


# -- RFC 6902 ---------------------------------------------------------------------------------


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    assert pointer.startswith("/"), f"bad JSON pointer {pointer!r}"
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parent(doc: Any, tokens: list[str]) -> Any:
    for t in tokens:
        doc = doc[int(t)] if isinstance(doc, list) else doc[t]
    return doc


def apply_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        tokens = _tokens(op["path"])
        if not tokens:
            assert op["op"] in ("add", "replace")
            doc = copy.deepcopy(op["value"])
            continue
        parent = _parent(doc, tokens[:-1])
        last = tokens[-1]
        if op["op"] == "add":
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                assert 0 <= index <= len(parent), f"add beyond the end: {op}"
                parent.insert(index, copy.deepcopy(op["value"]))
            else:
                parent[last] = copy.deepcopy(op["value"])
        elif op["op"] == "replace":
            if isinstance(parent, list):
                parent[int(last)] = copy.deepcopy(op["value"])
            else:
                assert last in parent, f"replace of a missing member: {op}"
                parent[last] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                del parent[last]
        else:
            raise AssertionError(f"unexpected op {op}")
    return doc


def check_golden(name: str, actual: Any) -> None:
    path = TESTDATA / name
    text = yaml.safe_dump(actual, sort_keys=True, default_flow_style=False)
    if UPDATE:
        path.write_text(text)
    assert path.exists(), f"{name} is missing (UPDATE_GOLDEN_FILES=true writes it)"
    assert yaml.safe_load(path.read_text()) == actual, f"{name} differs (UPDATE_GOLDEN_FILES=true)"
