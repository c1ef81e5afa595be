"""Checking an Envoy access log format string the way Kuma does (mesh logging backends).

A format is literal text with command operators: `%START_TIME%`, `%REQ(X-Header?Alt):10%`,
`%DYNAMIC_METADATA(ns:key)%`, `%FILTER_STATE(key)%` and Kuma's own placeholders such as
`%KUMA_SOURCE_SERVICE%`. Any upper-case command name is accepted; what is checked is the shape
of each operator, with Kuma's error texts.
"""

from __future__ import annotations

import re

from kuma.model.validators.golang import go_quote

__all__ = ["format_error"]

_COMMAND = re.compile(r"%(?P<command>[A-Z_0-9]+)(?:\((?P<args>[^)]*)\))?(?::(?P<limit>[0-9]+))?%")
_HEADER_NEWLINE = re.compile(r"[\x00\r\n]")
_START_TIME_NEWLINE = re.compile(r"%[-_0^#]*[1-9]*n")

_HEADER_COMMANDS = {"REQ", "RESP", "TRAILER"}
_DESCRIPTORS = {
    "REQ": "%REQ(X?Y):Z%",
    "RESP": "%RESP(X?Y):Z%",
    "TRAILER": "%TRAILER(X?Y):Z%",
    "DYNAMIC_METADATA": "%DYNAMIC_METADATA(NAMESPACE:KEY*):Z%",
    "FILTER_STATE": "%FILTER_STATE(KEY):Z%",
}
_MAX_INT = 2**63 - 1


class _FormatError(Exception):
    pass


def _descriptor(command: str) -> str:
    return go_quote(_DESCRIPTORS.get(command, f"%{command}%"))


def _has_no_arguments(token: str, command: str, args: str, limit: str) -> bool:
    if args:
        return False
    inner = token[1:-1]
    if not limit:
        return inner == command
    return inner[: len(inner) - (len(limit) + 1)] == command


def _check_limit(token: str, limit: str) -> None:
    if limit and int(limit) > _MAX_INT:
        raise _FormatError(
            f"length must be an integer, instead got {go_quote(limit)} in {go_quote(token)}"
        )


def _check_operator(token: str, command: str, args: str, limit: str) -> None:
    if command in _HEADER_COMMANDS:
        if _has_no_arguments(token, command, args, limit):
            raise _FormatError(
                f"command {_descriptor(command)} requires a header and optional alternative "
                f"header names as its arguments, instead got {go_quote(token)}"
            )
        _check_limit(token, limit)
        headers = args.split("?")
        if len(headers) > 2:
            raise _FormatError(f"more than 1 alternative header specified in {go_quote(token)}")
        if any(_HEADER_NEWLINE.search(h) for h in headers):
            raise _FormatError(f"header name contains a newline in {go_quote(token)}")
    elif command == "DYNAMIC_METADATA":
        _check_limit(token, limit)
        if _has_no_arguments(token, command, args, limit):
            raise _FormatError(
                f"command {_descriptor(command)} requires a filter namespace and optional path "
                f"as its arguments, instead got {go_quote(token)}"
            )
    elif command == "FILTER_STATE":
        _check_limit(token, limit)
        if _has_no_arguments(token, command, args, limit) or not args:
            raise _FormatError(
                f"command {_descriptor(command)} requires a key as its argument, "
                f"instead got {go_quote(token)}"
            )
    elif command == "START_TIME":
        if _START_TIME_NEWLINE.search(args):
            raise _FormatError(f"start time format string contains a newline in {go_quote(token)}")
    elif token[1:-1] != command:
        raise _FormatError(
            f"command {_descriptor(command)} doesn't support arguments or max length "
            f"constraint, instead got {go_quote(token)}"
        )


def format_error(fmt: str) -> str | None:
    """Kuma's error text for an invalid access log format, or None when `fmt` is valid.

    Positions in the text count bytes of UTF-8 from 1, as Kuma reports them.
    """
    pos = 0
    try:
        while pos < len(fmt):
            if fmt[pos] != "%":
                pos += 1
                continue
            m = _COMMAND.match(fmt, pos)
            if m is None:
                position = len(fmt[:pos].encode("utf-8")) + 1
                raise _FormatError(
                    f"expected a command operator to start at position {position}, "
                    f"instead got: {go_quote(fmt[pos:])}"
                )
            _check_operator(
                m.group(0), m.group("command"), m.group("args") or "", m.group("limit") or ""
            )
            pos = m.end()
    except _FormatError as e:
        return f"format string is not valid: {e}"
    return None
