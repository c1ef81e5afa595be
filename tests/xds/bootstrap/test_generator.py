"""Bootstrap settings, the request shape, and the real Envoy accepting every golden bootstrap."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from kuma.config import load_config
from kuma.xds.bootstrap import (
    BootstrapRequest,
    BootstrapRequestError,
    BootstrapSettings,
    access_log_socket_path,
)
from tests.xds.bootstrap.support import GOLDEN, envoy_binary

pytestmark = pytest.mark.anyio


def test_settings_from_default_config() -> None:
    settings = BootstrapSettings.from_config(load_config(env={}))
    assert settings == BootstrapSettings(
        xds_host="localhost",  # general.advertisedHostname
        xds_port=5678,  # xdsServer.grpcPort
        admin_address="127.0.0.1",
        admin_port=0,
        admin_access_log_path="/dev/null",
        xds_connect_timeout=timedelta(seconds=1),
        xds_ca_cert_file="",
    )


def test_settings_from_config_follow_the_autoconfigured_values() -> None:
    cfg = load_config(
        env={
            "KUMA_GENERAL_ADVERTISED_HOSTNAME": "cp.example",
            "KUMA_XDS_SERVER_GRPC_PORT": "15678",
            "KUMA_XDS_SERVER_TLS_CERT_FILE": "/etc/kuma/xds.crt",
            "KUMA_XDS_SERVER_TLS_KEY_FILE": "/etc/kuma/xds.key",
            "KUMA_BOOTSTRAP_SERVER_PARAMS_ADMIN_PORT": "9901",
            "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_CONNECT_TIMEOUT": "250ms",
        }
    )
    settings = BootstrapSettings.from_config(cfg)
    assert (settings.xds_host, settings.xds_port) == ("cp.example", 15678)
    assert settings.xds_ca_cert_file == "/etc/kuma/xds.crt"
    assert settings.admin_port == 9901
    assert settings.xds_connect_timeout == timedelta(milliseconds=250)

    explicit = BootstrapSettings.from_config(
        load_config(
            env={
                "KUMA_GENERAL_ADVERTISED_HOSTNAME": "cp.example",
                "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_HOST": "xds.example",
                "KUMA_BOOTSTRAP_SERVER_PARAMS_XDS_PORT": "5000",
            }
        )
    )
    assert (explicit.xds_host, explicit.xds_port) == ("xds.example", 5000)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"xds_host": ""}, "xds_host must not be empty"),
        ({"xds_port": 0}, "xds_port must be in the range [1, 65535]"),
        ({"admin_port": 70000}, "admin_port must be in the range [0, 65535]"),
        ({"admin_address": "localhost"}, "admin_address should be a valid IP address"),
        ({"admin_access_log_path": ""}, "admin_access_log_path must not be empty"),
        ({"xds_connect_timeout": timedelta(seconds=-1)}, "xds_connect_timeout must be positive"),
        ({"xds_connect_timeout": timedelta(0)}, "xds_connect_timeout must be positive"),
    ],
)
def test_settings_validation(overrides: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"xds_host": "127.0.0.1", "xds_port": 5678, **overrides}
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        BootstrapSettings(**values)  # type: ignore[arg-type]


def test_request_json_round_trip_omits_empty_fields() -> None:
    minimal = BootstrapRequest("default", "dp-1")
    assert minimal.to_json() == {"mesh": "default", "name": "dp-1"}
    full = BootstrapRequest("default", "dp-1", 30001, "/tmp/token")
    assert full.to_json() == {
        "mesh": "default",
        "name": "dp-1",
        "adminPort": 30001,
        "dataplaneTokenPath": "/tmp/token",
    }
    assert BootstrapRequest.from_json(full.to_json()) == full
    assert BootstrapRequest.from_json({"mesh": "m", "name": "n", "adminPort": None}) == (
        BootstrapRequest("m", "n")
    )
    with pytest.raises(BootstrapRequestError, match="adminPort must be an integer"):
        BootstrapRequest.from_json({"mesh": "m", "name": "n", "adminPort": True})


def test_access_log_socket_path_is_the_intended_one() -> None:
    assert (
        access_log_socket_path("web-01", "default") == "/tmp/kuma-access-logs-web-01-default.sock"
    )


def _goldens() -> list[Path]:
    return sorted(GOLDEN.glob("*.yaml"))


async def test_envoy_accepts_every_golden() -> None:
    """`envoy --mode validate` loads each golden bootstrap (the real Envoy, not a schema)."""
    goldens = _goldens()
    assert len(goldens) >= 7
    failures: dict[str, str] = {}

    async def validate(path: Path) -> None:
        result = await anyio.run_process(
            [envoy_binary(), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
            check=False,
        )
        if result.returncode != 0:
            failures[path.name] = (result.stdout + result.stderr).decode(errors="replace")

    with anyio.fail_after(90):
        async with anyio.create_task_group() as tg:
            for path in goldens:
                tg.start_soon(validate, path)
    assert failures == {}


async def test_envoy_rejects_a_broken_bootstrap(tmp_path: Path) -> None:
    """The validation above can fail: Envoy refuses a bootstrap whose ADS cluster is missing."""
    text = (GOLDEN / "default.golden.yaml").read_text().replace("ads_cluster", "no_such_cluster", 1)
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    with anyio.fail_after(30):
        result = await anyio.run_process(
            [envoy_binary(), "--mode", "validate", "-c", str(broken), "--log-level", "warn"],
            check=False,
        )
    assert result.returncode != 0
