"""docs/configuration.md lists every setting as the models define it."""

from __future__ import annotations

import os
from pathlib import Path

from kuma.config import iter_settings
from kuma.config.docs import TABLE_BEGIN, TABLE_END, settings_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_settings_table_is_current() -> None:
    text = DOC.read_text()
    head, rest = text.split(TABLE_BEGIN + "\n", 1)
    current, tail = rest.split(TABLE_END, 1)
    expected = settings_table()
    if os.environ.get("UPDATE_GOLDEN_FILES") == "true" and current != expected:
        DOC.write_text(head + TABLE_BEGIN + "\n" + expected + TABLE_END + tail)
        current = expected
    assert current == expected


def test_settings_table_names_every_key_and_env() -> None:
    table = settings_table()
    for info in iter_settings():
        assert f"| `{info.key}` |" in table
        assert f"`{info.env}`" in table
