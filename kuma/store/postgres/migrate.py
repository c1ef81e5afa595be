"""Schema migrations: numbered SQL files shipped inside the wheel, applied by `kuma-cp migrate up`.

Migrations live in `kuma/store/postgres/migrations/NNNN_<name>.up.sql`; NNNN is the schema
version the file brings the database to. The table `kuma_schema_migrations` records each one
applied (version, name, time); the database's schema version is the highest recorded.

`migrate_up` applies every pending file in ONE transaction, holding a transaction-level advisory
lock, so two control planes starting together never run a migration twice and a failure leaves
the schema as it was (PostgreSQL DDL is transactional). `schema_status` says where a database
stands; `PostgresStore.connect` refuses a database that is not exactly at `LATEST_VERSION`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Unpack

import asyncpg

from kuma.errors import StoreError
from kuma.store.postgres.settings import ConnectOptions, PostgresSettings, driver_errors

__all__ = [
    "MIGRATIONS_TABLE",
    "Migration",
    "MigrationResult",
    "SchemaStatus",
    "latest_version",
    "migrate_up",
    "migrations",
    "newer_schema_error",
    "read_schema_version",
    "schema_status",
]

MIGRATIONS_TABLE = "kuma_schema_migrations"
_LOCK_KEY = 0x6B756D61_6D696772  # "kumamigr": the advisory lock migrations hold
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.up\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    """The file name without `.up.sql`: `0001_create_resources`."""
    sql: str


@cache
def migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this kuma-py, oldest first."""
    found: dict[int, Migration] = {}
    folder = resources.files("kuma.store.postgres").joinpath("migrations")
    for entry in folder.iterdir():
        match = _FILE.match(entry.name)
        if match is None:
            if entry.name.endswith(".sql"):
                raise RuntimeError(f"migration file {entry.name!r} is not NNNN_<name>.up.sql")
            continue
        version = int(match.group(1))
        if version in found:
            raise RuntimeError(f"two migrations with version {version}: {entry.name}")
        found[version] = Migration(
            version, entry.name.removesuffix(".up.sql"), entry.read_text("utf-8")
        )
    if not found:
        raise RuntimeError("no migrations found in kuma/store/postgres/migrations")
    return tuple(found[v] for v in sorted(found))


def latest_version() -> int:
    """The schema version this kuma-py needs."""
    return migrations()[-1].version


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    version: int
    """The database's schema version; 0 when no migration was ever applied."""
    latest: int
    """The schema version this kuma-py needs."""

    @property
    def migrated(self) -> bool:
        return self.version == self.latest

    @property
    def pending(self) -> int:
        """How many migrations `migrate_up` would apply."""
        return sum(1 for m in migrations() if self.version < m.version <= self.latest)

    @property
    def newer_than_code(self) -> bool:
        """The database was migrated by a newer kuma-py; this one must not use it."""
        return self.version > self.latest


@dataclass(frozen=True, slots=True)
class MigrationResult:
    applied: tuple[str, ...]
    """Names of the migrations this call applied, in order (empty: already migrated)."""
    version: int
    """The schema version after the call."""
    previous_version: int

    @property
    def already_migrated(self) -> bool:
        """Nothing was pending: Kuma prints `DB has already been migrated for Kuma <ver>`."""
        return not self.applied


def newer_schema_error(db_version: int) -> StoreError:
    return StoreError(
        f"DB is migrated to newer version than Kuma. DB migration version {db_version}. "
        f"Kuma migration version {latest_version()}. Run newer version of Kuma"
    )


async def read_schema_version(conn: asyncpg.Connection) -> int:
    """The schema version recorded in the database the connection is on (0: none)."""
    exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MIGRATIONS_TABLE)
    if not exists:
        return 0
    version = await conn.fetchval(f"SELECT coalesce(max(version), 0) FROM {MIGRATIONS_TABLE}")
    return int(version)


async def schema_status(dsn: str | None = None, **options: Unpack[ConnectOptions]) -> SchemaStatus:
    """Where the database's schema stands relative to this kuma-py. StoreError if unreachable."""
    settings = PostgresSettings(dsn, **options)
    conn = await settings.connect(application_name="kuma-cp migrate")
    try:
        with driver_errors(settings, "read schema version"):
            return SchemaStatus(await read_schema_version(conn), latest_version())
    finally:
        await _close(conn)


async def migrate_up(
    dsn: str | None = None,
    *,
    target_version: int | None = None,
    **options: Unpack[ConnectOptions],
) -> MigrationResult:
    """Apply every pending migration (up to `target_version`, default all) in one transaction.

    Safe to run from several processes at once: they queue on an advisory lock, and whoever
    comes second finds nothing pending. Raises StoreError when the database is unreachable,
    a migration fails (nothing is applied then), or the database is newer than this kuma-py.
    """
    settings = PostgresSettings(dsn, **options)
    goal = latest_version() if target_version is None else target_version
    conn = await settings.connect(application_name="kuma-cp migrate")
    try:
        with driver_errors(settings, "migrate schema"):
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
                await conn.execute(
                    f"""CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (
                        version    integer PRIMARY KEY,
                        name       text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )"""
                )
                current = await read_schema_version(conn)
                if current > latest_version():
                    raise newer_schema_error(current)
                applied: list[str] = []
                for migration in migrations():
                    if not current < migration.version <= goal:
                        continue
                    try:
                        await conn.execute(migration.sql)
                    except asyncpg.PostgresError as e:
                        raise StoreError(
                            f"PostgreSQL {settings.target}: migration {migration.name} "
                            f"failed, nothing was applied: {e}"
                        ) from e
                    await conn.execute(
                        f"INSERT INTO {MIGRATIONS_TABLE} (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                    applied.append(migration.name)
                version = await read_schema_version(conn)
    finally:
        await _close(conn)
    return MigrationResult(tuple(applied), version, current)


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await conn.close(timeout=2)
    except Exception:  # the connection is going away either way; don't mask the real outcome
        conn.terminate()
