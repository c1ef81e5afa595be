"""kuma-dp settings: admin port ranges, flags vs KUMA_* environment, defaults, validation."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest

from kuma.dp.config import SETTINGS, ConfigError, DataplaneConfig, PortRange, load_config
from kuma.dp.errors import AdminPortError
from kuma.dp.ports import pick_tcp_port

RANGE_HELP = (
    'Valid port range formats: "8080", "8080-8081", "8080-", "-8080", "" (empty range), '
    '"-" (empty range). Valid port values are 1-65535.'
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9901", PortRange(9901, 9901)),
        ("9901-9999", PortRange(9901, 9999)),
        ("9901-", PortRange(9901, 65535)),
        ("-9901", PortRange(1, 9901)),
        ("1-65535", PortRange(1, 65535)),
        ("30001-30001", PortRange(30001, 30001)),
        ("", PortRange(0, 0)),
        ("-", PortRange(0, 0)),
    ],
)
def test_port_range_parse(text: str, expected: PortRange) -> None:
    parsed = PortRange.parse(text)
    assert parsed == expected
    assert PortRange.parse(str(parsed)) == parsed  # str() round-trips


@pytest.mark.parametrize(
    "text", ["abc", "0", "0-10", "65536", "9999-9901", "1-2-3", " 9901", "+9901", "9_901", "9901-x"]
)
def test_port_range_rejects(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        PortRange.parse(text)
    assert str(exc.value) == f'invalid value "{text}". {RANGE_HELP}'


def test_port_range_str_and_empty() -> None:
    assert str(PortRange(9901, 9901)) == "9901"
    assert str(PortRange(9901, 9999)) == "9901-9999"
    assert str(PortRange(0, 0)) == ""
    assert PortRange(0, 0).empty
    assert not PortRange(1, 1).empty


def test_defaults() -> None:
    cfg = load_config({"name": "web-01"}, env={})
    assert cfg == DataplaneConfig(name="web-01")
    assert cfg.mesh == "default"
    assert cfg.cp_address == "http://localhost:5681"
    assert cfg.admin_port == PortRange(30001, 65535)
    assert cfg.drain_time == timedelta(seconds=30)
    assert cfg.api_retry_backoff == timedelta(seconds=3)
    assert cfg.api_retry_max_duration == timedelta(minutes=5)
    assert cfg.bootstrap_retry_backoff == timedelta(seconds=1)
    assert cfg.bootstrap_retry_max_duration == timedelta(seconds=30)
    assert (cfg.binary_path, cfg.config_dir, cfg.token_path) == ("", "", "")


def test_every_setting_from_the_environment() -> None:
    env = {
        "KUMA_DATAPLANE_NAME": "web-01",
        "KUMA_DATAPLANE_MESH": "demo",
        "KUMA_CONTROL_PLANE_API_SERVER_URL": "https://cp.example:5681",
        "KUMA_DATAPLANE_ADMIN_PORT": "9901-9999",
        "KUMA_DATAPLANE_RUNTIME_BINARY_PATH": "/opt/envoy/bin/envoy",
        "KUMA_DATAPLANE_RUNTIME_CONFIG_DIR": "/var/run/kuma-dp",
        "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH": "/etc/kuma/token",
        "KUMA_DATAPLANE_DRAIN_TIME": "1m30s",
        "KUMA_CONTROL_PLANE_API_SERVER_RETRY_BACKOFF": "500ms",
        "KUMA_CONTROL_PLANE_API_SERVER_RETRY_MAX_DURATION": "2m",
        "KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_RETRY_BACKOFF": "2s",
        "KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_RETRY_MAX_DURATION": "1h",
    }
    assert {s.env for s in SETTINGS} == set(env)  # the test covers every setting
    cfg = load_config({}, env=env)
    assert cfg == DataplaneConfig(
        name="web-01",
        mesh="demo",
        cp_address="https://cp.example:5681",
        admin_port=PortRange(9901, 9999),
        binary_path="/opt/envoy/bin/envoy",
        config_dir="/var/run/kuma-dp",
        token_path="/etc/kuma/token",
        drain_time=timedelta(seconds=90),
        api_retry_backoff=timedelta(milliseconds=500),
        api_retry_max_duration=timedelta(minutes=2),
        bootstrap_retry_backoff=timedelta(seconds=2),
        bootstrap_retry_max_duration=timedelta(hours=1),
    )


def test_a_flag_beats_its_environment_variable() -> None:
    env = {"KUMA_DATAPLANE_NAME": "from-env", "KUMA_DATAPLANE_ADMIN_PORT": "9901"}
    cfg = load_config({"name": "from-flag", "admin_port": None}, env=env)
    assert cfg.name == "from-flag"
    assert cfg.admin_port == PortRange(9901, 9901)  # flag not given: the env var applies
    flagged = load_config({"name": "x", "admin_port": "7000-"}, env=env)
    assert flagged.admin_port == PortRange(7000, 65535)


def test_empty_admin_port_turns_the_admin_api_off() -> None:
    assert load_config({"name": "x", "admin_port": ""}, env={}).admin_port.empty
    assert load_config({"name": "x"}, env={"KUMA_DATAPLANE_ADMIN_PORT": ""}).admin_port.empty


def test_bad_values_name_their_source() -> None:
    with pytest.raises(ConfigError) as flag:
        load_config({"name": "x", "admin_port": "abc"}, env={})
    assert (
        str(flag.value)
        == f'invalid argument "abc" for "--admin-port" flag: invalid value "abc". {RANGE_HELP}'
    )
    with pytest.raises(ConfigError) as env:
        load_config({"name": "x"}, env={"KUMA_DATAPLANE_DRAIN_TIME": "soon"})
    assert str(env.value) == (
        'invalid value "soon" for KUMA_DATAPLANE_DRAIN_TIME: time: invalid duration "soon"'
    )


def test_validation_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(
            {"mesh": "", "cp_address": "localhost:5681", "drain_time": "0s"},
            env={"KUMA_CONTROL_PLANE_API_SERVER_RETRY_BACKOFF": "-1s"},
        )
    assert str(exc.value) == (
        "Invalid configuration: "
        ".Dataplane.Name must be non-empty (set --name or KUMA_DATAPLANE_NAME); "
        ".Dataplane.Mesh must be non-empty (set --mesh or KUMA_DATAPLANE_MESH); "
        '.ControlPlane.ApiServer.URL must be a valid absolute URI (http:// or https://), got "localhost:5681" '
        "(set --cp-address or KUMA_CONTROL_PLANE_API_SERVER_URL); "
        ".Dataplane.DrainTime must be a positive duration (set --drain-time or KUMA_DATAPLANE_DRAIN_TIME); "
        ".ControlPlane.ApiServer.Retry.Backoff must be a positive duration "
        "(set KUMA_CONTROL_PLANE_API_SERVER_RETRY_BACKOFF)"
    )


def test_effective_configuration_shape() -> None:
    cfg = load_config({"name": "web-01", "admin_port": ""}, env={})
    assert cfg.to_json_dict() == {
        "controlPlane": {
            "apiServer": {
                "url": "http://localhost:5681",
                "retry": {"backoff": "3s", "maxDuration": "5m0s"},
            },
            "bootstrapServer": {"retry": {"backoff": "1s", "maxDuration": "30s"}},
        },
        "dataplane": {"mesh": "default", "name": "web-01", "adminPort": "", "drainTime": "30s"},
        "dataplaneRuntime": {"binaryPath": "", "configDir": "", "dataplaneTokenPath": ""},
    }


# -- picking the admin port ------------------------------------------------------------------


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def test_pick_takes_the_first_free_port() -> None:
    with _listening() as taken:
        port = taken.getsockname()[1]
        picked = pick_tcp_port("127.0.0.1", PortRange(port, min(port + 100, 65535)))
        assert port < picked <= port + 100
    # once released, the same range yields the first port again (stable across restarts)
    assert pick_tcp_port("127.0.0.1", PortRange(port, min(port + 100, 65535))) == port


def test_pick_fails_when_the_range_is_full() -> None:
    with _listening() as taken:
        port = taken.getsockname()[1]
        with pytest.raises(AdminPortError) as exc:
            pick_tcp_port("127.0.0.1", PortRange(port, port))
    assert str(exc.value).startswith(
        f'unable to find a free port in the range "{port}" for Envoy Admin API to listen on: '
    )
    assert "Choose another --admin-port" in str(exc.value)


def test_two_kuma_dps_picking_at_once_get_different_ports() -> None:
    """The port is only probed, not kept bound; a lock file stops another kuma-dp on this
    machine from picking the same one before Envoy binds it."""
    import subprocess
    import sys

    with _listening() as probe:
        base = probe.getsockname()[1]
    code = (
        "import sys, time\n"
        "from kuma.dp.config import PortRange\n"
        "from kuma.dp.ports import pick_tcp_port\n"
        f"print(pick_tcp_port('127.0.0.1', PortRange({base}, {base + 50})), flush=True)\n"
        "sys.stdin.read()\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None
        theirs = int(other.stdout.readline())
        mine = pick_tcp_port("127.0.0.1", PortRange(base, base + 50))
        assert mine != theirs
    finally:
        other.communicate(timeout=10)
