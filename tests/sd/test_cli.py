"""The kuma-prometheus-sd command line: version, help, and clear errors (exit status 1)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from kuma.sd.config import SETTINGS
from kuma.sd.main import cli
from kuma.version import __version__
from tests.support.procs import base_env, free_port


def _sd(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kuma.sd", *args],
        capture_output=True,
        text=True,
        env=base_env(**env),
        timeout=60,
        check=False,
    )


def test_version() -> None:
    result = CliRunner().invoke(cli, ["version"])
    assert result.exit_code == 0
    assert result.stderr == f"Kuma: {__version__}\n"
    detailed = CliRunner().invoke(cli, ["version", "-a"])
    assert detailed.stderr.splitlines()[:2] == ["Product:    Kuma", f"Version:    {__version__}"]


def test_help_lists_every_flag_with_its_default_and_variable() -> None:
    root = CliRunner().invoke(cli, ["--help"], terminal_width=200)
    assert root.exit_code == 0
    assert "Prometheus service discovery adapter for native integration with Kuma." in root.output
    result = CliRunner().invoke(cli, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # help text is wrapped at 80 columns
    for setting in SETTINGS:
        assert f"{setting.flag} string" in text
        assert f"[env: {setting.env}]" in text
    for default in ("http://localhost:5681", "kuma_sd", "kuma.file_sd.json"):
        assert f'(default "{default}")' in text
    assert "--log-level" in text


def test_invalid_configuration() -> None:
    result = _sd("run", KUMA_CONTROL_PLANE_API_SERVER_URL="kuma-cp:5681")
    assert result.returncode == 1
    assert result.stderr.endswith(
        "Error: Invalid configuration: .ControlPlane.ApiServer.URL must be a valid absolute URI "
        '(http:// or https://), got "kuma-cp:5681" '
        "(set --cp-address or KUMA_CONTROL_PLANE_API_SERVER_URL)\n"
    )


def test_unreachable_control_plane(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "kuma.file_sd.json"
    result = _sd("run", f"--cp-address=http://127.0.0.1:{port}", f"--output-file={out}")
    assert result.returncode == 1
    assert (
        f'Error: unable to retrieve Catalog of Kuma APIs from "http://127.0.0.1:{port}/catalog": '
        in result.stderr
    )
    assert not out.exists()


def test_unwritable_output_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _sd("run", f"--output-file={blocker}/kuma.file_sd.json")
    assert result.returncode == 1
    assert result.stderr.endswith(
        f'Error: unable to write to directory "{blocker}": not a directory\n'
    )


def test_unknown_log_level() -> None:
    result = _sd("run", "--log-level", "loud")
    assert result.returncode == 1
    assert 'Error: unknown log level "loud": use one of off, info, debug' in result.stderr


class _NotKuma(BaseHTTPRequestHandler):
    """An HTTP server that is not kuma-cp: /catalog is missing or names no usable MADS server."""

    catalogs: ClassVar[dict[str, bytes]] = {
        "/bad-scheme/catalog": json.dumps(
            {"apis": {"monitoringAssignment": {"url": "http://kuma-cp:5676"}}}
        ).encode(),
        "/no-mads/catalog": b'{"apis": {}}',
    }

    def do_GET(self) -> None:
        body = self.catalogs.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_kuma() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotKuma)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", 'Error: unable to retrieve Catalog of Kuma APIs from "{url}/catalog": HTTP 404'),
        (
            "/no-mads",
            'Error: "{url}/catalog" is not a Kuma catalog: no apis.monitoringAssignment.url',
        ),
        (
            "/bad-scheme",
            'Error: {url}/catalog: unsupported scheme "http" in MADS server URL '
            '"http://kuma-cp:5676". Use one of [grpc grpcs]',
        ),
    ],
)
def test_a_server_that_is_not_kuma_cp(
    not_kuma: str, path: str, message: str, tmp_path: Path
) -> None:
    url = not_kuma + path
    result = _sd("run", f"--cp-address={url}", f"--output-file={tmp_path / 'out.json'}")
    assert result.returncode == 1
    assert message.format(url=url) in result.stderr
