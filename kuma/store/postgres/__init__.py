"""The PostgreSQL resource store: schema migrations, the store, and cross-instance change events.

    result = await migrate_up(dsn)              # `kuma-cp migrate up`
    store = await PostgresStore.connect(dsn)    # refuses an unmigrated database
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(store.run)           # wake-ups, change-log reads, pruning
            ...
    finally:
        await store.close()

See docs/postgres.md for operating it, and the submodules for the contracts.
"""

from kuma.store.postgres.cursor import ChangeCursor
from kuma.store.postgres.listener import CHANGES_TABLE, WAKE_CHANNEL, ChangeFeed
from kuma.store.postgres.migrate import (
    Migration,
    MigrationResult,
    SchemaStatus,
    latest_version,
    migrate_up,
    migrations,
    schema_status,
)
from kuma.store.postgres.pool import ConnectionPool
from kuma.store.postgres.settings import TLS_MODES, ConnectOptions, PostgresSettings
from kuma.store.postgres.store import DEFAULT_MAX_CONNECTIONS, PostgresStore, StoreOptions

__all__ = [
    "CHANGES_TABLE",
    "DEFAULT_MAX_CONNECTIONS",
    "TLS_MODES",
    "WAKE_CHANNEL",
    "ChangeCursor",
    "ChangeFeed",
    "ConnectOptions",
    "ConnectionPool",
    "Migration",
    "MigrationResult",
    "PostgresSettings",
    "PostgresStore",
    "SchemaStatus",
    "StoreOptions",
    "latest_version",
    "migrate_up",
    "migrations",
    "schema_status",
]
