"""kumactl against a real control plane: kuma.api's REST API and admin server, served by
hypercorn on loopback over a memory store (see control_plane.py).

Times the store sets are real, so table tests pin kumactl's clock 3h30m after the test
started (AGE cells read `3h`) and YAML/JSON goldens have their meta times replaced by `<time>`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kuma.model import registry
from tests.cli.conftest import KumactlRunner, assert_golden
from tests.cli.control_plane import ControlPlane, running_control_plane

pytestmark = pytest.mark.e2e

DATAPLANE = """\
type: Dataplane
mesh: default
name: backend-01
networking:
  address: 127.0.0.1
  inbound:
  - port: 10001
    servicePort: 10011
    tags:
      kuma.io/service: backend
      version: "{{version}}"
"""

PERMISSION = """\
type: TrafficPermission
mesh: default
name: web-to-backend
sources:
- match:
    kuma.io/service: web
destinations:
- match:
    kuma.io/service: backend
"""

# Two streams, the second one connected; seen at 2020-10-22T12:00:00Z (see conftest.NOW).
INSIGHT = """\
type: DataplaneInsight
mesh: default
name: backend-01
subscriptions:
- id: "1"
  controlPlaneInstanceId: cp-1
  connectTime: "2020-10-22T08:00:00Z"
  disconnectTime: "2020-10-22T09:00:00Z"
  status:
    lastUpdateTime: "2020-10-22T08:30:00Z"
    total:
      responsesSent: "20"
      responsesRejected: "2"
- id: "2"
  controlPlaneInstanceId: cp-1
  connectTime: "2020-10-22T09:58:00Z"
  status:
    lastUpdateTime: "2020-10-22T11:59:30Z"
    total:
      responsesSent: "10"
      responsesRejected: "1"
mTLS:
  certificateExpirationTime: "2020-10-23T09:58:00Z"
  lastCertificateRegeneration: "2020-10-22T09:58:00Z"
  certificateRegenerations: 3
