"""kuma-prometheus-sd's settings: defaults, Kuma 0.7.3's environment variables, validation."""

from __future__ import annotations

import pytest

from kuma.sd.config import ConfigError, SdConfig, load_config


def test_defaults_are_kumas() -> None:
    cfg = load_config({}, {})
    assert cfg == SdConfig("http://localhost:5681", "kuma_sd", "kuma.file_sd.json")
    assert cfg.to_json_dict() == {
        "controlPlane": {"apiServer": {"url": "http://localhost:5681"}},
        "monitoringAssignment": {"client": {"name": "kuma_sd"}},
        "prometheus": {"outputFile": "kuma.file_sd.json"},
    }


def test_environment_variables_and_flags() -> None:
    env = {
        "KUMA_CONTROL_PLANE_API_SERVER_URL": "http://cp:5681",
        "KUMA_MONITORING_ASSIGNMENT_CLIENT_NAME": "prom-1",
        "KUMA_PROMETHEUS_OUTPUT_FILE": "/srv/kuma.json",
    }
    assert load_config({}, env) == SdConfig("http://cp:5681", "prom-1", "/srv/kuma.json")
    # a flag beats its variable
    flags = {"cp_address": "https://other:5682", "name": None, "output_file": "x.json"}
    assert load_config(flags, env) == SdConfig("https://other:5682", "prom-1", "x.json")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            {"cp_address": ""},
            ".ControlPlane.ApiServer.URL must be non-empty "
            "(set --cp-address or KUMA_CONTROL_PLANE_API_SERVER_URL)",
        ),
        (
            {"cp_address": "localhost:5681"},
            ".ControlPlane.ApiServer.URL must be a valid absolute URI (http:// or https://), "
            'got "localhost:5681"',
        ),
        ({"cp_address": "http://cp:99999"}, 'got "http://cp:99999"'),
        ({"cp_address": "http://[::1"}, 'got "http://[::1"'),
        (
            {"name": ""},
            ".MonitoringAssignment.Client.Name must be non-empty "
            "(set --name or KUMA_MONITORING_ASSIGNMENT_CLIENT_NAME)",
        ),
        (
            {"output_file": ""},
            ".Prometheus.OutputFile must be non-empty "
            "(set --output-file or KUMA_PROMETHEUS_OUTPUT_FILE)",
        ),
    ],
)
def test_invalid_settings(flags: dict[str, str | None], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(flags, {})
    assert str(e.value).startswith("Invalid configuration: ")
    assert message in str(e.value)


def test_every_problem_is_named() -> None:
    with pytest.raises(ConfigError) as e:
        load_config({"name": "", "output_file": ""}, {})
    assert ".MonitoringAssignment.Client.Name" in str(e.value)
    assert ".Prometheus.OutputFile" in str(e.value)
