"""docs/quickstart.md, run as a new user would: the same commands, the same ports, real processes.

The doc is a sequence of ```sh blocks. A block of `$ command` lines (each followed by the output
it must print) is a session in the user's second terminal; any other block is a long-running
command the user starts in a terminal of its own (`make run` becomes `kuma-cp run`, the installed
console script it starts). Outputs are compared exactly, except ages and timestamps, and the
counters of `kumactl inspect` (only MESH/NAME/TAGS/STATUS are compared there).

The quickstart uses Kuma's default ports (5678-5682) and 9000/10000/18080/19000 on loopback; the
test fails at once, naming the port, if one of them is taken on this machine.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.procs import base_env, spawn, wait_until

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "quickstart.md"
BIN = ROOT / ".venv" / "bin"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
PORTS = [5676, 5677, 5678, 5679, 5680, 5681, 5682, 9000, 10000, 18080, 19000]


@dataclass
class Step:
    line: int
    command: str
    expected: str | None  # None: a long-running command started in the background


def steps() -> list[Step]:
    text = DOC.read_text()
    out: list[Step] = []
    for block in BLOCK.finditer(text):
        line = text.count("\n", 0, block.start()) + 2
        lines = block.group(1).splitlines()
        if not lines[0].startswith("$ "):
            out.append(Step(line, "\n".join(lines), None))
            continue
        i = 0
        while i < len(lines):
            assert lines[i].startswith("$ "), f"quickstart.md:{line + i}: expected a command"
            command, start = lines[i][2:], i
            i += 1
            if command.endswith("<<'EOF'"):
                while lines[i] != "EOF":
                    command += "\n" + lines[i]
                    i += 1
                command += "\nEOF"
                i += 1
            expected = []
            while i < len(lines) and not lines[i].startswith("$ "):
                expected.append(lines[i] + "\n")
                i += 1
            out.append(Step(line + start, command, "".join(expected)))
    return out


_AGE = re.compile(r"(?<=\s)\d+[smhdy]$", re.M)
_TIME = re.compile(r'"\d{4}-\d\d-\d\dT[0-9:.]+Z"')


def normalise(command: str, text: str) -> str:
    if command.startswith("kumactl inspect"):
        rows = [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]
        return "\n".join(" | ".join(cells[:4]) for cells in rows) + "\n"
    return _TIME.sub('"<time>"', _AGE.sub("<age>", text))


def _port_taken(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def test_quickstart_works_as_written() -> None:
    taken = [p for p in PORTS if _port_taken(p)]
    assert not taken, f"the quickstart needs these ports free on this machine: {taken}"
    with tempfile.TemporaryDirectory() as home, ExitStack() as stack:
        env = base_env(HOME=home, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
        background = []
        for step in steps():
            if step.expected is None:
                if step.command == "source .venv/bin/activate":
                    continue  # PATH above does what activate does
                command = "kuma-cp run" if step.command == "make run" else step.command
                proc = stack.enter_context(spawn(["bash", "-c", f"exec {command}"], env))
                background.append(proc)
                _wait_started(command)
                continue
            result = subprocess.run(
                ["bash", "-c", step.command],
                env=env,
                cwd=home,
                capture_output=True,
                text=True,
                timeout=60,
            )
            got = result.stdout + result.stderr
            if step.command.startswith("curl") or step.command.startswith("kumactl inspect"):
                # traffic and status need Envoy to have its config: retry for a while
                try:
                    got = wait_until(
                        lambda s=step: _rerun_until(s, env, home),
                        30,
                        f"quickstart.md:{step.line}: {step.command!r} to print what the doc says",
                    )
                except AssertionError:
                    logs = "\n".join(f"--- {p.proc.args}\n{p.output()[-3000:]}" for p in background)
                    raise AssertionError(f"last output:\n{got}\n{logs}") from None
            assert normalise(step.command, got) == normalise(step.command, step.expected), (
                f"quickstart.md:{step.line}: {step.command}"
            )
        for proc in background:
            assert proc.alive(), proc.output()
    for token in ("/tmp/backend-01-token", "/tmp/web-01-token"):  # written by the doc's steps
        Path(token).unlink(missing_ok=True)


def _rerun_until(step: Step, env: dict[str, str], home: str) -> str | None:
    result = subprocess.run(
        ["bash", "-c", step.command], env=env, cwd=home, capture_output=True, text=True, timeout=30
    )
    got = result.stdout + result.stderr
    assert step.expected is not None
    return got if normalise(step.command, got) == normalise(step.command, step.expected) else None


def _wait_started(command: str) -> None:
    if command.startswith("kuma-cp"):
        wait_until(
            lambda: httpx.get("http://127.0.0.1:5680/ready", timeout=1).status_code == 200,
            30,
            "kuma-cp to be ready",
        )
    elif command.startswith("kuma-tcp-echo"):
        port = int(command.split("--port")[1].split()[0])
        wait_until(lambda: _port_taken(port), 30, f"kuma-tcp-echo on {port}")
    # kuma-dp: the session's retries wait for its Envoy
