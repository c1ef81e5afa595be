"""Help texts are cobra's layout (Kuma's docs/cmd/kumactl/HELP.md), one golden file each."""

from __future__ import annotations

import pytest

from tests.cli.conftest import KumactlRunner, assert_golden

COMMANDS = [
    [],
    ["apply"],
    ["config"],
    ["config", "view"],
    ["config", "control-planes"],
    ["config", "control-planes", "add"],
    ["config", "control-planes", "list"],
    ["config", "control-planes", "remove"],
    ["config", "control-planes", "switch"],
    ["get"],
    ["get", "meshes"],
    ["get", "mesh"],
    ["get", "secrets"],
    ["get", "traffic-permissions"],
    ["delete"],
    ["inspect"],
    ["inspect", "dataplanes"],
    ["inspect", "zones"],
    ["install"],
    ["install", "control-plane"],
    ["install", "metrics"],
    ["install", "tracing"],
    ["version"],
    ["completion"],
]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "kumactl")
def test_help_text(kumactl: KumactlRunner, path: list[str]) -> None:
    result = kumactl(*path, "--help", config=False)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert_golden(f"help/{'_'.join(['kumactl', *path])}.txt", result.stdout)
    # -h and `kumactl help <path>` print the same text
    assert kumactl(*path, "-h", config=False).stdout == result.stdout
    assert kumactl("help", *path).stdout == result.stdout


def test_a_group_without_a_subcommand_prints_its_help(kumactl: KumactlRunner) -> None:
    result = kumactl("get")
    assert result.exit_code == 0
    assert result.stdout == kumactl("get", "--help").stdout
    assert result.stdout.startswith("Show Kuma resources.\n\nUsage:\n  kumactl get [command]\n")


def test_root_help_matches_kumas_layout(kumactl: KumactlRunner) -> None:
    # Kuma 0.7.3's HELP.md, minus `install` (the Kubernetes issue)
    text = kumactl("--help", config=False).stdout
    assert text.endswith(
        "Flags:\n"
        "      --config-file string   path to the configuration file to use\n"
        "  -h, --help                 help for kumactl\n"
        '      --log-level string     log level: one of off|info|debug (default "off")\n'
        '  -m, --mesh string          mesh to use (default "default")\n'
        "\n"
        'Use "kumactl [command] --help" for more information about a command.\n'
    )


def test_usage_errors_print_cobras_messages_and_usage(kumactl: KumactlRunner) -> None:
    result = kumactl("frobnicate")
    assert result.exit_code == 1
    assert result.stderr == (
        'Error: unknown command "frobnicate" for "kumactl"\nRun \'kumactl --help\' for usage.\n'
    )

    result = kumactl("get", "frobnicate")
    assert result.exit_code == 1
    assert result.stderr.startswith('Error: unknown command "frobnicate" for "kumactl get"\n')

    result = kumactl("get", "meshes", "--bogus")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "Error: unknown flag: --bogus\nUsage:\n  kumactl get meshes [flags]\n\nFlags:\n"
    )
    assert result.stderr.endswith(
        '  -o, --output string        output format: one of table|yaml|json (default "table")\n\n'
    )

    result = kumactl("get", "meshes", "-x")
    assert result.stderr.startswith("Error: unknown shorthand flag: 'x' in -x\nUsage:\n")

    result = kumactl("apply", "-f")
    assert result.stderr.startswith("Error: flag needs an argument: 'f' in -f\nUsage:\n")

    result = kumactl("apply", "--file")
    assert result.stderr.startswith("Error: flag needs an argument: --file\nUsage:\n")

    result = kumactl("get", "meshes", "--size", "ten")
    assert result.stderr.startswith(
        'Error: invalid argument "ten" for "--size" flag: strconv.ParseInt: parsing "ten": '
        "invalid syntax\nUsage:\n"
    )

    result = kumactl("delete", "mesh")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: accepts 2 arg(s), received 1\nUsage:\n")
    assert_golden("errors/delete-one-arg.txt", result.stderr)

    result = kumactl("get", "mesh")
    assert result.stderr.startswith("Error: requires at least 1 arg(s), only received 0\nUsage:\n")

    result = kumactl("apply", "-v", "novalue")
    assert result.stderr.startswith(
        'Error: invalid argument "novalue" for "-v, --var" flag: novalue must be formatted as '
        "key=value\nUsage:\n"
    )


def test_persistent_flags_are_accepted_after_subcommands(kumactl: KumactlRunner) -> None:
    # --config-file given after the subcommand: the file is created where it says
    target = kumactl.config_file.parent / "elsewhere"
    result = kumactl("config", "view", "--config-file", str(target), config=False)
    assert result.exit_code == 0, result.output
    assert target.exists()
    # -o given on `get` and on `get meshes` are both accepted (parsed, then used)
    assert kumactl("get", "-o", "xml", "meshes").stderr == 'Error: unknown output format "xml"\n'
    assert kumactl("get", "meshes", "-o", "xml").stderr == 'Error: unknown output format "xml"\n'
