"""Selector rules shared by the policies (`sources`, `destinations`, `selectors`, route `conf`).

For each selector, in Kuma's order: "must have at least one tag"; the extra selector-wide
checks; then per tag name, sorted: the name checks, the extra name checks, the value checks,
the extra value checks; last "mandatory tag ... is missing".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kuma.model.selectors import PROTOCOL_TAG, SERVICE_TAG
from kuma.model.validation import Path, Violations
from kuma.model.validators.common import key, sorted_keys
from kuma.model.validators.golang import go_quote

__all__ = [
    "ONLY_SERVICE_TAG_ALLOWED",
    "SELECTOR_VALUE_RE",
    "TAG_NAME_RE",
    "TAG_VALUE_RE",
    "SelectorOpts",
    "SelectorsOpts",
    "protocol_validator",
    "validate_selector",
    "validate_selectors",
]

TAG_NAME_RE = re.compile(r"[a-zA-Z0-9.\-_:/]*")
"""Allowed tag names (use fullmatch)."""
TAG_VALUE_RE = re.compile(r"[a-zA-Z0-9.\-_:]*")
"""Allowed tag values on dataplanes (use fullmatch)."""
SELECTOR_VALUE_RE = re.compile(r"[a-zA-Z0-9.\-_:/]*|\*")
"""Allowed tag values in selectors (use fullmatch)."""

SelectorCheck = Callable[[Violations, Path, Mapping[str, str]], None]
TagNameCheck = Callable[[Violations, Path, str], None]
TagValueCheck = Callable[[Violations, Path, str, str], None]


@dataclass(frozen=True)
class SelectorOpts:
    """What one selector (a tag map) must satisfy."""

    require_at_least_one_tag: bool = False
    require_service: bool = False
    extra_selector_checks: Sequence[SelectorCheck] = field(default=())
    extra_name_checks: Sequence[TagNameCheck] = field(default=())
    extra_value_checks: Sequence[TagValueCheck] = field(default=())


@dataclass(frozen=True)
class SelectorsOpts(SelectorOpts):
    """What a list of selectors must satisfy."""

    require_at_least_one_selector: bool = False


def validate_selector(
    errs: Violations, path: Path, selector: Mapping[str, str], opts: SelectorOpts
) -> None:
    """Check one tag map; violations go under `path` (`sources[0].match`)."""
    if opts.require_at_least_one_tag and not selector:
        errs.add(path, "must have at least one tag")
    for check in opts.extra_selector_checks:
        check(errs, path, selector)
    for name in sorted_keys(selector):
        if name == "":
            errs.add(path, "tag name must be non-empty")
        if not TAG_NAME_RE.fullmatch(name):
            errs.add(
                key(path, name),
                "tag name must consist of alphanumeric characters, dots, dashes, slashes and underscores",
            )
        for name_check in opts.extra_name_checks:
            name_check(errs, path, name)
        value = selector[name]
        if value == "":
            errs.add(key(path, name), "tag value must be non-empty")
        if not SELECTOR_VALUE_RE.fullmatch(value):
            errs.add(
                key(path, name),
                'tag value must consist of alphanumeric characters, dots, dashes, slashes and underscores or be "*"',
            )
        for value_check in opts.extra_value_checks:
            value_check(errs, path, name, value)
    if opts.require_service and SERVICE_TAG not in selector:
        errs.add(path, f"mandatory tag {go_quote(SERVICE_TAG)} is missing")


def validate_selectors(
    errs: Violations, path: Path, selectors: Sequence[Any], opts: SelectorsOpts
) -> None:
    """Check a list of `Selector` messages; each one's tags are at `path[i].match`."""
    if opts.require_at_least_one_selector and not selectors:
        errs.add(path, "must have at least one element")
    for i, selector in enumerate(selectors):
        validate_selector(errs, path.index(i).field("match"), selector.match, opts)


def _exactly_one_service_tag(errs: Violations, path: Path, selector: Mapping[str, str]) -> None:
    if len(selector) != 1 or SERVICE_TAG not in selector:
        errs.add(path, f"must consist of exactly one tag {go_quote(SERVICE_TAG)}")


def _only_service_tag_name(errs: Violations, path: Path, name: str) -> None:
    if name != SERVICE_TAG:
        errs.add(key(path, name), f"tag {go_quote(name)} is not allowed")


ONLY_SERVICE_TAG_ALLOWED = SelectorsOpts(
    require_at_least_one_selector=True,
    require_service=True,
    extra_selector_checks=(_exactly_one_service_tag,),
    extra_name_checks=(_only_service_tag_name,),
)
"""At least one selector, each exactly `{kuma.io/service: ...}`."""


def protocol_validator(*protocols: str) -> SelectorCheck:
    """A selector check: `kuma.io/protocol` must be present and one of `protocols`."""

    def check(errs: Violations, path: Path, selector: Mapping[str, str]) -> None:
        value = selector.get(PROTOCOL_TAG)
        if value is None:
            errs.add(path, "protocol must be specified")
            return
        if value not in protocols:
            errs.add(key(path, PROTOCOL_TAG), f"must be one of the [{', '.join(protocols)}]")

    return check
