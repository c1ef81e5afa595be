"""`kuma-dp run`: fetch Envoy's bootstrap from the control plane, then run and supervise Envoy.

    find Envoy  ->  GET <cp>/catalog (retried)  ->  token required? read the token file
        ->  pick a free admin port on 127.0.0.1  ->  start sidecar services (access logs)
        ->  POST <bootstrap>/bootstrap (retried)  ->  write <configDir>/bootstrap.yaml (0600)
        ->  envoy -c ... --drain-time-s N --disable-hot-restart --log-level L
        ->  wait; SIGINT/SIGTERM are forwarded to Envoy  ->  exit with Envoy's status

A stop signal before Envoy starts ends kuma-dp at once (status 0). While Envoy runs, every
SIGINT/SIGTERM is forwarded to it; if it has not exited ENVOY_STOP_TIMEOUT seconds after the
first, it is killed. If kuma-dp itself is cancelled or fails, Envoy is terminated (then killed)
before kuma-dp returns: no Envoy outlives kuma-dp. (A SIGKILLed kuma-dp cannot clean up; Envoy
then keeps running, as with Kuma.)

Envoy's stdout and stderr are kuma-dp's; its stdin is /dev/null.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
import anyio.abc
import anyio.to_thread
import httpx
import structlog

from kuma.dp.config import DataplaneConfig
from kuma.dp.cp_client import HTTP_TIMEOUT, Catalog, fetch_bootstrap, fetch_catalog
from kuma.dp.envoy import envoy_command, exit_status, find_envoy
from kuma.dp.errors import DataplaneError, TokenError
from kuma.dp.ports import pick_tcp_port
from kuma.version import __version__
from kuma.xds.bootstrap.types import BootstrapRequest, access_log_socket_path

__all__ = [
    "ADMIN_ADDRESS",
    "BOOTSTRAP_FILE",
    "ENVOY_STOP_TIMEOUT",
    "TOKEN_COPY_FILE",
    "TOKEN_REQUIRED_MESSAGE",
    "DataplaneContext",
    "DataplaneToken",
    "SidecarService",
    "load_token",
    "run_dataplane",
    "write_bootstrap",
    "write_token_copy",
]

log = structlog.get_logger("kuma-dp")

ADMIN_ADDRESS = "127.0.0.1"
"""Where kuma-dp looks for a free admin port (Envoy's admin API binds the bootstrap's address,
127.0.0.1 by default)."""
BOOTSTRAP_FILE = "bootstrap.yaml"
TOKEN_COPY_FILE = "dataplane-token"
"""Where kuma-dp puts a clean copy of a token file that has whitespace around the token."""
ENVOY_STOP_TIMEOUT = 10.0
"""Seconds Envoy gets to exit after the first stop signal (or after kuma-dp is cancelled)."""
TOKEN_REQUIRED_MESSAGE = (
    "Kuma CP is configured with Dataplane Token Server therefore the Dataplane Token is "
    "required. Generate token using 'kumactl generate dataplane-token > /path/file' and provide "
    "it via --dataplane-token-file=/path/file argument to Kuma DP"
)


@dataclass(frozen=True, slots=True)
class DataplaneContext:
    """What a sidecar service knows about the dataplane it runs beside."""

    config: DataplaneConfig
    catalog: Catalog
    access_log_socket: str
    """The unix socket Envoy's `access_log_sink` cluster connects to."""


