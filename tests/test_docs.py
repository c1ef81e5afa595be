"""Every example in docs/ runs as written, and this file says which test runs each one.

* ```python blocks run here (a fresh namespace per file; a `# {...}` line after a print is the
  output it must print).
* ```yaml blocks are validated here: Kuma resources with kuma.model's validators, kuma-cp
  configuration files against the settings, Mesh and policy fragments inside the resource they
  belong to, Prometheus configurations with promtool. docs/policies.md's are also applied with
  kumactl by tests/e2e/test_policies.py.
* ```sh blocks: sessions (`$ command` then its output) run for real in tests/e2e/test_quickstart.py
  (quickstart.md) and tests/cli/test_docs_kumactl.py (kumactl.md); docs/rest-api.md's curl
  examples run here against a real kuma-cp. Every other command (a session's `$ ` lines too) is
  checked here: a kuma-py console script must accept the flags (its own click tree parses
  them), a `KUMA_*` variable must be a setting of the program, YAML fed to `kumactl apply` must
  validate, `docker compose` must name services of docker-compose.yml, `make` targets must
  exist. Then every snippet that needs no other host, no daemon, no Docker and no file it does
  not show runs for real against a kuma-cp (`kumactl apply -f x.yaml` right after a YAML block
  gets that block as x.yaml).
* docs/demo.md's `make demo` output is what tools/demo.py prints for the default ports;
  tests/test_demo.py runs those commands against a running demo.
* Blocks without a language are output, messages or diagrams, not code to run.

docs/kubernetes.md, being written in parallel, is left out of the inventory until it lands.
PromQL queries are listed, not run (they need a Prometheus with data).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kuma.config import ConfigError, iter_settings, load_config
from kuma.dp import config as dp_config
from kuma.errors import ValidationError
from kuma.model import load_resources, registry, validate
from tests.test_compose import accepts

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SCRIPTS = {"kuma-cp", "kuma-dp", "kumactl", "kuma-prometheus-sd", "kuma-tcp-echo"}
IN_PROGRESS = {"kubernetes.md"}
# programs a doc may use beside kuma-py's own
UTILITIES = {
    "cat", "printf", "head", "base64", "sed", "source", "curl", "open", "grep", "jq", "prometheus",
    "kubectl",
}  # fmt: skip


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    lang: str
    text: str

    def __str__(self) -> str:
        return f"docs/{self.doc}:{self.line} ({self.lang or 'no language'})"

    @property
    def is_session(self) -> bool:
        return any(line.startswith("$ ") for line in self.text.splitlines())

    @property
    def script(self) -> str:
        """The commands: a session's `$ ` lines (with their continuations and heredocs) without
        the output shown after them; any other block as it is."""
        if not self.is_session:
            return self.text
        lines = self.text.splitlines()
        out: list[str] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if not line.startswith("$ "):
                continue
            out.append(line[2:])
            while out[-1].endswith("\\") and i < len(lines):
                out.append(lines[i])
                i += 1
            marker = re.search(r"<<'?(\w+)'?", line)
            while marker and i < len(lines):
                out.append(lines[i])
                i += 1
                if out[-1] == marker.group(1):
                    break
        return "\n".join(out) + "\n"


def blocks() -> list[Block]:
    out = []
    for path in sorted(DOCS.glob("*.md")):
        if path.name in IN_PROGRESS:
            continue
        text = path.read_text()
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append(Block(path.name, line, m.group(1), m.group(2)))
    return out


def of(lang: str) -> list[Block]:
    return [b for b in blocks() if b.lang == lang]


# -- who runs what ------------------------------------------------------------------------------

ELSEWHERE = {
    ("quickstart.md", "sh"): "tests/e2e/test_quickstart.py",
    ("kumactl.md", "sh"): "tests/cli/test_docs_kumactl.py",
}
SHAPES = {
    # illustrative shapes with placeholders, not examples: (doc, first line)
    ("configuration.md", "{"): "the shape of GET /catalog, with <setting> placeholders",
    ("xds-server.md", "subscriptions:"): "a DataplaneInsight's shape, elided with {...}",
    ("rest-api.md", '{"title": "<what was attempted>"'): "the error envelope's shape",
    ("mads.md", "name: /meshes/default/dataplanes/"): "a monitoring assignment, as MADS sends it",
}


def runner(block: Block) -> str:
    """Which test runs (or checks) `block`; raises if none does."""
    first = block.text.splitlines()[0] if block.text else ""
    for (doc, start), why in SHAPES.items():
        if block.doc == doc and first.startswith(start):
            return f"not an example: {why}"
    if not block.lang:
        return "not code: output, a message or a diagram"
    if block.lang == "promql":
        return "not run: PromQL for a Prometheus that scrapes kuma-cp"
    if block.lang == "python":
        return "test_python_examples_run"
    if block.lang == "yaml":
        return "test_yaml_examples_are_valid"
    if (block.doc, block.lang) in ELSEWHERE:
        if block.doc == "kumactl.md" and not block.is_session:
            return "test_shell_commands_are_valid"
        return ELSEWHERE[(block.doc, block.lang)]
    if block.doc == "rest-api.md" and block.lang in ("sh", "json"):
        return "test_rest_api_examples_answer_as_documented"
    if block.lang == "sh":
        return "test_shell_commands_are_valid"
    if block.lang in ("json", "text"):
        return "not code: what the command before it prints"
    if block.lang == "sql" and block.doc == "postgres.md":
        return "test_postgres_grants_name_the_schema"
    raise AssertionError(f"{block}: no test runs this example")


def _runner_or_none(block: Block) -> str | None:
    """runner() for collection: a block nobody runs fails the inventory test, not collection."""
    try:
        return runner(block)
    except AssertionError:
        return None


def test_every_example_is_run_by_some_test() -> None:
    found = blocks()
    assert len(found) >= 90
    for block in found:
        who = runner(block)
        if who.startswith("tests/"):
            source = (ROOT / who).read_text()
            assert block.doc in source, f"{block}: {who} does not read docs/{block.doc}"
    # and the shapes are still where they were (so that the exemption cannot hide an example)
    for doc, start in SHAPES:
        assert any(b.doc == doc and b.text.startswith(start) for b in found), (doc, start)


# -- python ---------------------------------------------------------------------------------------


def _python_docs() -> list[Path]:
    return sorted(
        p for p in DOCS.glob("*.md") if p.name not in IN_PROGRESS and PYTHON.search(p.read_text())
    )


@pytest.mark.parametrize("doc", _python_docs(), ids=lambda p: p.name)
def test_python_examples_run(doc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": f"docs.{doc.stem}"}
    for i, block in enumerate(PYTHON.findall(doc.read_text())):
        code = compile(block, f"{doc.name}[block {i}]", "exec")
        exec(code, namespace)
    # Where a block says what it prints (`# {...}` right after a print), hold it to that.
    out = capsys.readouterr().out
    for expected in re.findall(r"^# (\{.*\})$", doc.read_text(), re.M):
        assert expected in out, f"{doc.name}: expected output {expected!r} not printed"


# -- yaml -----------------------------------------------------------------------------------------

CP_SECTIONS = {info.key.split(".")[0] for info in iter_settings()}
CP_KEYS = {info.key for info in iter_settings()}
MESH_SECTIONS = {"mtls", "logging", "tracing", "metrics"}


def _leaves(tree: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and path not in CP_KEYS:  # CP_KEYS: map-valued settings
                yield from _leaves(value, path + ".")
            else:
                yield path


def _policy_type_before(block: Block) -> str:
    """`Retry:` on the line before a `conf:` fragment names the policy it belongs to."""
    text = (DOCS / block.doc).read_text().splitlines()[: block.line - 1]
    for line in reversed(text):
        if line.strip():
            name = line.strip().rstrip(":")
            assert registry.find(name) is not None, f"{block}: {name!r} is not a resource type"
            return name
    raise AssertionError(f"{block}: which policy is this fragment of?")


def _check_yaml(block: Block) -> str:
    documents = [d for d in yaml.safe_load_all(block.text) if d is not None]
    assert documents, f"{block}: empty"
    if all(isinstance(d, dict) and "type" in d for d in documents):
        for resource in load_resources(block.text):
            validate(resource)
        return "resources"
    (tree,) = documents
    assert isinstance(tree, dict), block
    if "apiVersion" in tree and "kind" in tree:  # a Kubernetes object (or part of one)
        # no API server runs here: hold its kuma.io annotations and labels to the code's
        code = "".join(p.read_text() for p in (ROOT / "kuma").rglob("*.py"))
        for key in re.findall(r"^\s*(kuma\.io/[\w.-]+):", block.text, re.M):
            assert f'"{key}"' in code, f"{block}: kuma-py knows no {key}"
        return "kubernetes object"
    if "scrape_configs" in tree:  # a Prometheus configuration
        promtool = ROOT / ".cache" / "prometheus" / "usr" / "bin" / "promtool"
        assert promtool.exists(), "no promtool: run tools/install_prometheus.sh (make test does)"
        with tempfile.TemporaryDirectory() as d:
            config = Path(d) / "prometheus.yml"
            config.write_text(block.text)
            run = subprocess.run(
                [str(promtool), "check", "config", str(config)],
                capture_output=True,
                text=True,
                timeout=60,
            )
        assert run.returncode == 0, f"{block}: {run.stdout}{run.stderr}"
        return "prometheus config"
    cp_config = set(tree) <= CP_SECTIONS and all(leaf in CP_KEYS for leaf in _leaves(tree))
    if not cp_config and set(tree) <= MESH_SECTIONS:  # a fragment of a Mesh
        mesh = yaml.safe_dump({"type": "Mesh", "name": "default", **tree})
        for resource in load_resources(mesh):
            problem = ""
            try:
                validate(resource)
            except ValidationError as e:  # a provided CA's Secrets are not there: shape only
                problem = str(e)
            assert not problem or "could not load data" in problem or "not found" in problem
        return "mesh fragment"
    if set(tree) <= CP_SECTIONS:  # a kuma-cp configuration file (or part of one)
        unknown = [leaf for leaf in _leaves(tree) if leaf not in CP_KEYS]
        assert not unknown, f"{block}: not kuma-cp settings: {unknown}"
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(block.text)
            f.flush()
            load_config(f.name, {})  # raises ConfigError naming every bad value
        return "config"
    if set(tree) == {"conf"}:  # a fragment of a policy
        kind = _policy_type_before(block)
        policy = {
            "type": kind,
            "mesh": "default",
            "name": "example",
            "sources": [{"match": {"kuma.io/service": "*"}}],
            "destinations": [{"match": {"kuma.io/service": "*"}}],
            **tree,
        }
        for resource in load_resources(yaml.safe_dump(policy)):
            validate(resource)
        return "policy fragment"
    raise AssertionError(f"{block}: not a resource, a kuma-cp config or a known fragment")


@pytest.mark.parametrize(
    "block",
    [b for b in of("yaml") if _runner_or_none(b) == "test_yaml_examples_are_valid"],
    ids=str,
)
def test_yaml_examples_are_valid(block: Block) -> None:
    _check_yaml(block)


def test_yaml_checks_catch_mistakes() -> None:
    """The checks above can fail: a wrong field, a wrong setting, a wrong fragment."""
    bad = [
        Block("x.md", 1, "yaml", "type: Mesh\nname: default\nmtls:\n  enabledBackend: nope\n"),
        Block("x.md", 1, "yaml", "store:\n  postgres:\n    hots: 127.0.0.1\n"),
        Block("x.md", 1, "yaml", "store:\n  type: etcd\n"),
    ]
    for block in bad:
        with pytest.raises((AssertionError, ValidationError, ConfigError)):
            _check_yaml(block)


# -- sh: commands checked without running them ---------------------------------------------------


@dataclass
class Command:
    argv: list[str]
    env: dict[str, str]
    stdin: str | None  # a heredoc fed to this command (or to the pipeline it starts)


def commands(block: Block) -> list[Command]:
    """The simple commands of a block: continuation lines joined, heredocs attached, comments
    dropped, pipelines and `&&` split, redirections removed."""
    lines = block.script.splitlines()
    out: list[Command] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + " " + lines[i].strip()
            i += 1
        heredoc = None
        marker = re.search(r"<<'?(\w+)'?", line)
        if marker:
            body = []
            while lines[i] != marker.group(1):
                body.append(lines[i])
                i += 1
            i += 1
            heredoc = "\n".join(body) + "\n"
            line = line[: marker.start()] + line[marker.end() :]
        words = shlex.split(line, comments=True)
        segment: list[str] = []
        segments = [segment]
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word in ("|", "&&", ";"):
                segment = []
                segments.append(segment)
            elif word in (">", "<", "2>"):
                skip = True
            else:
                segment.append(word)
        for n, seg in enumerate(s for s in segments if s):
            env = {}
            while seg and re.match(r"^[A-Z_][A-Z0-9_]*=", seg[0]):
                key, value = seg.pop(0).split("=", 1)
                env[key] = value
            out.append(Command(seg, env, heredoc if n == 0 or heredoc else None))
    return out


def _compose_services() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"])


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][\w-]*):", text, re.M))


def check_command(command: Command, where: str) -> None:
    if not command.argv:
        return
    program, args = command.argv[0], command.argv[1:]
    kuma_env = {k: v for k, v in command.env.items() if k.startswith("KUMA_")}
    if program in SCRIPTS:
        accepts(program, args)
        if program == "kuma-cp" and kuma_env:
            assert set(kuma_env) <= CP_KEYS_ENV, f"{where}: {set(kuma_env) - CP_KEYS_ENV}"
            load_config(None, kuma_env)
        if program == "kuma-dp" and kuma_env:
            assert set(kuma_env) <= {s.env for s in dp_config.SETTINGS}, where
        if program == "kumactl" and args[:1] == ["apply"] and command.stdin is not None:
            for resource in load_resources(command.stdin):
                validate(resource)
        return
    assert not kuma_env, f"{where}: {kuma_env} given to {program}"
    if program == "python":
        assert args[0] == "-m", where
        module = args[1]
        assert (ROOT / module.replace(".", "/") / "__main__.py").exists(), f"{where}: {module}"
        return
    if program == "docker":
        assert args[0] == "compose", where
        services = _compose_services()
        verb, rest = args[1], [a for a in args[2:] if not a.startswith("-")]
        if verb == "exec":
            assert rest[0] in services, f"{where}: no service {rest[0]}"
            check_command(Command(args[args.index(rest[0]) + 1 :], {}, None), where)
        elif verb in ("logs", "run"):
            assert rest[0] in services, f"{where}: no service {rest[0]}"
        else:
            assert verb in ("up", "down"), f"{where}: docker compose {verb}"
        return
    if program == "make":
        targets = [a for a in args if "=" not in a]
        assert set(targets) <= _make_targets(), f"{where}: {targets}"
        for a in args:
            if a.startswith("DEMO_ARGS="):
                sys.path.insert(0, str(ROOT / "tools"))
                try:
                    from demo import build_parser
                finally:
                    sys.path.remove(str(ROOT / "tools"))
                try:
                    build_parser().parse_args(shlex.split(a.split("=", 1)[1]))
                except SystemExit:
                    raise AssertionError(f"{where}: make demo refuses {a}") from None
        return
    assert program in UTILITIES, f"{where}: {program} is neither kuma-py nor a known utility"


CP_KEYS_ENV = {info.env for info in iter_settings()}


def _shell_blocks() -> list[Block]:
    return [b for b in of("sh") if _runner_or_none(b) == "test_shell_commands_are_valid"]


@pytest.mark.parametrize("block", _shell_blocks(), ids=str)
def test_shell_commands_are_valid(block: Block, capsys: pytest.CaptureFixture[str]) -> None:
    found = commands(block)
    assert found, block
    for command in found:
        check_command(command, f"{block}: {shlex.join(command.argv)}")


def _check_all(found: list[Command], where: str) -> None:
    for command in found:
        check_command(command, where)


def test_shell_checks_catch_mistakes() -> None:
    bad = [
        "kuma-dp run --nmae=web-01",
        "KUMA_API_SERVER_PROT=1 kuma-cp run",
        "kumactl get meshs",
        "cat <<'EOF' | kumactl apply -f -\ntype: Mesh\nname: x\nmtls:\n  enabledBackend: no\nEOF",
        "docker compose exec nobody kumactl get meshes",
        "make nothing",
        'make demo DEMO_ARGS="--free-port"',
        "kuma-dp version [-a]",
    ]
    for text in bad:
        block = Block("x.md", 1, "sh", text + "\n")
        with pytest.raises((AssertionError, ValidationError, ConfigError)):
            _check_all(commands(block), text)


# -- sh: and those that can run here, run ------------------------------------------------------------


def shell_pieces(block: Block) -> list[str]:
    """The block as separately runnable shell snippets: one per command line, continuation
    lines and heredoc bodies included."""
    lines = block.script.splitlines()
    out, i = [], 0
    while i < len(lines):
        piece = [lines[i]]
        i += 1
        while piece[-1].endswith("\\") and i < len(lines):
            piece.append(lines[i])
            i += 1
        marker = re.search(r"<<'?(\w+)'?", piece[0])
        if marker:
            while i < len(lines) and lines[i] != marker.group(1):
                piece.append(lines[i])
                i += 1
            piece.append(lines[i])
            i += 1
        if any(line.strip() and not line.lstrip().startswith("#") for line in piece):
            out.append("\n".join(piece) + "\n")
    return out


DAEMONS = {("kuma-cp", "run"), ("kuma-dp", "run"), ("kuma-prometheus-sd", "run")}


def why_not_here(piece: str, cwd: Path | None = None) -> str | None:
    """Why a snippet cannot run on this machine as written (None: it can)."""
    for name in re.findall(r"-f\s+(\S+\.ya?ml)\b|\$\(cat ([^)\s]+)\)", piece):
        name = name[0] or name[1]
        if cwd is None or not (cwd / name).exists():
            return f"needs the file {name}"
    for command in commands(Block("x.md", 1, "sh", piece)):
        if not command.argv:
            continue
        if tuple(command.argv[:2]) in DAEMONS:
            return "runs until stopped"
        if command.argv[0] == "prometheus":
            return "runs until stopped"
        if command.argv[0] == "kubectl":
            return "needs a Kubernetes cluster"
        if command.argv[0] in ("docker", "make", "open"):
            return f"needs {command.argv[0]}"
        argv = command.argv
        config = next((a for n, a in enumerate(argv) if n and argv[n - 1] == "-c"), None)
        if argv[0] == "kuma-cp" and config is not None:
            return f"needs the config file {config} and its database"
    # what the commands say (comments and heredoc bodies aside)
    words = " ".join(w for c in commands(Block("x.md", 1, "sh", piece)) for w in c.argv)
    if "${fpath" in piece:
        return "a zsh command"
    if re.search(r"<[a-z][a-z ]*>", words):
        return "a placeholder to fill in"
    for port in re.findall(r"(?:localhost|127\.0\.0\.1):(\d+)", words):
        if int(port) not in (5679, 5680, 5681):  # what the test's kuma-cp answers on
            return f"needs the service on port {port}"
    for host in re.findall(r"https?://([\w.-]+)", words):
        if host not in ("localhost", "127.0.0.1"):
            return f"needs the host {host}"
    return None


@pytest.mark.e2e
def test_shell_commands_that_can_run_here_run(tmp_path: Path) -> None:
    """Every snippet of the command blocks that needs no other machine, daemon or file runs
    against a real kuma-cp (its ports put in place of 5681/5679, /tmp/ in a temporary folder)
    and exits 0; a `# NNN` after a curl is the status it prints."""
    from tests.support.procs import Ports, control_plane

    home = tmp_path / "home"
    (home / ".config" / "fish" / "completions").mkdir(parents=True)  # a fish user's home
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {
        k: v for k, v in __import__("os").environ.items() if not k.startswith(("KUMA_", "VIRTUAL"))
    }
    env.update(HOME=str(home), PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    ports = Ports()
    ran = []
    with control_plane("run", ports=ports) as cp:
        cp.wait_ready()
        subprocess.run(
            ["kumactl", "config", "control-planes", "add", "--name", "here",
             "--address", f"http://localhost:{ports.api}"],
            env=env, check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        everything = blocks()
        for block in _shell_blocks():
            # `kumactl apply -f mesh.yaml` right after a YAML block: that block is mesh.yaml
            before = everything[everything.index(block) - 1]
            for piece in shell_pieces(block):
                for name in re.findall(r"-f\s+(\S+\.ya?ml)\b", piece):
                    if before.doc == block.doc and before.lang == "yaml":
                        (tmp_path / name).write_text(before.text)
                if why_not_here(piece, tmp_path) is not None:
                    continue
                script = (
                    piece.replace(":5681", f":{ports.api}")
                    .replace(":5679", f":{ports.admin}")
                    .replace(":5680", f":{ports.diagnostics}")
                    .replace("/tmp/", f"{scratch}/")
                )
                run = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", script],
                    env=env,
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                where = f"{block}: {piece.splitlines()[0]}"
                assert run.returncode == 0, f"{where}\n{run.stdout}{run.stderr}"
                for status in re.findall(r"# (\d{3})$", piece, re.M):
                    assert status in run.stdout, where
                ran.append(where)
    assert len(ran) >= 10, ran


# -- the demo's printed instructions ---------------------------------------------------------------


def test_demo_doc_shows_what_make_demo_prints() -> None:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from demo import Demo, DemoPorts
    finally:
        sys.path.remove(str(ROOT / "tools"))
    (shown,) = [b for b in blocks() if b.doc == "demo.md" and b.text.startswith("The demo mesh")]
    demo = Demo(Path("/tmp/kuma-demo"), DemoPorts(), None)
    for line in demo.try_lines():
        assert f"  {line}\n" in shown.text, f"docs/demo.md does not show: {line}"
    ports = DemoPorts()
    for where in (
        f"REST API http://127.0.0.1:{ports.api}",
        f"kuma-tcp-echo on 127.0.0.1:{ports.backend_app}",
        f"outbound backend on 127.0.0.1:{ports.client_outbound}",
    ):
        assert where in shown.text


# -- sql ------------------------------------------------------------------------------------------


def test_postgres_grants_name_the_schema() -> None:
    """The GRANTs of docs/postgres.md name tables and sequences the migrations create (the
    grants themselves are run by tests/store/test_postgres.py's least-privilege test)."""
    (block,) = [b for b in of("sql") if b.doc == "postgres.md"]
    sql = "".join(p.read_text() for p in (ROOT / "kuma/store/postgres/migrations").glob("*.sql"))
    sql += (ROOT / "kuma/store/postgres/migrate.py").read_text()
    for name in re.findall(r" ON (?:SEQUENCE )?(\w+) TO", block.text):
        table = name.removesuffix("_id_seq")  # the sequence of a bigserial `id` column
        if table != name:
            assert re.search(rf"CREATE TABLE[^(]*{table}\s*\(\s*id\s+BIGSERIAL", sql, re.I), name
        else:
            assert name in sql, f"{name} is created by no migration"


# -- rest-api.md, against a real control plane -----------------------------------------------------


_TIME = re.compile(r'"\d{4}-\d\d-\d\dT[0-9:.]+Z"')


def _normal(value: Any) -> Any:
    text = _TIME.sub('"<time>"', json.dumps(value, sort_keys=True))
    return json.loads(re.sub(r'"hostname": "[^"]*"', '"hostname": "<host>"', text))


def _last_json(out: str) -> Any:
    decoder = json.JSONDecoder()
    last, i = None, 0
    while (start := out.find("{", i)) >= 0:
        try:
            last, i = decoder.raw_decode(out, start)
        except json.JSONDecodeError:
            i = start + 1
    return last


@pytest.mark.e2e
def test_rest_api_examples_answer_as_documented(tmp_path: Path) -> None:
    """Each curl block of docs/rest-api.md, in order, against a fresh kuma-cp: the `# NNN`
    status lines it shows, and the JSON block right after it (times and hostname aside)."""
    from tests.cli.control_plane import running_control_plane

    text = (DOCS / "rest-api.md").read_text()
    found = list(BLOCK.finditer(text))
    with running_control_plane() as cp:
        api_port = cp.url.rsplit(":", 1)[1]
        admin = httpx.get(f"{cp.url}/catalog", timeout=10).json()["apis"]["admin"]["localUrl"]
        admin_port = admin.rsplit(":", 1)[1]
        ran = 0
        for i, m in enumerate(found):
            if m.group(1) != "sh":
                continue
            script = m.group(2).replace(":5681", f":{api_port}").replace(":5679", f":{admin_port}")
            run = subprocess.run(
                ["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path
            )
            where = f"docs/rest-api.md:{text.count(chr(10), 0, m.start()) + 1}"
            assert run.returncode == 0, f"{where}: {run.stderr}"
            out = run.stdout.replace(f":{api_port}", ":5681")
            for status in re.findall(r"^# (\d{3})$", m.group(2), re.M):
                assert f"{status}\n" in out, f"{where}: no {status} in {out}"
            nxt = found[i + 1] if i + 1 < len(found) else None
            if nxt is not None and nxt.group(1) == "json" and text[m.end() : nxt.start()] == "\n":
                expected = json.loads(nxt.group(2))
                # the JSON printed last (after any status line) is the documented answer
                got = _last_json(out)
                assert _normal(got) == _normal(expected), where
            ran += 1
        assert ran >= 7
