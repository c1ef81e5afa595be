"""TLS to PostgreSQL (Kuma's `store.postgres.tls.*`): the modes, CA and host-name checks, client
certificates, and the whole store over TLS.

The shared test server has no TLS, so these tests start a private PostgreSQL (initdb + pg_ctl
from the local installation, on a free loopback port) whose certificates come from a trustme CA.
They are skipped where no PostgreSQL server binaries are installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
import trustme

from kuma.errors import StoreError
from kuma.model import registry as r
from kuma.model.resource import Resource, ResourceMeta
from kuma.store.events import ChangeEvent, ChangeOp
from kuma.store.postgres import PostgresSettings, PostgresStore, migrate_up

pytestmark = pytest.mark.anyio


# -- settings (no server needed) ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return str(path)


@pytest.mark.parametrize(
    ("mode", "verify", "check_hostname"),
    [
        ("require", ssl.CERT_NONE, False),
        ("verifyNone", ssl.CERT_NONE, False),
        ("verify-ca", ssl.CERT_REQUIRED, False),
        ("verifyCa", ssl.CERT_REQUIRED, False),
        ("verify-full", ssl.CERT_REQUIRED, True),
        ("verifyFull", ssl.CERT_REQUIRED, True),
    ],
)
def test_each_tls_mode_builds_the_matching_context(
    ca_file: str, mode: str, verify: ssl.VerifyMode, check_hostname: bool
) -> None:
    ctx = PostgresSettings(host="db", tls_mode=mode, tls_ca_path=ca_file).ssl_context()
    assert ctx is not None
    assert ctx.verify_mode == verify
    assert ctx.check_hostname is check_hostname
    assert ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_disable_means_plain_tcp_unless_the_dsn_asks_for_tls() -> None:
    assert PostgresSettings(host="db").connect_kwargs()["ssl"] is False
    from_dsn = PostgresSettings("postgresql://u@db/kuma?sslmode=require").connect_kwargs()
    assert "ssl" not in from_dsn  # the DSN's sslmode decides


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tls_mode": "sometimes"}, "PostgreSQL TLS mode 'sometimes' is not one of: disable,"),
        ({"tls_mode": "verify-full"}, "needs a CA certificate (tls.caPath)"),
        ({"tls_mode": "verifyCa"}, "needs a CA certificate (tls.caPath)"),
        ({"tls_mode": "require", "tls_cert_path": "c.pem"}, "must be given together"),
        ({"connect_timeout": 0}, "connection timeout must be positive"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_message(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(StoreError) as info:
        PostgresSettings(host="db", **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    settings = PostgresSettings(host="db", tls_mode="verify-ca", tls_ca_path=str(missing))
    with pytest.raises(StoreError, match=f"cannot load CA certificate {missing}"):
        settings.ssl_context()


async def test_require_against_a_server_without_tls_is_refused(postgres_server: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(postgres_server, timeout=5)
    try:
        server_ssl = await conn.fetchval("SHOW ssl")
    finally:
        await conn.close()
    if server_ssl == "on":
        pytest.skip("the shared test server has TLS enabled")
    with anyio.fail_after(10), pytest.raises(StoreError) as info:
        await PostgresStore.connect(postgres_server, tls_mode="require")
    assert "cannot connect" in str(info.value)


# -- a private server with TLS ------------------------------------------------------------------


@dataclass(frozen=True)
class TlsServer:
    port: int
    ca: str
    other_ca: str
    client_cert: str
    client_key: str


def _server_bindir() -> Path | None:
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False, timeout=10
        )
        candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsServer]:
    bindir = _server_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) to start a TLS server")
    # Not under pytest's tmp folder: that one is private to us, and the server may run as
    # another user.
    with tempfile.TemporaryDirectory(prefix="kuma-pgtls-") as folder:
        yield from _tls_server(bindir, Path(folder))


def _tls_server(bindir: Path, root: Path) -> Iterator[TlsServer]:
    prefix: list[str] = []
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:  # initdb refuses to run as root
        import pwd

        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run initdb as")
        prefix = ["runuser", "-u", "postgres", "--"]
        owner = (entry.pw_uid, entry.pw_gid)

    def own(path: Path, mode: int) -> None:
        if owner is not None:
            os.chown(path, *owner)
        path.chmod(mode)

    ca, other_ca = trustme.CA(), trustme.CA()
    server_cert = ca.issue_cert("localhost")
    client_cert = ca.issue_cert("certuser.test", common_name="certuser")
    files = {
        "ca.pem": ca.cert_pem,
        "other-ca.pem": other_ca.cert_pem,
        "server.crt": server_cert.cert_chain_pems[0],
        "server.key": server_cert.private_key_pem,
        "client.crt": client_cert.cert_chain_pems[0],
        "client.key": client_cert.private_key_pem,
    }
    for name, blob in files.items():
        blob.write_to_path(str(root / name))
        own(root / name, 0o600)
    own(root, 0o700)
    data = root / "data"

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, timeout=60, cwd=str(root))

    run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        "hostssl all certuser 127.0.0.1/32 cert\n"
        "hostssl all all 127.0.0.1/32 trust\n"
        "hostnossl all all 127.0.0.1/32 reject\n"
    )
    own(data / "pg_hba.conf", 0o600)
    port = _free_port()
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c ssl=on "
        f"-c ssl_cert_file={root / 'server.crt'} -c ssl_key_file={root / 'server.key'} "
        f"-c ssl_ca_file={root / 'ca.pem'}"
    )
    pg_ctl = str(bindir / "pg_ctl")
    run(
        pg_ctl,
        "-D",
        str(data),
        "-l",
        str(root / "server.log"),
        "-w",
        "-t",
        "30",
        "-o",
        options,
        "start",
    )
    try:
        run(
            str(bindir / "psql"),
            "-h",
            str(root),
            "-p",
            str(port),
            "-U",
            "postgres",
            "-c",
            "CREATE ROLE certuser LOGIN",
        )
        yield TlsServer(
            port=port,
            ca=str(root / "ca.pem"),
            other_ca=str(root / "other-ca.pem"),
            client_cert=str(root / "client.crt"),
            client_key=str(root / "client.key"),
        )
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop")


async def _session_facts(settings: PostgresSettings) -> tuple[bool, str]:
    with anyio.fail_after(10):
        conn = await settings.connect()
        try:
            row = await conn.fetchrow(
                "SELECT ssl, current_user FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            )
        finally:
            await conn.close()
    return bool(row[0]), str(row[1])


def _settings(server: TlsServer, **kwargs: object) -> PostgresSettings:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "user": "postgres",
        "database": "postgres",
        "connect_timeout": 5,
    }
    base.update(kwargs)
    return PostgresSettings(**base)  # type: ignore[arg-type]


async def test_require_encrypts_without_checking_the_certificate(tls_server: TlsServer) -> None:
    assert await _session_facts(_settings(tls_server, tls_mode="require")) == (True, "postgres")


async def test_disable_is_refused_by_a_server_that_demands_tls(tls_server: TlsServer) -> None:
    with pytest.raises(StoreError) as info:
        await _session_facts(_settings(tls_server, tls_mode="disable"))
    assert "no encryption" in str(info.value)


async def test_verify_ca_accepts_the_servers_ca_and_refuses_another(
    tls_server: TlsServer,
) -> None:
    good = _settings(tls_server, tls_mode="verify-ca", tls_ca_path=tls_server.ca)
    assert (await _session_facts(good))[0] is True
    # verify-ca does not look at the host name: 127.0.0.1 is not in the certificate
    bad = _settings(tls_server, tls_mode="verifyCa", tls_ca_path=tls_server.other_ca)
    with pytest.raises(StoreError) as info:
        await _session_facts(bad)
    assert "certificate verify failed" in str(info.value)


async def test_verify_full_also_checks_the_host_name(tls_server: TlsServer) -> None:
    by_name = _settings(
        tls_server, host="localhost", tls_mode="verify-full", tls_ca_path=tls_server.ca
    )
    assert (await _session_facts(by_name))[0] is True
    by_address = _settings(tls_server, tls_mode="verifyFull", tls_ca_path=tls_server.ca)
    with pytest.raises(StoreError) as info:
        await _session_facts(by_address)
    assert "certificate verify failed" in str(info.value)
    assert "127.0.0.1" in str(info.value)


async def test_a_client_certificate_authenticates_its_user(tls_server: TlsServer) -> None:
    with_cert = _settings(
        tls_server,
        user="certuser",
        tls_mode="verify-full",
        host="localhost",
        tls_ca_path=tls_server.ca,
        tls_cert_path=tls_server.client_cert,
        tls_key_path=tls_server.client_key,
    )
    assert await _session_facts(with_cert) == (True, "certuser")
    without = _settings(tls_server, user="certuser", tls_mode="require")
    with pytest.raises(StoreError) as info:
        await _session_facts(without)
    assert "certuser" in str(info.value)


async def test_the_store_works_end_to_end_over_tls(tls_server: TlsServer) -> None:
    tls = {"tls_mode": "verify-full", "tls_ca_path": tls_server.ca}
    dsn = f"postgresql://postgres@localhost:{tls_server.port}/postgres"
    with anyio.fail_after(20):
        result = await migrate_up(dsn, **tls)  # type: ignore[arg-type]
        assert result.version >= 1
        async with (
            PostgresStore.open(dsn, **tls) as store,  # type: ignore[arg-type]
            store.subscribe() as sub,
        ):
            name = f"tls-{os.getpid()}"
            await store.create(Resource(r.MESH, ResourceMeta(name=name)))
            assert (await store.get(r.MESH, name)).meta.name == name
            assert await sub.receive() == ChangeEvent(ChangeOp.CREATE, "Mesh", "", name)
            await store.delete(r.MESH, name)
