"""docs/kuma-dp.md lists every kuma-dp setting as kuma/dp/config.py defines it."""

from __future__ import annotations

import os
from pathlib import Path

from kuma.dp.config import SETTINGS, default_text

DOC = Path(__file__).resolve().parents[2] / "docs" / "kuma-dp.md"
BEGIN = "<!-- BEGIN KUMA-DP SETTINGS (checked by tests/dp/test_docs.py) -->\n"
END = "<!-- END KUMA-DP SETTINGS -->"


def settings_table() -> str:
    lines = [
        "| Flag | Environment variable | Default | Meaning |",
        "|---|---|---|---|",
    ]
    for s in SETTINGS:
        flag = f"`{s.flag}`" if s.flag else ""
        default = default_text(s)
        shown = f"`{default}`" if default else ("(required)" if s.field == "name" else "")
        meaning = s.help.replace("|", "\\|")
        lines.append(f"| {flag} | `{s.env}` | {shown} | {meaning} |".replace("|  |", "| |"))
    return "\n".join(lines) + "\n"


def test_settings_table_is_current() -> None:
    text = DOC.read_text()
    head, rest = text.split(BEGIN, 1)
    current, tail = rest.split(END, 1)
    expected = settings_table()
    if os.environ.get("UPDATE_GOLDEN_FILES") == "true" and current != expected:
        DOC.write_text(head + BEGIN + expected + END + tail)
        current = expected
    assert current == expected
