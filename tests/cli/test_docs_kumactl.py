"""Every `$ kumactl ...` example of docs/kumactl.md runs, in order, and prints what it says.

The examples are written for `kuma-cp run` on port 5681. Here a control plane from
control_plane.py listens on a random port; commands and outputs are translated between the two
(`localhost:5681` and `127.0.0.1:5681` <-> the real port), the default `local` control plane
is pointed at it after the first command, and times, ages and the version are compared as
placeholders. Commands run through bash with the installed `kumactl` console script.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kuma.version import __version__
from tests.cli.control_plane import ControlPlane, running_control_plane

pytestmark = pytest.mark.e2e

DOC = Path(__file__).resolve().parents[2] / "docs" / "kumactl.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)


@dataclass
class Example:
    command: str
    expected: str
    line: int


def examples() -> list[Example]:
    text = DOC.read_text()
    out: list[Example] = []
    for block in BLOCK.finditer(text):
        first_line = text.count("\n", 0, block.start()) + 2
        lines = block.group(1).splitlines()
        if not any(line.startswith("$ ") for line in lines):
            continue  # a block of commands to copy, not a session
        i = 0
        while i < len(lines):
            assert lines[i].startswith("$ "), f"docs/kumactl.md:{first_line + i}: not a command"
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
                expected.append(lines[i])
                i += 1
            out.append(Example(command, "".join(f"{e}\n" for e in expected), first_line + start))
    return out


_TIME = re.compile(r'"\d{4}-\d\d-\d\dT[0-9:.]+Z"')
_AGE = re.compile(r"(?<=\s)\d+[smhdy]$", re.M)


def placeholders(text: str) -> str:
    text = _TIME.sub('"<time>"', text)
    text = _AGE.sub("<age>", text)
    return text.replace(f"Kuma: {__version__}\n", "Kuma: <version>\n").replace(
        f"Version:    {__version__}\n", "Version:    <version>\n"
    )


@pytest.fixture
def cp() -> object:
    with running_control_plane() as plane:
        yield plane


def test_every_example_of_the_kumactl_doc(cp: ControlPlane, tmp_path: Path) -> None:
    port = cp.url.rsplit(":", 1)[1]
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kumactl").exists(), "the kumactl console script is not installed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA")}
    env.update(HOME=str(tmp_path), PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
    config = tmp_path / ".kumactl" / "config"

    found = examples()
    assert len(found) >= 15, "docs/kumactl.md lost its examples"
    for n, example in enumerate(found):
        command = example.command.replace(":5681", f":{port}")
        run = subprocess.run(
            ["bash", "-c", "exec 2>&1\n" + command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        actual = run.stdout.replace(f":{port}", ":5681")
        where = f"docs/kumactl.md:{example.line}: $ {example.command.splitlines()[0]}"
        assert placeholders(actual) == placeholders(example.expected), where
        if n == 0:
            # `kuma-cp run` answers on localhost:5681; the test's control plane elsewhere
            assert "localhost:5681" in config.read_text()
            config.write_text(config.read_text().replace("localhost:5681", f"localhost:{port}"))