"""

_META_TIME = re.compile(r'("?(?:creationTime|modificationTime)"?: )"[^"]*"')


def normalize(text: str) -> str:
    """Meta times are set by the store when the test runs."""
    return _META_TIME.sub(r'\1"<time>"', text)


@pytest.fixture
def cp() -> Iterator[ControlPlane]:
    with running_control_plane() as plane:
        yield plane


@pytest.fixture
def kctl(kumactl: KumactlRunner, cp: ControlPlane) -> KumactlRunner:
    """kumactl with `cp` as its active control plane and its clock 3h30m ahead."""
    kumactl.config_file.parent.mkdir(parents=True, exist_ok=True)
    kumactl.config_file.write_text(
        "contexts:\n- controlPlane: test\n  name: test\ncontrolPlanes:\n- coordinates:\n"
        f"    apiServer:\n      url: {cp.url}\n  name: test\ncurrentContext: test\n"
    )
    kumactl.now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3, minutes=30)
    return kumactl


def store_snapshot(cp: ControlPlane) -> dict[tuple[str, str, str], str]:
    """Every resource of every type: key -> spec JSON."""

    async def snapshot() -> dict[tuple[str, str, str], str]:
        out = {}
        for rtype in registry.all_types():
            for r in (await cp.manager.list(rtype)).items:
                out[(rtype.name, r.meta.mesh, r.meta.name)] = r.spec_json()
        return out

    return cp.call(snapshot)


def ok(result: object) -> str:
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert result.stderr == "", result.stderr  # type: ignore[attr-defined]
    return result.stdout  # type: ignore[attr-defined,no-any-return]


def test_quickstart_flow(kumactl: KumactlRunner, cp: ControlPlane, tmp_path: Path) -> None:
    kumactl.now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=3, minutes=30)

    # point kumactl at the control plane
    out = ok(kumactl("config", "control-planes", "add", "--name", "test", "--address", cp.url))
    assert out == 'added Control Plane "test"\nswitched active Control Plane to "test"\n'
    out = ok(kumactl("config", "control-planes", "list"))
    assert out == (
        "ACTIVE   NAME    ADDRESS\n"
        "         local   http://localhost:5681\n"
        f"*        test    {cp.url}\n"
    )
    config = kumactl.config_file.read_text().replace(cp.url, "<url>")
    assert_golden("e2e/config-after-add.yaml", config)

    # apply a Dataplane and a TrafficPermission from one file
    f = tmp_path / "backend.yaml"
    f.write_text(DATAPLANE + "---\n" + PERMISSION)
    assert ok(kumactl("apply", "-f", str(f), "-v", "version=v1")) == ""
    snapshot = store_snapshot(cp)
    assert ("Dataplane", "default", "backend-01") in snapshot
    assert ("TrafficPermission", "default", "web-to-backend") in snapshot

    # get them in all three formats, as lists and one by one
    for noun, name in (("dataplane", "backend-01"), ("traffic-permission", "web-to-backend")):
        for listed in (True, False):
            args = [f"{noun}s"] if listed else [noun, name]
            for fmt in ("table", "yaml", "json"):
                out = ok(kumactl("get", *args, "-o", fmt))
                golden = f"e2e/get-{args[0]}{'' if listed else '-one'}.{fmt}"
                assert_golden(golden, normalize(out))

    # inspect dataplanes, with what the control plane knows of its streams
    ok(kumactl("apply", "-f", "-", input=INSIGHT))
    kumactl.now = dt.datetime(2020, 10, 22, 12, 0, 0, tzinfo=dt.UTC)
    for fmt in ("table", "yaml", "json"):
        out = ok(kumactl("inspect", "dataplanes", "-o", fmt))
        assert_golden(f"e2e/inspect-dataplanes.{fmt}", normalize(out))

    # delete both
    out = ok(kumactl("delete", "traffic-permission", "web-to-backend"))
    assert out == 'deleted TrafficPermission "web-to-backend"\n'
    out = ok(kumactl("delete", "dataplane", "backend-01"))
    assert out == 'deleted Dataplane "backend-01"\n'
    assert set(store_snapshot(cp)) == {("Mesh", "", "default")}

    result = kumactl("delete", "dataplane", "backend-01")
    assert result.exit_code == 1
    assert result.stderr == 'Error: there is no Dataplane with name "backend-01"\n'
    result = kumactl("get", "dataplane", "backend-01")
    assert result.exit_code == 1
    assert result.stderr == "Error: No resources found in default mesh\n"
    assert ok(kumactl("get", "dataplanes")) == "MESH   NAME   TAGS   AGE\n"


def test_apply_updates_an_existing_resource(kctl: KumactlRunner, cp: ControlPlane) -> None:
    ok(kctl("apply", "-v", "version=v1", input=DATAPLANE))
    ok(kctl("apply", "-v", "version=v2", input=DATAPLANE))
    out = ok(kctl("get", "dataplanes"))
    assert out == (
        "MESH      NAME         TAGS                                 AGE\n"
        "default   backend-01   kuma.io/service=backend version=v2   3h\n"
    )


def test_meshes_table(kctl: KumactlRunner) -> None:
    mesh = """\
type: Mesh
name: mesh1
mtls:
  enabledBackend: builtin-1
  backends:
  - name: builtin-1
    type: builtin
  - name: builtin-2
    type: builtin
metrics:
  enabledBackend: prometheus-1
  backends:
  - name: prometheus-1
    type: prometheus
    conf:
      port: 1234
      path: /non-standard-path
logging:
  backends:
  - name: logstash
    type: tcp
    conf:
      address: 127.0.0.1:5000
  - name: file
    type: file
    conf:
      path: /tmp/service.log
tracing:
  backends:
  - name: zipkin-us
    type: zipkin
    conf:
      url: http://zipkin.us:8080/v1/spans
  - name: zipkin-eu
    type: zipkin
    conf:
      url: http://zipkin.eu:8080/v1/spans
