"""docker-compose.yml, checked against the code (no Docker engine runs here).

Every command of a kuma-py container is an installed console script whose flags that script
accepts; every `KUMA_*` variable is a setting of the program it is given to, with a valid value;
every address one container dials is a service of the file on the port that service listens on;
every named volume is declared, shared where a file crosses containers (tokens, Prometheus
targets) and mounted where the reader looks; and the resources the installer applies render and
validate exactly as `kumactl apply` would render them.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import ipaddress
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from kuma.cli.template import build_context, render
from kuma.config import iter_settings, load_config
from kuma.dp import config as dp_config
from kuma.model import load_resources, validate

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
IMAGE = "kuma-py:demo"
SCRIPTS = {"kuma-cp", "kuma-dp", "kumactl", "kuma-prometheus-sd", "kuma-tcp-echo"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services(compose).items() if s.get("image") == IMAGE}


# -- commands --------------------------------------------------------------------------------


@dataclass
class Command:
    service: str
    argv: list[str]
    stdout: str | None = None  # `> file` in a shell script


def commands(service: str, spec: dict[str, Any]) -> list[Command]:
    """The programs a container runs: its command, or each line of an `sh -ec` script."""
    command = spec.get("command", ["kuma-cp", "run"])  # the Dockerfile's CMD
    assert isinstance(command, list), f"{service}: write the command as a list"
    if command[:2] != ["sh", "-ec"]:
        return [Command(service, [str(a) for a in command])]
    out = []
    for line in command[2].splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        stdout = None
        if ">" in words:
            i = words.index(">")
            stdout, words = words[i + 1], words[:i]
        assert not {"|", "&&", ";", "<"} & set(words), f"{service}: keep one command per line"
        out.append(Command(service, words, stdout))
    return out


def all_commands(compose: dict[str, Any]) -> Iterator[Command]:
    for name, spec in ours(compose).items():
        yield from commands(name, spec)


def flag(argv: list[str], name: str) -> str | None:
    """The value of `--name=value` or `--name value` in argv (the last one given)."""
    value = None
    for i, arg in enumerate(argv):
        if arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
        elif arg == name and i + 1 < len(argv):
            value = argv[i + 1]
    return value


def vars_of(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a in ("-v", "--var")]
    return dict(p.split("=", 1) for p in pairs)


def click_command(script: str) -> click.Command:
    """The click command behind an installed console script."""
    found = entry_points(group="console_scripts").select(name=script)
    assert found, f"{script} is not an installed console script (see [project.scripts])"
    module = importlib.import_module(next(iter(found)).module)
    if isinstance(getattr(module, "cli", None), click.Command):
        return module.cli  # type: ignore[no-any-return]
    if callable(getattr(module, "build_root", None)):
        return module.build_root()  # type: ignore[no-any-return]
    raise AssertionError(f"{script}: no click command found in {module.__name__}")


def accepts(script: str, args: list[str]) -> None:
    """Parse `script args` with the script's own click tree, down to the subcommand, without
    running it: an unknown subcommand or flag, a flag missing its value, a value of the wrong
    type or an unexpected argument is an AssertionError. `--help` anywhere is fine."""
    command: click.Command = click_command(script)
    name, parent, rest = script, None, list(args)
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            while True:
                ctx = command.make_context(name, rest, parent=parent)
                if not isinstance(command, click.Group):
                    return
                remaining = [*ctx._protected_args, *ctx.args]
                if not remaining:
                    return  # a group alone prints its help
                sub_name, sub, rest = command.resolve_command(ctx, remaining)
                assert sub is not None
                assert sub_name is not None
                name, command, parent = sub_name, sub, ctx
        except click.exceptions.Exit as e:
            if e.exit_code != 0:
                raise AssertionError(f"{script} {shlex.join(args)}: exit {e.exit_code}") from None
        except click.UsageError as e:
            raise AssertionError(f"{script} {shlex.join(args)}: {e.format_message()}") from None


def test_the_file_has_no_obsolete_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose


def test_every_console_script_is_in_pyproject() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == SCRIPTS


def test_every_command_is_a_console_script_with_valid_flags(compose: dict[str, Any]) -> None:
    seen = set()
    for command in all_commands(compose):
        script, args = command.argv[0], command.argv[1:]
        assert script in SCRIPTS, f"{command.service}: {script} is not a kuma-py console script"
        accepts(script, args)
        seen.add(script)
    assert seen == SCRIPTS, f"the demo does not run {SCRIPTS - seen}"


def test_flag_values_are_valid(compose: dict[str, Any]) -> None:
    for command in all_commands(compose):
        script, argv = command.argv[0], command.argv
        where = f"{command.service}: {shlex.join(argv)}"
        if script == "kuma-dp":
            given = {
                s.field: value
                for s in dp_config.SETTINGS
                if s.flag and (value := flag(argv, s.flag)) is not None
            }
            cfg = dp_config.load_config(given, {})  # raises ConfigError with every problem
            assert cfg.name, where
        elif script == "kuma-tcp-echo":
            port = flag(argv, "--port")
            assert port is not None, where
            assert 0 < int(port) < 65536, where
            address = flag(argv, "--address")
            if address is not None:
                ipaddress.ip_address(address)
        elif script == "kuma-prometheus-sd":
            for name in ("--name", "--cp-address", "--output-file"):
                assert flag(argv, name), f"{where}: {name} is missing"


def test_every_kuma_variable_is_a_setting_with_a_valid_value(compose: dict[str, Any]) -> None:
    cp_keys = {info.env for info in iter_settings()}
    dp_keys = {s.env for s in dp_config.SETTINGS}
    for name, spec in services(compose).items():
        env = {k: str(v) for k, v in (spec.get("environment") or {}).items()}
        kuma = {k: v for k, v in env.items() if k.startswith("KUMA_")}
        scripts = {c.argv[0] for c in commands(name, spec)} if spec.get("image") == IMAGE else set()
        if not kuma:
            continue
        if "kuma-cp" in scripts:
            assert set(kuma) <= cp_keys, f"{name}: not kuma-cp settings: {set(kuma) - cp_keys}"
            load_config(None, kuma)  # raises ConfigError naming each bad value
        elif "kuma-dp" in scripts:
            assert set(kuma) <= dp_keys, f"{name}: not kuma-dp settings: {set(kuma) - dp_keys}"
            dp_config.load_config({}, kuma)
        else:
            raise AssertionError(f"{name} sets {sorted(kuma)} but runs {scripts or 'no kuma-py'}")


# -- addresses and ports -----------------------------------------------------------------------


def cp_config(compose: dict[str, Any]) -> Any:
    spec = services(compose)["kuma-cp"]
    env = {k: str(v) for k, v in spec["environment"].items()}
    return load_config(None, env)


def test_kuma_cp_is_reached_where_it_listens(compose: dict[str, Any]) -> None:
    cfg = cp_config(compose)
    assert cfg.general.advertised_hostname == "kuma-cp", "Envoys dial the advertised hostname"
    for command in all_commands(compose):
        address = flag(command.argv, "--cp-address")
        if address is None:
            continue
        # kuma-dp and kuma-prometheus-sd both start from the REST API's /catalog, which names
        # the other servers on the advertised hostname
        url = urlsplit(address)
        assert url.hostname in services(compose), f"{command.service}: {address}"
        assert (url.scheme, url.port) == ("http", cfg.api_server.port), command.service
    catalog = cfg.catalog()["apis"]
    assert catalog["monitoringAssignment"]["url"] == (
        f"grpc://kuma-cp:{cfg.monitoring_assignment_server.grpc_port}"
    )
    assert catalog["bootstrap"]["url"] == f"http://kuma-cp:{cfg.bootstrap_server.port}"
    published = [str(p) for p in services(compose)["kuma-cp"]["ports"]]
    assert f"{cfg.api_server.port}:{cfg.api_server.port}" in published
    health = " ".join(services(compose)["kuma-cp"]["healthcheck"]["test"])
    assert f"localhost:{cfg.xds_server.diagnostics_port}/ready" in health


def test_the_store_is_the_postgres_service(compose: dict[str, Any]) -> None:
    cfg = cp_config(compose)
    pg = services(compose)["postgres"]["environment"]
    assert cfg.store.type == "postgres"
    assert cfg.store.postgres.host == "postgres"
    assert cfg.store.postgres.port == 5432  # the postgres image's port
    assert cfg.store.postgres.user == pg["POSTGRES_USER"]
    assert cfg.store.postgres.password == pg["POSTGRES_PASSWORD"]
    assert cfg.store.postgres.db_name == pg["POSTGRES_DB"]
    migrate = services(compose)["kuma-cp-migrate"]
    assert commands("kuma-cp-migrate", migrate)[0].argv == ["kuma-cp", "migrate", "up"]
    assert migrate["environment"] == {
        k: v for k, v in services(compose)["kuma-cp"]["environment"].items() if "STORE" in k
    }


def test_depends_on_conditions_can_be_met(compose: dict[str, Any]) -> None:
    svc = services(compose)
    for name, spec in svc.items():
        for target, dep in (spec.get("depends_on") or {}).items():
            assert target in svc, f"{name} depends on unknown {target}"
            condition = dep["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in svc[target], f"{name}: {target} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert svc[target].get("restart") == "no", f"{name}: {target} is not one-shot"
            else:
                assert condition == "service_started", f"{name}: {condition}"
        mode = spec.get("network_mode", "")
        if mode.startswith("service:"):
            owner = mode.split(":", 1)[1]
            assert owner in svc, f"{name} joins unknown {owner}"
            assert "network_mode" not in svc[owner], name
            assert "ports" not in spec, f"{name}: publish ports on {owner}"
            assert owner in (spec.get("depends_on") or {}), f"{name} must start after {owner}"


def test_every_one_shot_is_awaited(compose: dict[str, Any]) -> None:
    """`docker compose up --wait` counts a one-shot's exit as success only when some service
    waits for it with service_completed_successfully."""
    svc = services(compose)
    awaited = {
        target
        for spec in svc.values()
        for target, dep in (spec.get("depends_on") or {}).items()
        if dep["condition"] == "service_completed_successfully"
    }
    one_shots = {name for name, spec in svc.items() if spec.get("restart") == "no"}
    assert one_shots == awaited == {"kuma-cp-migrate", "kuma-installer"}


@dataclass
class Netns:
    """One network namespace: a service and the services that joined it."""

    owner: str
    members: list[str] = field(default_factory=list)
    address: str | None = None


def namespaces(compose: dict[str, Any]) -> dict[str, Netns]:
    svc = services(compose)
    out: dict[str, Netns] = {}
    for name, spec in svc.items():
        if "network_mode" not in spec:
            address = ((spec.get("networks") or {}).get("default") or {}).get("ipv4_address")
            out.setdefault(name, Netns(name)).address = address
            out[name].members.append(name)
    for name, spec in svc.items():
        mode = spec.get("network_mode", "")
        if mode.startswith("service:"):
            out[mode.split(":", 1)[1]].members.append(name)
    return out


def installer_vars(compose: dict[str, Any]) -> dict[str, str]:
    (apply,) = [
        c for c in commands("kuma-installer", services(compose)["kuma-installer"])
        if c.argv[:2] == ["kumactl", "apply"]
    ]  # fmt: skip
    return vars_of(apply.argv)


def test_static_addresses_fit_the_network(compose: dict[str, Any]) -> None:
    (ipam,) = compose["networks"]["default"]["ipam"]["config"]
    subnet = ipaddress.ip_network(ipam["subnet"])
    dynamic = ipaddress.ip_network(ipam["ip_range"])
    fixed = [ns.address for ns in namespaces(compose).values() if ns.address]
    assert len(fixed) == len(set(fixed)) == 2
    for address in fixed:
        ip = ipaddress.ip_address(address)
        assert ip in subnet, address
        assert ip not in dynamic, f"{address} could be given to another container"


def test_each_dataplane_lives_where_its_resource_says(compose: dict[str, Any]) -> None:
    """The Dataplane's address is the IP of the namespace its kuma-dp runs in; the app listens
    on the inbound's servicePort there; no two listeners of one namespace share a port."""
    variables = installer_vars(compose)
    svc = services(compose)
    sidecars = 0
    for ns in namespaces(compose).values():
        dps = [c for m in ns.members if m in ours(compose) for c in commands(m, svc[m])]
        dp = [c for c in dps if c.argv[:2] == ["kuma-dp", "run"]]
        if not dp:
            continue
        sidecars += 1
        name = flag(dp[0].argv, "--name")
        assert name is not None
        prefix = name.removesuffix("-01")
        assert variables[f"{prefix}.address"] == ns.address, ns.owner
        (app,) = [c for c in dps if c.argv[0] == "kuma-tcp-echo"]
        assert flag(app.argv, "--port") == variables[f"{prefix}.app"], ns.owner
        ports = [
            variables[f"{prefix}.app"],
            variables[f"{prefix}.port"],
            variables[f"{prefix}.metrics"],
            flag(dp[0].argv, "--admin-port"),
        ]
        if f"{prefix}.outbound" in variables:
            ports.append(variables[f"{prefix}.outbound"])
        assert len(ports) == len(set(ports)), f"{ns.owner}: a port is used twice: {ports}"
        health = " ".join(svc[dp[0].service]["healthcheck"]["test"])
        port = variables.get(f"{prefix}.outbound") or flag(dp[0].argv, "--admin-port")
        assert f"http://127.0.0.1:{port}/" in health, dp[0].service
    assert sidecars == 2


