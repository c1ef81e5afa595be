"""Shared fixtures: the anyio backend, and a throwaway PostgreSQL database per test session."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

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


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin DSN, after checking that the server answers."""
    import asyncio

    import asyncpg

    dsn = postgres_admin_dsn()

    async def probe() -> None:
        conn = await asyncpg.connect(dsn, timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as e:
        _require_postgres_failure(f"{dsn}: {e}")
    return dsn


@pytest.fixture
async def postgres_db(postgres_server: str) -> AsyncIterator[str]:
    """A fresh empty database for one test, dropped afterwards; yields its DSN."""
    import asyncpg

    name = f"kuma_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    dsn = _with_database(postgres_server, name)
    try:
        yield dsn
    finally:
        admin = await asyncpg.connect(postgres_server, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def _with_database(dsn: str, database: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))
