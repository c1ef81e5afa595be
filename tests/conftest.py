"""Shared fixtures: the anyio backend, and a throwaway PostgreSQL database per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def postgres_admin_dsn() -> str:
    """`KUMA_TEST_POSTGRES_DSN`, else the machine's local server."""
    return os.environ.get("KUMA_TEST_POSTGRES_DSN", DEFAULT_DSN)


def _require_postgres_failure(reason: str) -> None:
    # A missing PostgreSQL is a failure (CI must never pass by skipping); a developer without
    # one can opt into skipping with KUMA_TEST_ALLOW_NO_POSTGRES=1.
    if os.environ.get("KUMA_TEST_ALLOW_NO_POSTGRES") == "1":
        pytest.skip(f"PostgreSQL not available: {reason}")
    pytest.fail(f"PostgreSQL is required (set KUMA_TEST_POSTGRES_DSN): {reason}")


def _run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a fresh event loop in a worker thread.

    The PostgreSQL fixtures are synchronous so that an async fixture may request them with
    `request.getfixturevalue()` (anyio's plugin cannot run a second async fixture from inside
    one, and asyncio.run() refuses to run inside a running loop).
    """
    import asyncio
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin DSN, after checking that the server answers."""
    import asyncpg

    dsn = postgres_admin_dsn()

    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.close()

    try:
        _run_coroutine(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        _require_postgres_failure(f"{dsn}: {e}")
    return dsn


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A fresh empty database for one test, dropped afterwards; yields its DSN."""
    import asyncpg

    name = f"kuma_test_{uuid.uuid4().hex[:12]}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(postgres_server, timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    _run_coroutine(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(postgres_server, name)
    finally:
        _run_coroutine(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _with_database(dsn: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))