# -- volumes ------------------------------------------------------------------------------------


def mounts(spec: dict[str, Any]) -> list[tuple[str, PurePosixPath]]:
    out = []
    for volume in spec.get("volumes", []):
        source, target = volume.split(":")[:2]
        out.append((source, PurePosixPath(target)))
    return out


def volume_of(spec: dict[str, Any], path: str) -> str:
    """The volume (or ./bind source) holding `path` inside the service's container."""
    for source, target in mounts(spec):
        if PurePosixPath(path).is_relative_to(target):
            return source
    raise AssertionError(f"{path} is in no volume of {spec.get('command')}")


def test_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    used = set()
    for name, spec in services(compose).items():
        for source, _ in mounts(spec):
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
                used.add(source)
    assert used == set(compose["volumes"])


def test_tokens_go_from_the_installer_to_the_sidecars(compose: dict[str, Any]) -> None:
    svc = services(compose)
    written = {
        c.stdout: volume_of(svc["kuma-installer"], c.stdout)
        for c in commands("kuma-installer", svc["kuma-installer"])
        if c.argv[:3] == ["kumactl", "generate", "dataplane-token"] and c.stdout is not None
    }
    assert len(written) == 2
    for command in all_commands(compose):
        if command.argv[:2] != ["kuma-dp", "run"]:
            continue
        token = flag(command.argv, "--dataplane-token-file")
        assert token in written, f"{command.service}: nobody writes {token}"
        assert volume_of(svc[command.service], token) == written[token]
        generated_for = [
            flag(c.argv, "--dataplane")
            for c in commands("kuma-installer", svc["kuma-installer"])
            if c.stdout == token
        ]
        assert generated_for == [flag(command.argv, "--name")]
    dockerfile = (ROOT / "Dockerfile").read_text()
    for path in written:
        assert str(PurePosixPath(path).parent) in dockerfile, "the image must own the mount point"