---
type: Mesh
name: mesh2
"""
    ok(kctl("apply", input=mesh))
    out = ok(kctl("get", "meshes"))
    assert out == (
        "NAME      mTLS                METRICS                   LOGGING          TRACING                AGE\n"
        "default   off                 off                       off              off                    3h\n"
        "mesh1     builtin/builtin-1   prometheus/prometheus-1   logstash, file   zipkin-us, zipkin-eu   3h\n"
        "mesh2     off                 off                       off              off                    3h\n"
    )
    assert_golden(
        "e2e/get-mesh-one.yaml", normalize(ok(kctl("get", "mesh", "mesh1", "-o", "yaml")))
    )
    result = kctl("get", "mesh", "mesh3")
    assert result.exit_code == 1
    assert result.stderr == "Error: No resources found in mesh3 mesh\n"


def test_pagination(kctl: KumactlRunner) -> None:
    routes = "---\n".join(
        f"type: TrafficRoute\nmesh: default\nname: route-{i}\n"
        "sources:\n- match:\n    kuma.io/service: '*'\n"
        "destinations:\n- match:\n    kuma.io/service: '*'\n"
        "conf:\n- weight: 100\n  destination:\n    kuma.io/service: backend\n"
        for i in range(3)
    )
    ok(kctl("apply", input=routes))
    out = ok(kctl("get", "traffic-routes", "--size", "2"))
    assert out == (
        "MESH      NAME      AGE\n"
        "default   route-0   3h\n"
        "default   route-1   3h\n"
        "\n"
        "Rerun command with --offset=2 argument to retrieve more resources\n"
    )
    out = ok(kctl("get", "traffic-routes", "--size", "2", "--offset", "2"))
    assert out == "MESH      NAME      AGE\ndefault   route-2   3h\n"
    # YAML/JSON lists keep the total and, like kumactl, no `next`
    out = ok(kctl("get", "traffic-routes", "--size", "1", "-o", "json"))
    assert '"total": 3,' in out
    assert out.endswith('  "next": null\n}\n')

    result = kctl("get", "traffic-routes", "--offset", "x")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: Could not retrieve resources (Invalid offset)\n* offset: Invalid format\n"
    )
    result = kctl("get", "traffic-routes", "--size", "2000")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Could not retrieve resources (Invalid page size)\n"
        "* size: Invalid page size of 2000. Maximum page size is 1000\n"
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("malformed-yaml", PERMISSION + "---\ntype: Mesh\nname: [broken\n"),
        ("unknown-type", PERMISSION + "---\ntype: Gateway\nmesh: default\nname: gw\n"),
        (
            "invalid-name",
            PERMISSION + "---\n" + PERMISSION.replace("web-to-backend", "Web.To.Backend"),
        ),
        ("invalid-mesh", PERMISSION.replace("mesh: default", "mesh: Default")),
        ("missing-mesh", PERMISSION + "---\n" + PERMISSION.replace("mesh: default\n", "")),
        ("missing-name", PERMISSION.replace("name: web-to-backend\n", "")),
        ("unknown-field", PERMISSION + "---\n" + PERMISSION + "priority: 1\n"),
        ("server-mesh-not-found", PERMISSION.replace("mesh: default", "mesh: nowhere")),
        (
            "server-invalid-spec",
            DATAPLANE.replace("10001", "70000")
            .replace("{{version}}", "v1")
            .replace("kuma.io/service: backend", "kuma.io/service: ''"),
        ),
        ("server-invalid-selectors", PERMISSION.replace("kuma.io/service: web", "version: v1")),
    ],
)
def test_invalid_input_changes_nothing(
    kctl: KumactlRunner, cp: ControlPlane, name: str, text: str
) -> None:
    before = store_snapshot(cp)
    result = kctl("apply", "-f", "-", input=text)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert_golden(f"e2e/apply-error-{name}.txt", result.stderr)
    assert store_snapshot(cp) == before


def test_server_rejection_in_the_middle_says_what_was_applied(
    kctl: KumactlRunner, cp: ControlPlane
) -> None:
    bad = PERMISSION.replace("web-to-backend", "second").replace("mesh: default", "mesh: nowhere")
    third = PERMISSION.replace("web-to-backend", "third")
    result = kctl("apply", "-f", "-", input=f"{PERMISSION}---\n{bad}---\n{third}")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: Could not create a resource (Mesh is not found)\n"
        "* mesh: mesh of name nowhere is not found\n"
        'Resource 2 of 3 (TrafficPermission "second") was not applied: the 1 before it was '
        "applied, the 1 after it was not.\n"
    )
    names = {key[2] for key in store_snapshot(cp) if key[0] == "TrafficPermission"}
    assert names == {"web-to-backend"}


def test_secrets_go_through_the_admin_server(kctl: KumactlRunner, cp: ControlPlane) -> None:
    ok(kctl("apply", input="type: Secret\nmesh: default\nname: sec-1\ndata: dGVzdAo=\n"))
    assert ("Secret", "default", "sec-1") in store_snapshot(cp)
    assert ok(kctl("get", "secrets")) == "MESH      NAME    AGE\ndefault   sec-1   3h\n"
    out = normalize(ok(kctl("get", "secret", "sec-1", "-o", "yaml")))
    assert out == (
        'creationTime: "<time>"\ndata: dGVzdAo=\nmesh: default\nmodificationTime: "<time>"\n'
        "name: sec-1\ntype: Secret\n"
    )
    assert ok(kctl("delete", "secret", "sec-1")) == 'deleted Secret "sec-1"\n'
    assert kctl("get", "secret", "sec-1").stderr == "Error: No resources found in default mesh\n"
    # `get secrets` has no paging flags
    assert kctl("get", "secrets", "--size", "1").stderr.startswith("Error: unknown flag: --size\n")


def test_zones(kctl: KumactlRunner, cp: ControlPlane) -> None:
    ok(kctl("apply", input="type: Zone\nname: zone-1\ningress:\n  address: 192.168.0.2:10000\n"))
    assert ok(kctl("get", "zones")) == (
        "NAME     INGRESS             AGE\nzone-1   192.168.0.2:10000   3h\n"
    )
    assert ok(kctl("get", "zone", "zone-1", "-o", "json")).startswith(
        '{\n  "type": "Zone",\n  "name": "zone-1",\n'
    )
    out = ok(kctl("inspect", "zones"))
    assert out.splitlines()[0].split() == [
        "MESH", "NAME", "INGRESS", "STATUS", "LAST", "CONNECTED", "AGO", "LAST", "UPDATED",
        "AGO", "TOTAL", "UPDATES", "TOTAL", "ERRORS",
    ]  # fmt: skip
    assert "zone-1   192.168.0.2:10000   Offline   never" in out
    assert ok(kctl("delete", "zone", "zone-1")) == 'deleted Zone "zone-1"\n'
    assert kctl("get", "zone", "zone-1").stderr == "Error: No zone resources found\n"


def test_inspect_filters(kctl: KumactlRunner, cp: ControlPlane) -> None:
    ok(kctl("apply", "-v", "version=v1", input=DATAPLANE))
    ok(kctl("apply", "-v", "version=v2", input=DATAPLANE.replace("backend-01", "backend-02")))
    gateway = (
        "type: Dataplane\nmesh: default\nname: gateway-01\nnetworking:\n  address: 127.0.0.2\n"
        "  gateway:\n    tags:\n      kuma.io/service: edge\n"
    )
    ok(kctl("apply", input=gateway))

    def names(*args: str) -> list[str]:
        out = ok(kctl("inspect", "dataplanes", *args))
        return [line.split()[1] for line in out.splitlines()[1:]]

    assert names() == ["backend-01", "backend-02", "gateway-01"]
    assert names("--tag", "version=v2") == ["backend-02"]
    assert names("--tag", "kuma.io/service=backend", "--tag", "version=*") == [
        "backend-01",
        "backend-02",
    ]
    assert names("--gateway") == ["gateway-01"]
    assert names("-m", "default", "--tag", "version=v3") == []


def test_delete_unknown_type_and_other_mesh(kctl: KumactlRunner, cp: ControlPlane) -> None:
    result = kctl("delete", "gateway", "x")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: unknown TYPE: gateway. Allowed values: mesh, dataplane, healthcheck, "
        "proxytemplate, traffic-log, traffic-permission, traffic-route, traffic-trace, "
        "fault-injection, circuit-breaker, retry, timeout, secret, zone\n"
    )
    ok(kctl("apply", input="type: Mesh\nname: demo\n"))
    ok(kctl("apply", input=PERMISSION.replace("mesh: default", "mesh: demo")))
    result = kctl("delete", "traffic-permission", "web-to-backend")
    assert result.stderr == 'Error: there is no TrafficPermission with name "web-to-backend"\n'
    out = ok(kctl("delete", "traffic-permission", "web-to-backend", "--mesh", "demo"))
    assert out == 'deleted TrafficPermission "web-to-backend"\n'
    assert ok(kctl("delete", "mesh", "demo")) == 'deleted Mesh "demo"\n'
    assert ("Mesh", "", "demo") not in store_snapshot(cp)


def test_add_existing_control_plane_needs_overwrite(kctl: KumactlRunner, cp: ControlPlane) -> None:
    result = kctl("config", "control-planes", "add", "--name", "test", "--address", cp.url)
    assert result.exit_code == 1
    assert result.stderr == (
        'Error: Control Plane with name "test" already exists. Use --overwrite to replace an '
        "existing one.\n"
    )
    out = ok(
        kctl(
            "config", "control-planes", "add", "--name", "test", "--address", cp.url + "/",
            "--overwrite", "--admin-client-cert", "/tmp/c.pem", "--admin-client-key", "/tmp/k.pem",
        )
    )  # fmt: skip
    assert out == 'added Control Plane "test"\nswitched active Control Plane to "test"\n'
    text = kctl.config_file.read_text()
    assert "clientCert: /tmp/c.pem\n" in text
    assert f"url: {cp.url}/\n" in text


def test_version_mismatch_warning(kumactl: KumactlRunner) -> None:
    with running_control_plane(version="9.9.9") as other:
        kumactl.config_file.parent.mkdir(parents=True)
        kumactl.config_file.write_text(
            f"contexts:\n- controlPlane: x\n  name: x\ncontrolPlanes:\n- coordinates:\n"
            f"    apiServer:\n      url: {other.url}\n  name: x\ncurrentContext: x\n"
        )
        kumactl.version = "0.1.0"
        result = kumactl("get", "meshes")
        assert result.exit_code == 0
        assert result.stderr == (
            "Warning: Your kumactl version is 0.1.0 which is not the same as 9.9.9 for CP. "
            "Update your kumactl.\n"
        )
        kumactl.version = "9.9.9"
        assert kumactl("get", "meshes").stderr == ""


def test_read_only_control_plane(kumactl: KumactlRunner) -> None:
    with running_control_plane(read_only=True) as ro:
        kumactl.config_file.parent.mkdir(parents=True)
        kumactl.config_file.write_text(
            f"contexts:\n- controlPlane: x\n  name: x\ncontrolPlanes:\n- coordinates:\n"
            f"    apiServer:\n      url: {ro.url}\n  name: x\ncurrentContext: x\n"
        )
        result = kumactl("apply", input=PERMISSION)
        assert result.exit_code == 1
        assert result.stderr.startswith(
            "Error: On Kubernetes you cannot change the state of Kuma resources with 'kumactl "
            "apply' or via the HTTP API."
        )
        result = kumactl("delete", "mesh", "default")
        assert result.exit_code == 1
        assert "you cannot change the state of Kuma resources" in result.stderr


def test_unreachable_control_plane(kumactl: KumactlRunner) -> None:
    with running_control_plane() as gone:
        url = gone.url
    kumactl.config_file.parent.mkdir(parents=True)
    kumactl.config_file.write_text(
        f"contexts:\n- controlPlane: x\n  name: x\ncontrolPlanes:\n- coordinates:\n"
        f"    apiServer:\n      url: {url}\n  name: x\ncurrentContext: x\n"
    )
    result = kumactl("get", "meshes")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f'Error: failed to list Meshes: Get "{url}/meshes": could not connect to the Control '
        f"Plane at {url}: "
    )


def _subprocess_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA")}
    env["HOME"] = str(home)
    return env


def test_python_m_kuma_cli_smoke(cp: ControlPlane, tmp_path: Path) -> None:
    env = _subprocess_env(tmp_path)
    add = subprocess.run(
        [sys.executable, "-m", "kuma.cli", "config", "control-planes", "add",
         "--name", "test", "--address", cp.url],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    assert (tmp_path / ".kumactl" / "config").stat().st_mode & 0o777 == 0o600
    get = subprocess.run(
        [sys.executable, "-m", "kuma.cli", "get", "meshes", "-o", "json"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert get.returncode == 0, get.stderr
    assert '"name": "default"' in get.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "kuma.cli", "delete", "dataplane", "nope"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr == 'Error: there is no Dataplane with name "nope"\n'


def test_console_script_smoke(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "kumactl"
    if not script.exists():
        pytest.fail(f"the kumactl console script is not installed next to {sys.executable}")
    out = subprocess.run(
        [str(script), "version"],
        capture_output=True, text=True, env=_subprocess_env(tmp_path), timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Kuma: ")
