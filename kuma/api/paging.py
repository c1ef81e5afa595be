"""Query strings, page parameters and `next` links (Kuma's `pkg/api-server/pagination.go`).

* `size`: an integer (Go's strconv.Atoi: optional sign, digits only), default 100, at most 1000;
  `0` means "no paging" like Kuma. Anything else is InvalidPageSizeError.
* `offset`: opaque, handed to the store (which raises InvalidOffsetError for a bad one).
* `next`: `<public_url scheme+host><request path>?<request query with offset replaced>`, the
  query sorted by key and form-encoded like Go's url.Values.Encode; null on the last page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from kuma.errors import InvalidPageSizeError

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "Page",
    "Query",
    "next_link",
    "parse_page",
    "parse_query",
]

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
_INT = re.compile(r"[+-]?[0-9]+")
# Go's url.URL.EscapedPath leaves these unescaped in a path
_PATH_SAFE = "/:@!$&'()*+,;=~"


class Query:
    """A parsed query string; `first()` is Go's url.Values.Get (the first value)."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items

    def first(self, key: str) -> str:
        for k, v in self.items:
            if k == key:
                return v
        return ""

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.items if k == key]


_EMPTY = Query([])


def parse_query(query_string: bytes) -> Query:
    if not query_string:
        return _EMPTY
    return Query(parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class Page:
    size: int | None
    """None: everything (no paging)."""
    offset: str | None
    requested: bool
    """The request named `size` or `offset` itself."""


def parse_page(query: Query) -> Page:
    raw_size = query.first("size")
    offset = query.first("offset")
    size = DEFAULT_PAGE_SIZE
    if raw_size != "":
        if not _INT.fullmatch(raw_size):
            raise InvalidPageSizeError("Invalid format")
        size = int(raw_size)
        if size > MAX_PAGE_SIZE:
            raise InvalidPageSizeError(
                f"Invalid page size of {size}. Maximum page size is {MAX_PAGE_SIZE}"
            )
        if size < 0:
            raise InvalidPageSizeError(f"Invalid page size of {size}. Minimum page size is 0")
    return Page(
        size=size or None,
        offset=offset or None,
        requested=raw_size != "" or offset != "",
    )


def next_link(public_url: str, path: str, query: Query, next_offset: str | None) -> str | None:
    """The URL of the next page, or None when `next_offset` is None (last page)."""
    if next_offset is None:
        return None
    base = urlsplit(public_url)
    merged: dict[str, list[str]] = {}
    for k, v in query.items:
        if k != "offset":
            merged.setdefault(k, []).append(v)
    merged["offset"] = [next_offset]
    encoded = "&".join(
        f"{quote_plus(k)}={quote_plus(v)}" for k in sorted(merged) for v in merged[k]
    )
    return f"{base.scheme}://{base.netloc}{quote(path, safe=_PATH_SAFE)}?{encoded}"
