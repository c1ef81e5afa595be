"""kumactl with Retry and Timeout, against a real control plane (see control_plane.py).

Nothing in kumactl knows these types by name: apply, get (table, YAML, JSON), get one and
delete all come from the registry entries.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
import yaml

from kuma.model import registry
from tests.cli.conftest import KumactlRunner
from tests.cli.control_plane import ControlPlane, running_control_plane

pytestmark = pytest.mark.e2e

RETRY = """\
type: Retry
mesh: default
name: web-to-backend
sources:
- match:
    kuma.io/service: web
destinations:
- match:
    kuma.io/service: backend
conf:
  http:
    numRetries: 5
    perTryTimeout: 200ms
    backOff:
      baseInterval: 20ms
  grpc:
    retryOn: [cancelled, unavailable]
  tcp:
    maxConnectAttempts: 3
"""

TIMEOUT = """\
type: Timeout
mesh: default
name: web-to-backend
sources:
- match:
    kuma.io/service: web
destinations:
- match:
    kuma.io/service: backend
conf:
  connectTimeout: 5s
  http:
    requestTimeout: 15s
    idleTimeout: 1h
"""


@pytest.fixture
def cp() -> Iterator[ControlPlane]:
    with running_control_plane() as plane:
        yield plane


@pytest.fixture
def kctl(kumactl: KumactlRunner, cp: ControlPlane) -> KumactlRunner:
    """kumactl pointed at `cp`, its clock 3h30m ahead (AGE reads `3h`)."""
    kumactl.config_file.parent.mkdir(parents=True, exist_ok=True)
    kumactl.config_file.write_text(
        "contexts:\n- controlPlane: test\n  name: test\ncontrolPlanes:\n- coordinates:\n"
        f"    apiServer:\n      url: {cp.url}\n  name: test\ncurrentContext: test\n"
    )
    kumactl.now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3, minutes=30)
    return kumactl


def ok(result: object) -> str:
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert result.stderr == "", result.stderr  # type: ignore[attr-defined]
    return result.stdout  # type: ignore[attr-defined,no-any-return]


def stored(cp: ControlPlane, type_name: str) -> list[tuple[str, str]]:
    async def names() -> list[tuple[str, str]]:
        items = (await cp.manager.list(registry.get(type_name))).items
        return [(r.meta.mesh, r.meta.name) for r in items]

    return cp.call(names)


@pytest.mark.parametrize(
    ("text", "type_name", "singular", "plural", "conf"),
    [
        (
            RETRY,
            "Retry",
            "retry",
            "retries",
            {
                "http": {
                    "numRetries": 5,
                    "perTryTimeout": "0.200s",
                    "backOff": {"baseInterval": "0.020s"},
                },
                "tcp": {"maxConnectAttempts": 3},
                "grpc": {"retryOn": ["cancelled", "unavailable"]},
            },
        ),
        (
            TIMEOUT,
            "Timeout",
            "timeout",
            "timeouts",
            {
                "connectTimeout": "5s",
                "http": {"requestTimeout": "15s", "idleTimeout": "3600s"},
            },
        ),
    ],
    ids=["Retry", "Timeout"],
)
def test_apply_get_delete(
    kctl: KumactlRunner,
    cp: ControlPlane,
    text: str,
    type_name: str,
    singular: str,
    plural: str,
    conf: dict[str, object],
) -> None:
    assert ok(kctl("apply", "-f", "-", input=text)) == ""
    assert stored(cp, type_name) == [("default", "web-to-backend")]

    assert ok(kctl("get", plural)) == (
        "MESH      NAME             AGE\ndefault   web-to-backend   3h\n"
    )
    assert ok(kctl("get", singular, "web-to-backend")) == (
        "MESH      NAME             AGE\ndefault   web-to-backend   3h\n"
    )

    one = yaml.safe_load(ok(kctl("get", singular, "web-to-backend", "-o", "yaml")))
    assert isinstance(one.pop("creationTime"), str)
    assert isinstance(one.pop("modificationTime"), str)
    assert one == {
        "type": type_name,
        "mesh": "default",
        "name": "web-to-backend",
        "sources": [{"match": {"kuma.io/service": "web"}}],
        "destinations": [{"match": {"kuma.io/service": "backend"}}],
        "conf": conf,
    }

    listed = json.loads(ok(kctl("get", plural, "-o", "json")))
    assert listed["total"] == 1
    assert [(i["type"], i["name"], i["conf"]) for i in listed["items"]] == [
        (type_name, "web-to-backend", conf)
    ]

    # YAML that kumactl printed can be applied again as it is
    assert ok(kctl("apply", "-f", "-", input=yaml.safe_dump(one))) == ""

    out = ok(kctl("delete", singular, "web-to-backend"))
    assert out == f'deleted {type_name} "web-to-backend"\n'
    assert stored(cp, type_name) == []
    assert ok(kctl("get", plural)) == "MESH   NAME   AGE\n"

    result = kctl("get", singular, "web-to-backend")
    assert result.exit_code == 1
    assert result.stderr == "Error: No resources found in default mesh\n"
    result = kctl("delete", singular, "web-to-backend")
    assert result.exit_code == 1
    assert result.stderr == f'Error: there is no {type_name} with name "web-to-backend"\n'


def test_invalid_retry_is_refused_with_kumas_paths(kctl: KumactlRunner, cp: ControlPlane) -> None:
    bad = RETRY.replace("maxConnectAttempts: 3", "maxConnectAttempts: 0").replace(
        "retryOn: [cancelled, unavailable]", "retryOn: [unavailable, unavailable]"
    )
    result = kctl("apply", "-f", "-", input=bad)
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "Error: Could not create a resource (Resource is not valid)\n"
        '* conf.grpc.retryOn: repeated value "unavailable" at indexes [0, 1]\n'
        "* conf.tcp.maxConnectAttempts: has to be greater than 0\n"
    )
    assert stored(cp, "Retry") == []


def test_invalid_timeout_is_refused_with_kumas_paths(kctl: KumactlRunner, cp: ControlPlane) -> None:
    bad = TIMEOUT.replace("requestTimeout: 15s", "requestTimeout: 0s") + "  grpc: {}\n"
    result = kctl("apply", "-f", "-", input=bad)
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "Error: Could not create a resource (Resource is not valid)\n"
        "* conf.http.requestTimeout: has to be greater than 0 when defined\n"
        "* conf.grpc: at least one timeout in section has to be defined\n"
    )
    assert stored(cp, "Timeout") == []
