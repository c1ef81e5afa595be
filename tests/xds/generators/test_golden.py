"""Golden files of the generated Envoy config (refresh: UPDATE_GOLDEN_FILES=true pytest ...)."""

from __future__ import annotations

import difflib

import pytest
import yaml

from tests.xds.generators.harness import UPDATE, cases, dump, generate_case, golden_path, to_plain


@pytest.mark.parametrize("case", cases())
def test_golden(case: str) -> None:
    actual = dump(to_plain(generate_case(case)))
    path = golden_path(case)
    if UPDATE or not path.exists():
        path.write_text(actual)
        if not UPDATE:
            pytest.fail(f"{path.name} did not exist: written, check it and commit it")
    expected = path.read_text()
    if yaml.safe_load(actual) != yaml.safe_load(expected):
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), actual.splitlines(True), "golden", "actual"
            )
        )
        pytest.fail(f"{path.name} differs (UPDATE_GOLDEN_FILES=true to refresh):\n{diff}")


def test_every_case_has_a_golden_file_and_vice_versa() -> None:
    from tests.xds.generators.harness import TESTDATA

    goldens = sorted(p.name.removesuffix(".golden.yaml") for p in TESTDATA.glob("*.golden.yaml"))
    assert goldens == cases()
