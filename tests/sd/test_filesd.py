"""The file_sd file: Prometheus's custom-sd format, atomic replacement, writes only on change."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kuma.sd.filesd import FileSdWriter, OutputFileError, render
from kuma.sd.targets import TargetGroup

BACKEND = TargetGroup(
    "/meshes/default/dataplanes/backend-01/0",
    ("192.168.0.2:5670",),
    {
        "mesh": "default",
        "job": "backend",
        "__scheme__": "http",
        "__metrics_path__": "/metrics",
        "instance": "backend-01",
        "dataplane": "backend-01",
        "kuma_io_service": "backend",
    },
)
WEB = TargetGroup("/meshes/default/dataplanes/web-01/0", ("192.168.0.3:5670",), {"job": "web"})


def test_format_is_a_json_array_indented_with_four_spaces() -> None:
    assert render([BACKEND]).decode() == (
        "[\n"
        "    {\n"
        '        "targets": [\n'
        '            "192.168.0.2:5670"\n'
        "        ],\n"
        '        "labels": {\n'
        '            "__metrics_path__": "/metrics",\n'
        '            "__scheme__": "http",\n'
        '            "dataplane": "backend-01",\n'
        '            "instance": "backend-01",\n'
        '            "job": "backend",\n'
        '            "kuma_io_service": "backend",\n'
        '            "mesh": "default"\n'
        "        }\n"
        "    }\n"
        "]"
    )
    assert render([]) == b"[]"


def test_writes_atomically_and_only_on_change(tmp_path: Path) -> None:
    out = tmp_path / "kuma.file_sd.json"
    writer = FileSdWriter(out)
    writer.check_writable()
    assert writer.write([BACKEND]) is True
    assert json.loads(out.read_text()) == [BACKEND.to_json()]
    first_inode = out.stat().st_ino

    assert writer.write([BACKEND]) is False  # same targets: the file is left alone
    assert out.stat().st_ino == first_inode

    assert writer.write([BACKEND, WEB]) is True
    assert [g["targets"] for g in json.loads(out.read_text())] == [
        ["192.168.0.2:5670"],
        ["192.168.0.3:5670"],
    ]
    # replaced by a rename, not rewritten in place; no temporary file left behind
    assert out.stat().st_ino != first_inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kuma.file_sd.json"]
    # readable by a Prometheus running as another user
    assert out.stat().st_mode & 0o044 == 0o044


def test_a_restart_does_not_rewrite_an_unchanged_file(tmp_path: Path) -> None:
    out = tmp_path / "kuma.file_sd.json"
    FileSdWriter(out).write([BACKEND])
    inode = out.stat().st_ino
    assert FileSdWriter(out).write([BACKEND]) is False
    assert out.stat().st_ino == inode
    assert FileSdWriter(out).write([]) is True
    assert out.read_text() == "[]"


def test_missing_directories_are_created(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "kuma.file_sd.json"
    writer = FileSdWriter(out)
    writer.check_writable()
    assert writer.write([WEB])
    assert out.exists()


def test_unwritable_output_paths(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(OutputFileError) as e:
        FileSdWriter(blocker / "kuma.file_sd.json").check_writable()
    assert str(e.value) == f'unable to write to directory "{blocker}": not a directory'
    with pytest.raises(OutputFileError) as e:
        FileSdWriter(blocker / "sub" / "kuma.file_sd.json").check_writable()
    assert str(e.value) == (
        f'unable to write to directory "{blocker}/sub": unable to create it: Not a directory'
    )
    with pytest.raises(OutputFileError) as e:
        FileSdWriter(tmp_path).check_writable()
    assert str(e.value) == f'unable to write to "{tmp_path}": it is a directory'


def test_a_failed_write_leaves_the_last_file_and_is_retried(tmp_path: Path) -> None:
    out = tmp_path / "kuma.file_sd.json"
    writer = FileSdWriter(out)
    writer.write([BACKEND])
    before = out.read_bytes()
    os.rename(tmp_path, tmp_path.with_name(tmp_path.name + "-moved"))  # directory gone
    try:
        with pytest.raises(OutputFileError, match="unable to create a temporary file"):
            writer.write([WEB])
    finally:
        os.rename(tmp_path.with_name(tmp_path.name + "-moved"), tmp_path)
    assert out.read_bytes() == before
    assert writer.write([WEB]) is True
    assert json.loads(out.read_text()) == [WEB.to_json()]
