"""The JSON writer (Go's indented layout) and the render cache."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from kuma.api.render import RenderCache, dumps, list_body, pretty
from kuma.model import registry
from kuma.model.rest import resource_from_dict
from tests.api.samples import sample_body

VALUES: list[Any] = [
    {},
    [],
    "",
    0,
    -1,
    1.5,
    1e21,
    True,
    False,
    None,
    {"a": {"b": [1, {"c": []}, {"d": {}}], "e": "x"}},
    [[[]], [{}], [1, [2, [3]]]],
    {"html": "<a href='x'>&</a>", "unicode": "zażółć 日本", "quote": 'say "hi"\n\t\\'},
    {"k" * 3: [None, True, 0.1, 2**63]},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_pretty_matches_json_dumps_with_go_layout(value: Any) -> None:
    assert pretty(value) == json.dumps(value, indent=2, ensure_ascii=False)
    assert json.loads(pretty(value)) == value


def test_dumps_ends_with_a_newline_and_is_utf8() -> None:
    assert dumps({"a": "ü"}) == '{\n  "a": "ü"\n}\n'.encode()


def test_line_separators_are_escaped_like_go() -> None:
    assert pretty("a\u2028b\u2029c") == '"a\\u2028b\\u2029c"'


def test_lone_surrogates_still_give_valid_utf8() -> None:
    text = pretty({"bad": "\ud800x", "ok": "ü"})
    text.encode("utf-8")
    assert json.loads(text) == {"bad": "\ud800x", "ok": "ü"}


def test_deep_nesting() -> None:
    value: Any = "leaf"
    for _ in range(100):
        value = {"n": value}
    assert pretty(value) == json.dumps(value, indent=2)


def test_non_json_values_are_refused() -> None:
    with pytest.raises(TypeError):
        pretty({"a": object()})
    with pytest.raises(ValueError):
        pretty(float("nan"))


def test_list_body_matches_a_whole_dump() -> None:
    items = [{"type": "Mesh", "name": "a"}, {"type": "Mesh", "name": "b", "x": {"y": [1]}}]
    expected = json.dumps({"total": 7, "items": items, "next": "http://h/p?a=1&b=<2>"}, indent=2)
    assert (
        list_body(7, [pretty(i) for i in items], "http://h/p?a=1&b=<2>")
        == (expected + "\n").encode()
    )
    assert list_body(0, [], None) == b'{\n  "total": 0,\n  "items": [],\n  "next": null\n}\n'


def test_cache_hits_and_content_keys() -> None:
    cache = RenderCache()
    resource = resource_from_dict(sample_body(registry.DATAPLANE, "dp-1"))
    first = cache.resource(resource)
    assert cache.resource(resource) is first
    assert (cache.hits, cache.misses) == (1, 1)
    resource.spec.networking.address = "10.0.0.1"  # a different spec is a different entry
    assert "10.0.0.1" in cache.resource(resource)
    assert cache.misses == 2


def test_cache_is_bounded() -> None:
    cache = RenderCache(max_chars=100)
    for i in range(20):
        cache.get_or_render(i, functools.partial(dict, n="x" * 10, i=i))
        assert sum(len(t) for t in cache._entries.values()) <= 100
    assert 0 < len(cache) < 20
    assert cache.get_or_render("big", lambda: {"x": "y" * 500}).startswith("{")
    assert "big" not in cache._entries
