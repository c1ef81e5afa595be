"""CORS the way Kuma's API server does it (go-restful's CrossOriginResourceSharing filter).

Kuma configures the filter with `AllowedDomains = apiServer.corsAllowedDomains` (default
`[".*"]`), `ExposeHeaders = [Access-Control-Allow-Origin]`, no allowed headers, no max age, no
credentials. The behaviour that follows:

* no `Origin`, or an Origin that is neither equal to an allowed domain nor matched (searched,
  not anchored) by one of them as a regex: the request is served as if CORS did not exist;
* any other method than a preflight: served, with `Access-Control-Allow-Origin: <origin>` and
  `Access-Control-Expose-Headers: Access-Control-Allow-Origin` added;
* preflight (`OPTIONS` with `Access-Control-Request-Method`): answered here with 200 and no
  body. When the requested method is one the path serves and every requested header is allowed
  (none is: Kuma allows no request headers), the answer carries `Access-Control-Allow-Methods`
  (the path's methods, comma-separated), `Access-Control-Allow-Headers`, and the two headers
  above; otherwise it carries none of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CorsMiddleware", "compile_allowed_domains"]

_EXPOSE = (b"access-control-expose-headers", b"Access-Control-Allow-Origin")


def compile_allowed_domains(domains: Sequence[str]) -> list[re.Pattern[str]]:
    """Compile the regexes once; a bad one is a configuration error (ValueError)."""
    patterns = []
    for domain in domains:
        try:
            patterns.append(re.compile(domain))
        except re.error as e:
            raise ValueError(
                f"apiServer.corsAllowedDomains: invalid regex {domain!r}: {e}"
            ) from None
    return patterns


class CorsMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_domains: Sequence[str],
        methods_for_path: Callable[[str], list[str]],
        allowed_headers: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.domains = frozenset(allowed_domains)
        self.patterns = compile_allowed_domains(allowed_domains)
        self.methods_for_path = methods_for_path
        self.allowed_headers = frozenset(h.lower() for h in allowed_headers)

    def origin_allowed(self, origin: str) -> bool:
        if not origin:
            return False
        if not self.domains:
            return True
        if origin in self.domains:
            return True
        return any(p.search(origin) for p in self.patterns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = ""
        acrm = ""
        acrh = ""
        for name, value in scope["headers"]:
            if name == b"origin" and not origin:
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method" and not acrm:
                acrm = value.decode("latin-1")
            elif name == b"access-control-request-headers" and not acrh:
                acrh = value.decode("latin-1")
        if not origin or not self.origin_allowed(origin):
            await self.app(scope, receive, send)
            return
        cors_headers = [_EXPOSE, (b"access-control-allow-origin", origin.encode("latin-1"))]
        if scope["method"] == "OPTIONS" and acrm:
            await self._preflight(scope, send, acrm, acrh, cors_headers)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *cors_headers]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(
        self,
        scope: Scope,
        send: Send,
        method: str,
        request_headers: str,
        cors_headers: list[tuple[bytes, bytes]],
    ) -> None:
        headers: list[tuple[bytes, bytes]] = [(b"content-length", b"0")]
        methods = self.methods_for_path(scope["path"])
        wanted = [h.strip() for h in request_headers.split(",")] if request_headers else []
        if method in methods and all(h.lower() in self.allowed_headers for h in wanted):
            headers += [
                (b"access-control-allow-methods", ",".join(methods).encode("latin-1")),
                (b"access-control-allow-headers", request_headers.encode("latin-1")),
                *cors_headers,
            ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