def test_the_installer_applies_files_it_can_see(compose: dict[str, Any]) -> None:
    spec = services(compose)["kuma-installer"]
    assert spec["network_mode"] == "service:kuma-cp", "the admin server (tokens) is local-only"
    for command in commands("kuma-installer", spec):
        file = flag(command.argv, "-f")
        if file is None:
            continue
        source = volume_of(spec, file)
        (target,) = [t for s, t in mounts(spec) if s == source]
        local = ROOT / source / PurePosixPath(file).relative_to(target)
        assert local.exists(), f"{file} is {local}, which does not exist"


def test_prometheus_reads_what_kuma_prometheus_sd_writes(compose: dict[str, Any]) -> None:
    svc = services(compose)
    (sd,) = commands("kuma-prometheus-sd", svc["kuma-prometheus-sd"])
    output = flag(sd.argv, "--output-file")
    assert output is not None
    volume = volume_of(svc["kuma-prometheus-sd"], output)
    relative = PurePosixPath(output).relative_to(
        next(t for s, t in mounts(svc["kuma-prometheus-sd"]) if s == volume)
    )
    prom = svc["prometheus"]
    (config_mount,) = [s for s, t in mounts(prom) if str(t) == "/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load((ROOT / config_mount).read_text())
    files = [
        f for job in config["scrape_configs"] for sd in job["file_sd_configs"] for f in sd["files"]
    ]
    (target,) = [t for s, t in mounts(prom) if s == volume]
    assert files == [str(target / relative)]
    assert "9090:9090" in prom["ports"]  # Prometheus' default --web.listen-address


def test_dockerfile_is_a_glibc_python_image() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases
    assert all(b.startswith("python:3.11-slim") for b in bases), bases
    assert "alpine" not in " ".join(bases)
    assert re.search(r"^CMD \[\"kuma-cp\", \"run\"\]$", text, re.M)


# -- the demo's resources ---------------------------------------------------------------------


def test_the_installers_resources_render_and_validate(compose: dict[str, Any]) -> None:
    variables = installer_vars(compose)
    text = (ROOT / "demo" / "resources.yaml").read_text()
    used = set(re.findall(r"\{\{\s*([\w.]+)\s*\}\}", text))
    assert used == set(variables), "set exactly the variables the file uses"
    rendered = render(text, build_context(variables.items()))
    resources = load_resources(rendered)
    for resource in resources:
        validate(resource)  # raises ValidationError with Kuma's field paths
    by_type = {(r.type.name, r.meta.name): r for r in resources}
    assert ("Dataplane", "backend-01") in by_type
    assert ("Dataplane", "client-01") in by_type
    assert ("Mesh", "default") in by_type
    client = by_type[("Dataplane", "client-01")].spec
    assert client.networking.outbound[0].tags["kuma.io/service"] == "backend"


# -- the image ------------------------------------------------------------------------------------


def test_the_docker_build_context_builds_the_wheel(tmp_path: Path) -> None:
    """What .dockerignore lets into the build context is what the Dockerfile COPYs, and that is
    enough to build the wheel (with its data files) the way the Dockerfile's first stage does."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", "the context is an allowlist"
    allowed = [p[1:].rstrip("/") for p in ignore if p.startswith("!")]
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = [
        src
        for line in re.findall(r"^COPY (?!--from)(.+)$", dockerfile, re.M)
        for src in line.split()[:-1]
    ]
    assert sorted(copied) == sorted(allowed)
    tracked = subprocess.run(
        ["git", "ls-files", *allowed], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for path in tracked:
        (tmp_path / "src" / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, tmp_path / "src" / path)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
         str(tmp_path / "dist"), str(tmp_path / "src")],
        check=True,
        timeout=300,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("kuma_py-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert "kuma/config/kuma-cp.defaults.yaml" in names
    assert any(n.startswith("kuma/store/postgres/migrations/") for n in names)


def test_prometheus_config_is_valid() -> None:
    """promtool (from tools/install_prometheus.sh, which `make test` runs) accepts it."""
    promtool = ROOT / ".cache" / "prometheus" / "usr" / "bin" / "promtool"
    assert promtool.exists(), "no promtool: run tools/install_prometheus.sh (make test does)"
    run = subprocess.run(
        [str(promtool), "check", "config", str(ROOT / "demo" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
