"""`kumactl apply` before anything is sent: input, templating, parsing, checks, --dry-run.

The config points at a port nobody listens on: an error that is not a connection error proves
the document was refused before kumactl talked to any control plane.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.cli.conftest import KumactlRunner, StaticServer, assert_golden

DATAPLANE_TEMPLATE = """\
name: sample
mesh: default
type: Dataplane
networking:
  address: "{{ address }}"
"""


@pytest.fixture
def offline(kumactl: KumactlRunner) -> KumactlRunner:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kumactl.config_file.parent.mkdir(parents=True)
    kumactl.config_file.write_text(
        "contexts:\n- controlPlane: down\n  name: down\ncontrolPlanes:\n- coordinates:\n"
        f"    apiServer:\n      url: http://127.0.0.1:{port}\n  name: down\ncurrentContext: down\n"
    )
    return kumactl


def test_dry_run_prints_the_resolved_resource_like_kuma(
    offline: KumactlRunner, tmp_path: Path
) -> None:
    # Kuma's "should print configuration with resolved variable without applying"
    f = tmp_path / "dp.yaml"
    f.write_text(DATAPLANE_TEMPLATE)
    result = offline("apply", "-f", str(f), "-v", "address=2.2.2.2", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        'creationTime: "1970-01-01T00:00:00Z"\n'
        "mesh: default\n"
        'modificationTime: "1970-01-01T00:00:00Z"\n'
        "name: sample\n"
        "networking:\n"
        "  address: 2.2.2.2\n"
        "type: Dataplane\n"
    )


def test_dry_run_of_many_documents_from_stdin(offline: KumactlRunner) -> None:
    text = (
        "type: Mesh\nname: {{mesh}}\n---\n"
        + DATAPLANE_TEMPLATE.replace("default", "{{mesh}}")
        + "  inbound:\n  - port: 8080\n    servicePort: 80\n    tags:\n"
        "      kuma.io/service: web\n      version: '{{v.major}}.{{v.minor}}'\n"
        "---\n"
        "type: TrafficPermission\nname: all\nmesh: {{mesh}}\n"
        "sources:\n- match:\n    kuma.io/service: '*'\n"
        "destinations:\n- match:\n    kuma.io/service: '*'\n"
    )
    result = offline(
        "apply", "-f", "-", "--dry-run", "-v", "mesh=demo,address=10.0.0.1",
        "-v", "v.major=1", "--var", "v.minor=0", input=text,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_golden("apply-dry-run-multi.golden.yaml", result.stdout)


def test_no_file_flag_reads_stdin(offline: KumactlRunner) -> None:
    result = offline("apply", "--dry-run", input=DATAPLANE_TEMPLATE)
    assert result.exit_code == 0, result.output
    assert "networking: {}\n" in result.stdout  # the unset variable rendered empty


def test_file_from_a_url(offline: KumactlRunner, static_server: StaticServer) -> None:
    static_server.body = DATAPLANE_TEMPLATE.encode()
    static_server.content_type = "application/yaml"
    url = f"{static_server.url}/testdata/dp.yaml"
    result = offline("apply", "-f", url, "-v", "address=1.1.1.1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "  address: 1.1.1.1\n" in result.stdout
    assert static_server.requests == ["/testdata/dp.yaml"]

    static_server.status = 404
    result = offline("apply", "-f", url)
    assert result.exit_code == 1
    assert result.stderr == f"Error: error while retrieving URL: {url} answered 404\n"


def test_missing_file(offline: KumactlRunner, tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = offline("apply", "-f", str(missing))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: error while reading provided file: open {missing}: no such file or directory\n"
    )


@pytest.mark.parametrize(
    ("name", "document", "error"),
    [
        # Kuma's "should fail on invalid resource" table
        (
            "no-mesh",
            "type: Dataplane\nname: dp-1\n",
            "YAML contains invalid resource: Mesh field cannot be empty",
        ),
        (
            "no-name",
            "type: Dataplane\nmesh: default\n",
            "YAML contains invalid resource: Name field cannot be empty",
        ),
        (
            "invalid-data",
            "type: Dataplane\nname: dp-1\nmesh: default\nnetworking:\n  inbound: 0\n",
            "YAML contains invalid resource: networking.inbound: must be a list, got a number",
        ),
        (
            "unknown-type",
            "type: Gateway\nname: gw\nmesh: default\n",
            'YAML contains invalid resource: unknown resource type "Gateway". Known types: Mesh, '
            "Dataplane, DataplaneInsight, HealthCheck, ProxyTemplate, TrafficPermission, TrafficLog, "
            "TrafficRoute, TrafficTrace, FaultInjection, CircuitBreaker, Secret, Zone, ZoneInsight, "
            "Retry, Timeout",
        ),
        (
            "unknown-field",
            "type: Mesh\nname: m\nmtls:\n  ca:\n    builtin: {}\n",
            "YAML contains invalid resource: mtls.ca: unknown field",
        ),
        (
            "bad-name",
            "type: TrafficRoute\nname: Route_1\nmesh: default\n",
            "name: invalid characters. Valid characters are numbers, lowercase latin letters and "
            "'-', '_' symbols.",
        ),
        (
            "bad-mesh",
            "type: TrafficRoute\nname: r\nmesh: My.Mesh\n",
            "mesh: invalid characters. Valid characters are numbers, lowercase latin letters and "
            "'-', '_' symbols.",
        ),
        (
            "not-an-object",
            "- a\n- b\n",
            "YAML contains invalid resource: a resource must be an object, got a list",
        ),
        (
            "malformed-yaml",
            "type: Mesh\nname: [unclosed\n",
            "YAML contains invalid resource: expected ',' or ']', but got '<stream end>' (line 3, column 1)",
        ),
        (
            "template",
            "name: {{ name\n",
            "error compiling config from template: line 1: unmatched open tag",
        ),
    ],
)
def test_invalid_input_is_refused_before_sending(
    offline: KumactlRunner, name: str, document: str, error: str
) -> None:
    result = offline("apply", "-f", "-", input=document)
    assert result.exit_code == 1, result.output
    assert result.stderr == f"Error: {error}\n", name
    assert result.stdout == ""


def test_a_bad_document_anywhere_stops_the_whole_input(offline: KumactlRunner) -> None:
    good = "type: Mesh\nname: demo\n"
    bad = "type: TrafficRoute\nname: r1\n"
    result = offline("apply", "-f", "-", input=f"{good}---\n{good}---\n{bad}")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: YAML contains invalid resource: Mesh field cannot be empty (document 3)\n"
    )
    result = offline("apply", "-f", "-", input=f"{good}---\nname: [x\n---\n{good}")
    assert result.stderr.startswith("Error: YAML contains invalid resource: expected ',' or ']'")
    assert result.stderr.endswith("(line 5, column 1) (document 2)\n")
