"""How kuma-py reaches PostgreSQL: connection settings, TLS, and driver-error translation.

`PostgresSettings` mirrors Kuma's `store.postgres.*` configuration. Every connection kuma-py opens
(the pool, the LISTEN connection, `kuma-cp migrate up`) is made from one of these, so TLS and
timeouts behave the same everywhere. Driver errors never leave this package: `store_error`
turns them into `kuma.errors.StoreError` with a message naming the server (never the password).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypedDict
from urllib.parse import parse_qs, unquote, urlsplit

import asyncpg

from kuma.errors import StoreError

__all__ = [
    "DRIVER_ERRORS",
    "TLS_MODES",
    "ConnectOptions",
    "PostgresSettings",
    "driver_errors",
    "store_error",
]

TLS_MODES: dict[str, str] = {
    "disable": "disable",
    "require": "require",
    "verify-ca": "verify-ca",
    "verify-full": "verify-full",
    # Kuma 0.7.3's own spellings of the same modes (pkg/config/plugins/resources/postgres).
    "verifyNone": "require",
    "verifyCa": "verify-ca",
    "verifyFull": "verify-full",
}
"""Accepted `tls_mode` values and the libpq mode each one means."""

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,  # refused / reset connections, DNS failures, ssl.SSLError
    TimeoutError,
)
"""What asyncpg and the socket layer raise; `store_error` maps each of these to StoreError."""


class ConnectOptions(TypedDict, total=False):
    """Keyword arguments accepted wherever a DSN is (see `PostgresSettings`)."""

    host: str | None
    port: int | None
    user: str | None
    password: str | None
    database: str | None
    connect_timeout: float
    tls_mode: str
    tls_cert_path: str | None
    tls_key_path: str | None
    tls_ca_path: str | None


@dataclass(frozen=True, slots=True)
class PostgresSettings:
    """Where the database is and how to talk to it.

    `dsn` (`postgresql://user:pass@host:port/db?...`) and the separate fields may be mixed; a
    field that is set wins over the same part of the DSN. What neither gives falls back to
    asyncpg's (libpq's) defaults, including the `PG*` environment variables.

    TLS (`tls_mode`, Kuma's `store.postgres.tls.mode`):

    * `disable`: plain TCP. If the DSN itself carries `sslmode=...`, that wins over this default.
    * `require` (Kuma: `verifyNone`): TLS, the server's certificate is not checked.
    * `verify-ca` (`verifyCa`): TLS, the certificate must be signed by `tls_ca_path`.
    * `verify-full` (`verifyFull`): as verify-ca, and the certificate must name the host.

    `tls_cert_path` + `tls_key_path` give a client certificate (both or neither).
    """

    dsn: str | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    connect_timeout: float = 5.0
    """Seconds allowed for opening one connection (TCP, TLS, authentication)."""
    tls_mode: str = "disable"
    tls_cert_path: str | None = None
    tls_key_path: str | None = None
    tls_ca_path: str | None = None

    def __post_init__(self) -> None:
        if self.tls_mode not in TLS_MODES:
            raise StoreError(
                f"PostgreSQL TLS mode {self.tls_mode!r} is not one of: " + ", ".join(TLS_MODES)
            )
        if not self.connect_timeout > 0:
            raise StoreError(
                f"PostgreSQL connection timeout must be positive, got {self.connect_timeout}"
            )
        if bool(self.tls_cert_path) != bool(self.tls_key_path):
            raise StoreError(
                "PostgreSQL TLS: the client certificate and key paths must be given together"
            )
        if self.libpq_tls_mode in ("verify-ca", "verify-full") and not self.tls_ca_path:
            raise StoreError(
                f"PostgreSQL TLS mode {self.tls_mode!r} needs a CA certificate (tls.caPath)"
            )

    @property
    def libpq_tls_mode(self) -> str:
        return TLS_MODES[self.tls_mode]

    @property
    def target(self) -> str:
        """`user@host:port/database` for messages: what we connect to, never the password."""
        user, host, port, database = self.user, self.host, self.port, self.database
        if self.dsn:
            try:
                parts = urlsplit(self.dsn)
                user = user or (unquote(parts.username) if parts.username else None)
                host = host or parts.hostname
                port = port or parts.port
                database = database or (unquote(parts.path.lstrip("/")) or None)
            except ValueError:  # multi-host DSNs and other shapes urlsplit does not know
                pass
        where = f"{host or 'localhost'}:{port or 5432}/{database or user or ''}"
        return f"{user}@{where}" if user else where

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for `tls_mode`; None for `disable`."""
        mode = self.libpq_tls_mode
        if mode == "disable":
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if mode == "require":
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx.check_hostname = mode == "verify-full"
            ctx.verify_mode = ssl.CERT_REQUIRED
            try:
                ctx.load_verify_locations(cafile=self.tls_ca_path)
            except (OSError, ssl.SSLError) as e:
                raise StoreError(
                    f"PostgreSQL TLS: cannot load CA certificate {self.tls_ca_path}: {e}"
                ) from e
        if self.tls_cert_path and self.tls_key_path:
            try:
                ctx.load_cert_chain(self.tls_cert_path, self.tls_key_path)
            except (OSError, ssl.SSLError) as e:
                raise StoreError(
                    f"PostgreSQL TLS: cannot load client certificate {self.tls_cert_path} "
                    f"with key {self.tls_key_path}: {e}"
                ) from e
        return ctx

    def _dsn_sets_sslmode(self) -> bool:
        if not self.dsn:
            return False
        try:
            return "sslmode" in parse_qs(urlsplit(self.dsn).query)
        except ValueError:
            return False

    def connect_kwargs(self, *, application_name: str = "kuma-cp") -> dict[str, Any]:
        """Keyword arguments for `asyncpg.connect` / `asyncpg.create_pool`."""
        kwargs: dict[str, Any] = {
            "timeout": self.connect_timeout,
            "server_settings": {"application_name": application_name},
        }
        if self.dsn:
            kwargs["dsn"] = self.dsn
        for name in ("host", "port", "user", "password", "database"):
            value = getattr(self, name)
            if value is not None and value != "":
                kwargs[name] = value
        if self.libpq_tls_mode == "disable":
            if not self._dsn_sets_sslmode():
                kwargs["ssl"] = False
        else:
            kwargs["ssl"] = self.ssl_context()
        return kwargs

    async def connect(self, *, application_name: str = "kuma-cp") -> asyncpg.Connection:
        """One connection (outside any pool), or StoreError saying why not."""
        kwargs = self.connect_kwargs(application_name=application_name)
        with driver_errors(self, "cannot connect"):
            return await asyncpg.connect(**kwargs)


def _detail(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return text or type(exc).__name__


def store_error(settings: PostgresSettings, action: str, exc: BaseException) -> StoreError:
    """A StoreError for a driver failure during `action` ("cannot connect", "list Dataplane")."""
    return StoreError(f"PostgreSQL {settings.target}: {action}: {_detail(exc)}")


@contextmanager
def driver_errors(settings: PostgresSettings, action: str) -> Iterator[None]:
    """Re-raise driver errors inside the block as StoreError (callers map the ones they expect
    - unique or foreign-key violations - before this sees them)."""
    try:
        yield
    except DRIVER_ERRORS as e:
        raise store_error(settings, action, e) from e
