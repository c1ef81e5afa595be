"""kuma-dp's token handling: reading the token file, sending it, and the answers to a bad one."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from kuma.dp.config import DataplaneConfig
from kuma.dp.cp_client import Catalog, fetch_bootstrap
from kuma.dp.errors import TokenError
from kuma.dp.run import (
    TOKEN_COPY_FILE,
    TOKEN_REQUIRED_MESSAGE,
    DataplaneToken,
    load_token,
    write_token_copy,
)
from kuma.xds.bootstrap import BootstrapRequest

pytestmark = pytest.mark.anyio

FAST = {"backoff": timedelta(milliseconds=5), "max_duration": timedelta(milliseconds=200)}
REQUIRED = Catalog("http://cp:5682", "http://localhost:5679")
NOT_REQUIRED = Catalog("http://cp:5682")


def cfg(token_path: str = "") -> DataplaneConfig:
    return DataplaneConfig(name="web-01", token_path=token_path)


def test_token_is_read_when_the_cp_has_a_token_server(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("header.claims.signature\n")  # `echo $TOKEN > file` adds a newline
    assert load_token(cfg(str(path)), REQUIRED) == DataplaneToken(
        str(path), "header.claims.signature", exact=False
    )
    path.write_text("header.claims.signature")  # what `kumactl ... > file` writes
    assert load_token(cfg(str(path)), REQUIRED) == DataplaneToken(
        str(path), "header.claims.signature", exact=True
    )


def test_a_clean_copy_of_the_token(tmp_path: Path) -> None:
    path = write_token_copy(str(tmp_path / "config"), "a.b.c")
    assert path == str(tmp_path / "config" / TOKEN_COPY_FILE)
    assert Path(path).read_bytes() == b"a.b.c"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("t.t.t")
    monkeypatch.chdir(tmp_path)
    assert load_token(cfg("token"), REQUIRED) == DataplaneToken(
        os.path.join(tmp_path, "token"), "t.t.t"
    )


def test_without_a_token_server_only_the_path_is_passed_on(tmp_path: Path) -> None:
    missing = tmp_path / "not-there"
    assert load_token(cfg(str(missing)), NOT_REQUIRED) == DataplaneToken(str(missing), "")
    assert load_token(cfg(), NOT_REQUIRED) == DataplaneToken("", "")


def test_token_file_problems(tmp_path: Path) -> None:
    with pytest.raises(TokenError) as info:
        load_token(cfg(), REQUIRED)
    assert str(info.value) == TOKEN_REQUIRED_MESSAGE

    missing = tmp_path / "missing"
    with pytest.raises(TokenError) as info:
        load_token(cfg(str(missing)), REQUIRED)
    assert str(info.value) == (
        f"could not read file: [Errno 2] No such file or directory: '{missing}'"
    )

    cases = [
        (b"  \n", "is empty"),
        (b"\xff\xfe", "is not a dataplane token (not ASCII text)"),
        (b"two words", "is not a dataplane token (it has spaces or control characters inside)"),
        (b"a\x00b", "is not a dataplane token (it has spaces or control characters inside)"),
    ]
    for content, problem in cases:
        path = tmp_path / "token"
        path.write_bytes(content)
        with pytest.raises(TokenError) as info:
            load_token(cfg(str(path)), REQUIRED)
        assert str(info.value) == f"token under file {path} {problem}"


def _client(status: int, text: str, seen: list[bytes]) -> httpx.AsyncClient:
    async def handler(request: Request) -> Response:
        seen.append(await request.body())
        return PlainTextResponse(text, status_code=status)

    app = Starlette(routes=[Route("/bootstrap", handler, methods=["POST"])])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app))


REQUEST = BootstrapRequest("default", "web-01", 0, "/etc/kuma/token", "a.b.c")


async def test_the_token_goes_into_the_bootstrap_request() -> None:
    seen: list[bytes] = []
    async with _client(200, "node: {id: default.web-01}\n", seen) as client:
        await fetch_bootstrap(client, "http://cp:5682", REQUEST, **FAST)
    assert httpx.Response(200, content=seen[0]).json() == {
        "mesh": "default",
        "name": "web-01",
        "dataplaneTokenPath": "/etc/kuma/token",
        "dataplaneToken": "a.b.c",
    }


async def test_a_missing_token_fails_at_once() -> None:
    seen: list[bytes] = []
    message = "Dataplane Token is required. Generate token using ..."
    async with _client(401, message, seen) as client:
        with pytest.raises(TokenError) as info:
            await fetch_bootstrap(client, "http://cp:5682", REQUEST, **FAST)
    assert len(seen) == 1
    assert str(info.value) == f"the Control Plane requires a dataplane token: {message}"


async def test_a_rejected_token_fails_at_once_with_advice() -> None:
    seen: list[bytes] = []
    reason = (
        "Invalid Dataplane Token: proxy name from requestor: web-01 is different than in token: "
        "web-02"
    )
    async with _client(403, reason, seen) as client:
        with pytest.raises(TokenError) as info:
            await fetch_bootstrap(client, "http://cp:5682", REQUEST, **FAST)
    assert len(seen) == 1
    assert str(info.value) == (
        f"the Control Plane rejected the dataplane token in /etc/kuma/token: {reason}. On "
        "Universal, generate a token for this dataplane with 'kumactl generate dataplane-token "
        "--dataplane=web-01 --mesh=default'; on Kubernetes the token is the Pod's "
        "ServiceAccount token, which must belong to the Pod's namespace"
    )
