"""Go standard-library behaviour that Kuma's validation messages depend on.

Kuma's validators lean on Go's `net.ParseIP`, `net.SplitHostPort`, `net/url` and `%q`; their
verdicts (and, for SplitHostPort, their error texts) reach the user, so kuma-py reproduces them
here instead of approximating them with Python's `ipaddress` and `urllib`, which accept and
reject different inputs. Semantics follow the Go release Kuma 0.7.3 was built with (Go 1.15):
IPv4 octets may carry leading zeros, zones (`fe80::1%eth0`) are not IP addresses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = [
    "AddrError",
    "GoURL",
    "go_quote",
    "parse_ip",
    "parse_request_uri",
    "parse_url",
    "split_host_port",
]

_SIMPLE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
    '"': '\\"',
}


def go_quote(text: str) -> str:
    """`fmt.Sprintf("%q", text)`: a double-quoted Go string literal.

    Printable characters (Go's unicode.IsPrint, which is Python's str.isprintable per
    character) stay as they are; the rest become \\a..\\v, \\xHH, \\uHHHH or \\UHHHHHHHH.
    """
    out = ['"']
    for ch in text:
        if ch in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x20 or code == 0x7F:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# net.ParseIP


def _parse_ipv4(text: str) -> bool:
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        # Go's dtoi: one or more ASCII digits, value <= 255 (leading zeros allowed before Go 1.17)
        if not part or not all("0" <= c <= "9" for c in part) or int(part) > 0xFF:
            return False
    return True


def parse_ip(text: str) -> bool:
    """True when Go's `net.ParseIP(text)` returns an address (IPv4 or IPv6, no zone)."""
    for ch in text:
        if ch == ".":
            return _parse_ipv4(text)
        if ch == ":":
            if "%" in text or not text.isascii():
                return False
            try:
                ipaddress.IPv6Address(text)
            except ValueError:
                return False
            return True
    return False


# ---------------------------------------------------------------------------------------------
# net.SplitHostPort


class AddrError(ValueError):
    """Go's `*net.AddrError`; `str()` is Go's `Error()` text."""

    def __init__(self, why: str, addr: str) -> None:
        self.why = why
        self.addr = addr
        super().__init__(f"address {addr}: {why}" if addr else why)


def split_host_port(hostport: str) -> tuple[str, str]:
    """Go's `net.SplitHostPort`: `"host:port"`, `"[v6]:port"` -> (host, port), else AddrError."""
    missing_port = "missing port in address"
    too_many_colons = "too many colons in address"
    i = hostport.rfind(":")
    if i < 0:
        raise AddrError(missing_port, hostport)
    j = k = 0
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise AddrError("missing ']' in address", hostport)
        if end + 1 == len(hostport):
            raise AddrError(missing_port, hostport)
        if end + 1 != i:
            if hostport[end + 1] == ":":
                raise AddrError(too_many_colons, hostport)
            raise AddrError(missing_port, hostport)
        host = hostport[1:end]
        j, k = 1, end + 1
    else:
        host = hostport[:i]
        if ":" in host:
            raise AddrError(too_many_colons, hostport)
    if "[" in hostport[j:]:
        raise AddrError("unexpected '[' in address", hostport)
    if "]" in hostport[k:]:
        raise AddrError("unexpected ']' in address", hostport)
    return host, hostport[i + 1 :]


# ---------------------------------------------------------------------------------------------
# net/url


@dataclass(frozen=True, slots=True)
class GoURL:
    """The parts of a Go `*url.URL` the validators look at."""

    scheme: str = ""
    opaque: str = ""
    host: str = ""
    path: str = ""

    def port(self) -> str:
        """Go's `(*url.URL).Port()`: the digits after the host's last colon, or ""."""
        host = self.host
        colon = host.rfind(":")
        if colon != -1 and _valid_optional_port(host[colon:]):
            return host[colon + 1 :]
        return ""