class SidecarService(Protocol):
    """A long-running helper of Envoy, e.g. the access-log server that receives TCP access logs
    on `ctx.access_log_socket` and ships them to their backends.

    kuma-dp starts each one with `await task_group.start(service, ctx)` after the catalog is
    known and before it fetches the bootstrap (so the socket exists before Envoy connects); it
    must call `task_status.started()` once ready, and is cancelled after Envoy exits. If one
    fails, Envoy is stopped and kuma-dp fails with its error.
    """

    async def __call__(
        self, ctx: DataplaneContext, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class DataplaneToken:
    """The dataplane token kuma-dp hands on in its bootstrap request."""

    path: str = ""
    """Absolute path of the token file (Envoy's SDS channel reads it), or ""."""
    value: str = ""
    """The token, without surrounding whitespace (sent to the bootstrap server, which checks
    it and puts it into Envoy's ADS metadata), or "" when it was not read."""
    exact: bool = True
    """False when the file holds whitespace around the token (say, `echo`'s newline). Envoy's
    SDS channel sends the file's bytes as they are, and gRPC refuses a newline in metadata, so
    Envoy is then pointed at a clean copy (`TOKEN_COPY_FILE` in the config directory)."""


def load_token(cfg: DataplaneConfig, catalog: Catalog) -> DataplaneToken:
    """Kuma: a control plane with a token server demands a readable, non-empty token file.

    When the catalog names a token server, the file is required and read (TokenError when it
    is not given, unreadable, empty, or not text). Otherwise only its path is passed on, as
    Kuma 0.7.3 does.
    """
    token_path = os.path.abspath(cfg.token_path) if cfg.token_path else ""
    if not catalog.token_required:
        return DataplaneToken(token_path)
    if not cfg.token_path:
        raise TokenError(TOKEN_REQUIRED_MESSAGE)
    try:
        with open(cfg.token_path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TokenError(f"could not read file: {e}") from None
    try:
        token = data.decode("ascii").strip()
    except UnicodeDecodeError:
        raise TokenError(
            f"token under file {cfg.token_path} is not a dataplane token (not ASCII text)"
        ) from None
    if not token:
        raise TokenError(f"token under file {cfg.token_path} is empty")
    if not all("!" <= ch <= "~" for ch in token):
        raise TokenError(
            f"token under file {cfg.token_path} is not a dataplane token (it has spaces or "
            "control characters inside)"
        )
    return DataplaneToken(token_path, token, exact=data == token.encode("ascii"))


def write_token_copy(config_dir: str, token: str) -> str:
    """Write `<config_dir>/dataplane-token` (the token alone, mode 0600); return its path."""
    os.makedirs(config_dir, mode=0o755, exist_ok=True)
    path = os.path.abspath(os.path.join(config_dir, TOKEN_COPY_FILE))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        os.fchmod(fd, 0o600)
        f.write(token)
    return path


def write_bootstrap(config_dir: str, text: str) -> str:
    """Write `<config_dir>/bootstrap.yaml` readable by its owner only; return its path."""
    os.makedirs(config_dir, mode=0o755, exist_ok=True)
    path = os.path.join(config_dir, BOOTSTRAP_FILE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode on open: tighten it
        f.write(text)
    return path


class _Supervisor:
    """Turns stop requests (signals, the `stop` event) into the right action for the phase."""

    def __init__(self, task_group: anyio.abc.TaskGroup) -> None:
        self.stop_signal: signal.Signals | None = None
        self.process: anyio.abc.Process | None = None
        self.preparing = anyio.CancelScope()
        self._tg = task_group

    async def watch_signals(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            task_status.started()
            async for signum in signals:
                self.request_stop(signum)

    async def watch_event(self, event: anyio.Event) -> None:
        await event.wait()
        self.request_stop(signal.SIGTERM)

    def request_stop(self, signum: signal.Signals) -> None:
        first = self.stop_signal is None
        if first:
            self.stop_signal = signum
        process = self.process
        if process is None or process.returncode is not None:
            log.info("stopping Kuma DP", signal=signum.name)
            self.preparing.cancel()
            return
        self._forward(process, signum, first)

    def attach(self, process: anyio.abc.Process) -> None:
        """Envoy runs: later stop requests go to it (and one that came meanwhile, now)."""
        self.process = process
        if self.stop_signal is not None:
            self._forward(process, self.stop_signal, True)

    def _forward(self, process: anyio.abc.Process, signum: signal.Signals, first: bool) -> None:
        log.info("forwarding signal to Envoy", signal=signum.name, pid=process.pid)
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)
        if first:
            self._tg.start_soon(self._kill_if_stuck, process)

    async def _kill_if_stuck(self, process: anyio.abc.Process) -> None:
        await anyio.sleep(ENVOY_STOP_TIMEOUT)
        if process.returncode is None:
            log.warning("Envoy did not stop in time; killing it", pid=process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.kill()


async def _stop_envoy(process: anyio.abc.Process) -> None:
    """Terminate, then kill, a still-running Envoy; never interrupted by cancellation."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            log.info("stopping Envoy", pid=process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            with anyio.move_on_after(ENVOY_STOP_TIMEOUT):
                await process.wait()
            if process.returncode is None:
                log.warning("Envoy did not stop in time; killing it", pid=process.pid)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await process.aclose()


# Run Envoy with PR_SET_PDEATHSIG so the kernel stops it even when kuma-dp is SIGKILLed (no
# orphaned Envoy keeps ports and serves stale config). The flag survives execve; the parent pid
# check closes the race where kuma-dp died before prctl ran.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    sys.exit(1)\n"
    "try:\n"
    "    os.execv(sys.argv[2], sys.argv[2:])\n"
    "except OSError as e:\n"
    "    print(f'cannot execute {sys.argv[2]}: {e.strerror}', file=sys.stderr)\n"
    "    sys.exit(127)\n"
)


def _die_with_parent(command: list[str]) -> list[str]:
    if sys.platform != "linux":
        return command
    return [sys.executable, "-c", _DIE_WITH_PARENT, str(os.getpid()), *command]


async def _run_envoy(command: list[str], supervisor: _Supervisor) -> int:
    log.info("starting Envoy", command=" ".join(command))
    try:
        process = await anyio.open_process(
            _die_with_parent(command), stdin=subprocess.DEVNULL, stdout=None, stderr=None
        )
    except OSError as e:
        raise DataplaneError(
            f"the Envoy binary was found at {command[0]} but could not be started: {e}"
        ) from None
    log.info("Envoy started", pid=process.pid)
    try:
        supervisor.attach(process)
        returncode = await process.wait()
    finally:
        await _stop_envoy(process)
    status = exit_status(returncode)
    if returncode == 0:
        log.info("Envoy exited", pid=process.pid, code=0)
    else:
        log.error("Envoy terminated with an error", pid=process.pid, code=status)
    return status


async def _prepare(
    cfg: DataplaneConfig,
    binary: str,
    log_level: str,
    config_dir: str,
    services: Sequence[SidecarService],
    services_tg: anyio.abc.TaskGroup,
) -> list[str]:
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
        catalog = await fetch_catalog(
            client,
            cfg.cp_address,
            backoff=cfg.api_retry_backoff,
            max_duration=cfg.api_retry_max_duration,
        )
        token = await anyio.to_thread.run_sync(load_token, cfg, catalog)
        if not token.exact:
            copy = await anyio.to_thread.run_sync(write_token_copy, config_dir, token.value)
            log.info(
                "the token file has whitespace around the token; Envoy reads a clean copy",
                token_file=token.path,
                copy=copy,
            )
            token = DataplaneToken(copy, token.value)
        admin_port = 0
        if not cfg.admin_port.empty:
            # unless the user opted out of Envoy's admin API, pick a free port from the range
            admin_port = await anyio.to_thread.run_sync(
                pick_tcp_port, ADMIN_ADDRESS, cfg.admin_port
            )
            log.info("picked a free port for Envoy Admin API to listen on", port=admin_port)
        ctx = DataplaneContext(cfg, catalog, access_log_socket_path(cfg.name, cfg.mesh))
        for service in services:
            await services_tg.start(service, ctx)
        request = BootstrapRequest(
            mesh=cfg.mesh,
            name=cfg.name,
            admin_port=admin_port,
            dataplane_token_path=token.path,
            dataplane_token=token.value,
        )
        text = await fetch_bootstrap(
            client,
            catalog.bootstrap_url,
            request,
            backoff=cfg.bootstrap_retry_backoff,
            max_duration=cfg.bootstrap_retry_max_duration,
        )
    path = await anyio.to_thread.run_sync(write_bootstrap, config_dir, text)
    log.info("bootstrap configuration saved to a file", file=path)
    return envoy_command(binary, path, cfg.drain_time, log_level)


async def _run(
    cfg: DataplaneConfig,
    binary: str,
    log_level: str,
    services: Sequence[SidecarService],
    supervisor: _Supervisor,
) -> int:
    temporary = ""
    config_dir = cfg.config_dir
    if not config_dir:
        temporary = config_dir = tempfile.mkdtemp(prefix="kuma-dp-")
        log.info(
            "generated Envoy configuration will be stored in a temporary directory", dir=config_dir
        )
    error: DataplaneError | None = None
    status = 0
    try:
        async with anyio.create_task_group() as services_tg:
            try:
                command: list[str] | None = None
                with supervisor.preparing:
                    command = await _prepare(
                        cfg, binary, log_level, config_dir, services, services_tg
                    )
                # a stop request may also land after preparing ended, before Envoy is spawned
                if command is None or (
                    supervisor.stop_signal is not None and supervisor.process is None
                ):
                    log.info("stopped before Envoy was started")
                else:
                    status = await _run_envoy(command, supervisor)
            except DataplaneError as e:  # raised here, not from the group, so no ExceptionGroup
                error = e
            services_tg.cancel_scope.cancel()
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    if error is not None:
        raise error
    return status


async def run_dataplane(
    cfg: DataplaneConfig,
    *,
    log_level: str = "info",
    services: Sequence[SidecarService] = (),
    handle_signals: bool = True,
    stop: anyio.Event | None = None,
) -> int:
    """Run the dataplane until Envoy exits; return kuma-dp's exit status (Envoy's).

    `stop` (tests, embedding) acts like SIGTERM. Raises DataplaneError (a subclass says which
    step failed) when Envoy cannot be started at all.
    """
    log.info("effective configuration", config=json.dumps(cfg.to_json_dict(), sort_keys=True))
    binary = await anyio.to_thread.run_sync(find_envoy, cfg.binary_path)
    log.info("starting Kuma DP", version=__version__, envoy=binary)
    error: DataplaneError | None = None
    status = 0
    async with anyio.create_task_group() as tg:
        supervisor = _Supervisor(tg)
        if handle_signals:
            await tg.start(supervisor.watch_signals)
        if stop is not None:
            tg.start_soon(supervisor.watch_event, stop)
        try:
            status = await _run(cfg, binary, log_level, services, supervisor)
        except DataplaneError as e:
            error = e
        tg.cancel_scope.cancel()
    if error is not None:
        raise error
    log.info("stopping Kuma DP", status=status)
    return status
