"""Every ```python block in docs/ runs as written (in a fresh namespace per file)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _doc_files() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if BLOCK.search(p.read_text()))


@pytest.mark.parametrize("doc", _doc_files(), ids=lambda p: p.name)
def test_python_examples_run(doc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": f"docs.{doc.stem}"}
    for i, block in enumerate(BLOCK.findall(doc.read_text())):
        code = compile(block, f"{doc.name}[block {i}]", "exec")
        exec(code, namespace)
    # Where a block says what it prints (`# {...}` right after a print), hold it to that.
    out = capsys.readouterr().out
    for expected in re.findall(r"^# (\{.*\})$", doc.read_text(), re.M):
        assert expected in out, f"{doc.name}: expected output {expected!r} not printed"