_HEX = "0123456789abcdefABCDEF"
_HOST_OK = set("!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_OK = set("-._:~!$&'()*+,;=%@")


def _is_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _valid_optional_port(port: str) -> bool:
    if port == "":
        return True
    if port[0] != ":":
        return False
    return all("0" <= c <= "9" for c in port[1:])


def _check_escapes(text: str, *, host: bool) -> None:
    """Go's `unescape` error checks, in path mode (host=False) or host mode (host=True)."""
    raw = text.encode("utf-8")
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == 0x25:  # '%'
            triple = raw[i : i + 3]
            if len(triple) < 3 or chr(triple[1]) not in _HEX or chr(triple[2]) not in _HEX:
                shown = go_quote(triple.decode("utf-8", "replace"))
                raise ValueError(f"invalid URL escape {shown}")
            if host and int(chr(triple[1]), 16) < 8 and triple != b"%25":
                raise ValueError(f"invalid URL escape {go_quote(triple.decode('ascii'))}")
            i += 3
            continue
        if host and byte < 0x80:
            c = chr(byte)
            if not (_is_alnum(c) or c in _HOST_OK):
                raise ValueError(f"invalid character {go_quote(c)} in host name")
        i += 1


def _parse_host(host: str) -> str:
    if host.startswith("["):
        i = host.rfind("]")
        if i < 0:
            raise ValueError("missing ']' in host")
        colon_port = host[i + 1 :]
        if not _valid_optional_port(colon_port):
            raise ValueError(f"invalid port {go_quote(colon_port)} after host")
        zone = host[:i].find("%25")
        if zone >= 0:
            _check_escapes(host[:zone], host=True)
            _check_escapes(host[i:], host=True)
            return host
    else:
        i = host.rfind(":")
        if i != -1:
            colon_port = host[i:]
            if not _valid_optional_port(colon_port):
                raise ValueError(f"invalid port {go_quote(colon_port)} after host")
    _check_escapes(host, host=True)
    return host


def _parse_authority(authority: str) -> str:
    i = authority.rfind("@")
    host = _parse_host(authority if i < 0 else authority[i + 1 :])
    if i >= 0:
        userinfo = authority[:i]
        if not all(_is_alnum(c) or c in _USERINFO_OK for c in userinfo):
            raise ValueError("net/url: invalid userinfo")
        _check_escapes(userinfo, host=False)
    return host


def _get_scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if ("0" <= c <= "9") or c in "+-.":
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise ValueError("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return "", raw
    return "", raw


def _parse(raw: str, *, via_request: bool) -> GoURL:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise ValueError("net/url: invalid control character in URL")
    if raw == "" and via_request:
        raise ValueError("empty url")
    if raw == "*":
        return GoURL(path="*")
    scheme, rest = _get_scheme(raw)
    scheme = scheme.lower()
    # the query is not looked at; "x?" (ForceQuery) and "x?a=b" both leave "x"
    rest = rest.split("?", 1)[0]
    if not rest.startswith("/"):
        if scheme:
            return GoURL(scheme=scheme, opaque=rest)
        if via_request:
            raise ValueError("invalid URI for request")
        colon = rest.find(":")
        slash = rest.find("/")
        if colon >= 0 and (slash < 0 or colon < slash):
            raise ValueError("first path segment in URL cannot contain colon")
    host = ""
    if (scheme or (not via_request and not rest.startswith("///"))) and rest.startswith("//"):
        authority, sep, tail = rest[2:].partition("/")
        rest = sep + tail
        host = _parse_authority(authority)
    _check_escapes(rest, host=False)
    return GoURL(scheme=scheme, host=host, path=rest)


def parse_request_uri(raw: str) -> GoURL:
    """Go's `url.ParseRequestURI`: an absolute URI or absolute path, no fragment; else ValueError."""
    return _parse(raw, via_request=True)


def parse_url(raw: str) -> GoURL:
    """Go's `url.Parse` (a URL or reference, with an optional `#fragment`); else ValueError."""
    main, hash_, fragment = raw.partition("#")
    url = _parse(main, via_request=False)
    if hash_:
        _check_escapes(fragment, host=False)
    return url
