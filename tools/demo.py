"""`make demo`: the docker-compose demo mesh as plain local processes, for machines without Docker.

    python tools/demo.py [--postgres DSN] [--free-ports] [--prometheus PATH] [--keep]

Starts, on 127.0.0.1: kuma-cp (memory store, or PostgreSQL after `kuma-cp migrate up`), applies
demo/resources.yaml with kumactl and generates the two dataplane tokens, then starts the backend
app (kuma-tcp-echo), the client app (kuma-tcp-echo), one kuma-dp (with its Envoy) per app,
kuma-prometheus-sd, and Prometheus when a `prometheus` binary is found. It waits until a request
sent through the client's Envoy is answered by the backend, prints what runs where and what to
try, and then supervises: Ctrl-C (SIGINT) or SIGTERM stops every process it started (kuma-dp
passes the signal on to its Envoy; anything still alive after a grace period is killed with its
process group) and removes the working directory. If a process dies on its own, the demo says
which, shows the end of its log, stops the rest and exits with status 1.

Every process runs in a session of its own, so Ctrl-C in the terminal reaches only this
supervisor, which then stops the others in order (dataplanes and apps first, kuma-cp last).
The console scripts are taken from the folder of the running Python (`.venv/bin` under
`make demo`), else from PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

import yaml

__all__ = ["Demo", "DemoError", "DemoPorts", "build_parser", "main"]

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "demo" / "resources.yaml"
PROMETHEUS_CONFIG = ROOT / "demo" / "prometheus.yml"
START_TIMEOUT = 60.0
STOP_GRACE = 15.0


class DemoError(Exception):
    """The demo could not be brought up (the message says what and where to look)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoPorts:
    """Every port the demo uses: Kuma's defaults, or free ones (`--free-ports`)."""

    api: int = 5681
    admin: int = 5679
    diagnostics: int = 5680
    bootstrap: int = 5682
    xds: int = 5678
    sds: int = 5677
    mads: int = 5676
    backend_app: int = 9000
    backend_inbound: int = 19000
    backend_metrics: int = 5670
    client_app: int = 8080
    client_inbound: int = 18080
    client_outbound: int = 10000
    client_metrics: int = 5671
    prometheus: int = 9090

    @classmethod
    def free(cls) -> DemoPorts:
        chosen: set[int] = set()
        values: dict[str, int] = {}
        for name in cls.__dataclass_fields__:
            port = _free_port()
            while port in chosen:
                port = _free_port()
            chosen.add(port)
            values[name] = port
        return cls(**values)

    def cp_env(self) -> dict[str, str]:
        return {
            "KUMA_API_SERVER_PORT": str(self.api),
            "KUMA_ADMIN_SERVER_LOCAL_PORT": str(self.admin),
            "KUMA_XDS_SERVER_DIAGNOSTICS_PORT": str(self.diagnostics),
            "KUMA_BOOTSTRAP_SERVER_PORT": str(self.bootstrap),
            "KUMA_XDS_SERVER_GRPC_PORT": str(self.xds),
            "KUMA_SDS_SERVER_GRPC_PORT": str(self.sds),
            "KUMA_MONITORING_ASSIGNMENT_SERVER_GRPC_PORT": str(self.mads),
        }

    def resource_vars(self) -> dict[str, str]:
        """The `-v` variables of demo/resources.yaml, for dataplanes on 127.0.0.1."""
        return {
            "backend.address": "127.0.0.1",
            "backend.port": str(self.backend_inbound),
            "backend.app": str(self.backend_app),
            "backend.metrics": str(self.backend_metrics),
            "client.address": "127.0.0.1",
            "client.port": str(self.client_inbound),
            "client.app": str(self.client_app),
            "client.metrics": str(self.client_metrics),
            "client.outbound": str(self.client_outbound),
        }


def postgres_env(dsn: str) -> dict[str, str]:
    """kuma-cp's `KUMA_STORE_*` variables for a `postgresql://user:password@host:port/db` DSN."""
    url = urlsplit(dsn)
    if url.scheme not in ("postgres", "postgresql"):
        raise DemoError(f"--postgres: {dsn!r} is not a postgresql://user@host:port/db address")
    if not url.password:
        raise DemoError(
            f"--postgres: {dsn!r} has no password, and kuma-cp needs one "
            "(store.postgres.password); with trust authentication any password works"
        )
    return {
        "KUMA_STORE_TYPE": "postgres",
        "KUMA_STORE_POSTGRES_HOST": url.hostname or "127.0.0.1",
        "KUMA_STORE_POSTGRES_PORT": str(url.port or 5432),
        "KUMA_STORE_POSTGRES_USER": url.username or "postgres",
        "KUMA_STORE_POSTGRES_PASSWORD": url.password,
        "KUMA_STORE_POSTGRES_DB_NAME": url.path.lstrip("/") or "postgres",
    }


@dataclass
class Proc:
    """One long-running process of the demo, in a session of its own, logging to a file."""

    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]
    where: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Demo:
    """Starts the demo's processes and stops every one of them, whatever happens."""

    workdir: Path
    ports: DemoPorts
    bin_dir: Path | None
    store_env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    # -- helpers ---------------------------------------------------------------------------

    def exe(self, name: str) -> str | None:
        if self.bin_dir is not None and (self.bin_dir / name).exists():
            return str(self.bin_dir / name)
        return shutil.which(name)

    def need(self, name: str) -> str:
        found = self.exe(name)
        if found is None:
            raise DemoError(
                f"{name} is not installed (run `make install`, or `pip install kuma-py`)"
            )
        return found

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
        env["PYTHONUNBUFFERED"] = "1"
        env.update(extra)
        return env

    @property
    def kumactl_config(self) -> Path:
        return self.workdir / "kumactl.config"

    def kumactl(self, *args: str, stdout: IO[bytes] | None = None) -> str:
        argv = [self.need("kumactl"), "--config-file", str(self.kumactl_config), *args]
        result = subprocess.run(
            argv,
            env=self.env(),
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise DemoError(f"kumactl {' '.join(args)} failed:\n{result.stderr.decode().strip()}")
        return result.stdout.decode() if stdout is None else ""

    def start(self, name: str, argv: Sequence[str], where: str = "", **env: str) -> Proc:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as f:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                env=self.env(**env),
                cwd=self.workdir,
                start_new_session=True,  # Ctrl-C reaches the supervisor only
            )
        proc = Proc(name, list(argv), log, popen, where)
        self.procs.append(proc)
        return proc

    def wait_for(self, what: str, check: Callable[[], bool], proc: Proc | None = None) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for p in self.procs:
                if not p.alive():
                    raise DemoError(
                        f"{p.name} exited with status {p.popen.returncode} while waiting for "
                        f"{what}; the end of {p.log}:\n{p.tail()}"
                    )
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                if check():
                    return
            time.sleep(0.2)
        hint = f"; the end of {proc.log}:\n{proc.tail()}" if proc is not None else ""
        raise DemoError(f"timed out after {START_TIMEOUT:.0f}s waiting for {what}{hint}")

    # -- bring-up --------------------------------------------------------------------------

    def up(self, prometheus: str | None) -> None:
        p = self.ports
        cp_env = {**p.cp_env(), **self.store_env}
        if self.store_env:
            result = subprocess.run(
                [self.need("kuma-cp"), "migrate", "up"],
                env=self.env(**cp_env),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if result.returncode != 0:
                raise DemoError(f"kuma-cp migrate up failed:\n{result.stderr.strip()}")
        cp = self.start(
            "kuma-cp",
            [self.need("kuma-cp"), "run"],
            f"REST API http://127.0.0.1:{p.api}, xDS :{p.xds}, SDS :{p.sds}",
            **cp_env,
        )
        self.wait_for(
            "kuma-cp to be ready", lambda: _http_ok(f"http://127.0.0.1:{p.diagnostics}/ready"), cp
        )

        # the installer: kumactl pointed at this control plane, the resources, two tokens
        self.kumactl(
            "config", "control-planes", "add", "--name", "demo",
            "--address", f"http://127.0.0.1:{p.api}", "--overwrite",
        )  # fmt: skip
        variables = [a for k, v in p.resource_vars().items() for a in ("-v", f"{k}={v}")]
        self.kumactl("apply", "-f", str(RESOURCES), *variables)
        tokens = {}
        for dataplane in ("backend-01", "client-01"):
            tokens[dataplane] = self.workdir / f"{dataplane}.token"
            with tokens[dataplane].open("wb") as f:
                self.kumactl("generate", "dataplane-token", f"--dataplane={dataplane}", stdout=f)

        echo = self.need("kuma-tcp-echo")
        for app, port in (("backend", p.backend_app), ("client", p.client_app)):
            self.start(
                app,
                [echo, "--port", str(port), "--address", "127.0.0.1"],
                f"kuma-tcp-echo on 127.0.0.1:{port}",
            )
        for dataplane, inbound, metrics in (
            ("backend-01", p.backend_inbound, p.backend_metrics),
            ("client-01", p.client_inbound, p.client_metrics),
        ):
            where = f"Envoy inbound :{inbound}, metrics http://127.0.0.1:{metrics}/metrics"
            if dataplane == "client-01":
                where += f", outbound backend on 127.0.0.1:{p.client_outbound}"
            self.start(
                f"kuma-dp-{dataplane}",
                [
                    self.need("kuma-dp"), "run", f"--name={dataplane}", "--mesh=default",
                    f"--cp-address=http://127.0.0.1:{p.api}",
                    f"--dataplane-token-file={tokens[dataplane]}",
                ],
                where,
            )  # fmt: skip

        sd_file = self.workdir / "kuma.file_sd.json"
        sd = self.exe("kuma-prometheus-sd")
        if sd is not None:
            self.start(
                "kuma-prometheus-sd",
                [
                    sd, "run", "--name=kuma-prometheus-sd",
                    f"--cp-address=http://127.0.0.1:{p.api}", f"--output-file={sd_file}",
                ],
                f"Prometheus targets in {sd_file}",
            )  # fmt: skip
        if prometheus is not None:
            config = self.workdir / "prometheus.yml"
            config.write_text(yaml.safe_dump(prometheus_config(sd_file), sort_keys=False))
            self.start(
                "prometheus",
                [
                    prometheus, f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
                    f"--web.listen-address=127.0.0.1:{p.prometheus}",
                ],
                f"http://127.0.0.1:{p.prometheus}",
            )  # fmt: skip

        mesh_url = f"http://127.0.0.1:{p.client_outbound}/"
        self.wait_for(
            f"a request through the mesh ({mesh_url}) to be answered by the backend",
            lambda: _http_body(mesh_url).startswith("GET / HTTP/1.1"),
        )
        self.wait_for(
            "both dataplanes to be Online",
            lambda: self.kumactl("inspect", "dataplanes").count(" Online ") == 2,
        )
        if sd is not None:
            self.wait_for(
                "kuma-prometheus-sd to write the dataplanes' targets",
                lambda: sd_file.exists() and "backend" in sd_file.read_text(),
            )
        if prometheus is not None:
            self.wait_for(
                "Prometheus to be ready",
                lambda: _http_ok(f"http://127.0.0.1:{p.prometheus}/-/ready"),
            )

    # -- the user's view -------------------------------------------------------------------

    def summary(self, skipped: Sequence[str]) -> str:
        rows = [("PROCESS", "PID", "WHERE")] + [(x.name, str(x.pid), x.where) for x in self.procs]
        width = [max(len(r[i]) for r in rows) for i in range(2)]
        table = "\n".join(f"  {r[0]:<{width[0]}}  {r[1]:<{width[1]}}  {r[2]}" for r in rows)
        lines = [
            "",
            "The demo mesh is up.",
            "",
            table,
            "",
            f"Logs: {self.workdir}/<process>.log",
        ]
        lines += [f"Not started: {s}" for s in skipped]
        lines += ["", "Try it (in another terminal, with .venv/bin on your PATH):", ""]
        lines += [f"  {line}" for line in self.try_lines()]
        lines += ["", "Press Ctrl-C to stop everything.", ""]
        return "\n".join(lines)

    def try_lines(self) -> list[str]:
        """The commands the summary suggests (docs/demo.md shows them for the default ports)."""
        p = self.ports
        kumactl = "kumactl"
        if p.api != 5681:
            kumactl = f"kumactl --config-file {self.kumactl_config}"
        commands = [
            (
                f"curl -s http://127.0.0.1:{p.client_outbound}/hello",
                "client -> its Envoy -> mTLS -> backend's Envoy -> backend",
            ),
            (f"{kumactl} inspect dataplanes", "both Online"),
            (f"{kumactl} get traffic-permissions", "client-to-backend"),
            (
                f"{kumactl} delete traffic-permission client-to-backend",
                "then the curl above gets 503",
            ),
            (
                f"curl -s http://127.0.0.1:{p.backend_metrics}/metrics",
                "the backend Envoy's metrics",
            ),
        ]
        if any(x.name == "prometheus" for x in self.procs):
            commands.append(
                (f"open http://127.0.0.1:{p.prometheus}/targets", "Prometheus scraping both")
            )
        width = max(len(c) for c, _ in commands)
        return [f"{c:<{width}}  # {comment}" for c, comment in commands]

    # -- supervision and shutdown ----------------------------------------------------------

    def watch(self, stopping: Callable[[], bool]) -> Proc | None:
        """Block until asked to stop (returns None) or until a process dies (returns it)."""
        while not stopping():
            for p in self.procs:
                if not p.alive():
                    return p
            time.sleep(0.2)
        return None

    def stop(self) -> None:
        """Stop everything: dataplanes, apps and helpers first, then kuma-cp; kill stragglers."""
        later = [p for p in self.procs if p.name == "kuma-cp"]
        first = [p for p in self.procs if p.name != "kuma-cp"]
        for group in (first, later):
            for p in reversed(group):
                if p.alive():
                    with contextlib.suppress(ProcessLookupError):
                        p.popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE
            for p in group:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        for p in self.procs:
            # the process, and anything it left in its process group (kuma-dp's Envoy)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=5)


def prometheus_config(sd_file: Path) -> dict[str, object]:
    """demo/prometheus.yml (the compose demo's), reading targets from `sd_file` instead."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    for job in config["scrape_configs"]:
        for sd in job.get("file_sd_configs", []):
            sd["files"] = [str(sd_file)]
    return dict(config)


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return bool(r.status == 200)


def _http_body(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as r:
        return str(r.read().decode(errors="replace"))


def find_prometheus(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    for candidate in (
        ROOT / ".cache" / "prometheus" / "usr" / "bin" / "prometheus",  # install_prometheus.sh
        ROOT / ".venv" / "bin" / "prometheus",
    ):
        if candidate.exists():
            return str(candidate)
    return shutil.which("prometheus")


@contextlib.contextmanager
def _signals_stop() -> Iterator[Callable[[], bool]]:
    """The first SIGINT/SIGTERM raises KeyboardInterrupt (start-up and supervision both end
    there and stop everything); later ones are ignored so that stopping is not interrupted."""
    state = {"stop": False}

    def handler(signum: int, frame: object) -> None:
        if state["stop"]:
            return
        state["stop"] = True
        raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: state["stop"]
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def build_parser() -> argparse.ArgumentParser:
    """`make demo DEMO_ARGS=...`'s options."""
    parser = argparse.ArgumentParser(
        prog="make demo",
        description="Run the demo mesh as local processes (no Docker).",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--postgres",
        metavar="DSN",
        help="use the PostgreSQL store at DSN (postgresql://user:password@host:port/db), "
        "after `kuma-cp migrate up`; default: the memory store",
    )
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="use free ports instead of Kuma's defaults (5676-5682) and the demo's own",
    )
    parser.add_argument("--prometheus", metavar="PATH", help="the prometheus binary to run")
    parser.add_argument(
        "--keep", action="store_true", help="keep the working directory (logs, tokens) on exit"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    bin_dir = Path(sys.executable).parent
    ports = DemoPorts.free() if args.free_ports else DemoPorts()
    workdir = Path(tempfile.mkdtemp(prefix="kuma-demo-"))
    demo = Demo(workdir, ports, bin_dir)
    status = 0
    with _signals_stop() as stopping:
        try:
            demo.store_env = postgres_env(args.postgres) if args.postgres else {}
            prometheus = find_prometheus(args.prometheus)
            skipped = []
            if demo.exe("kuma-prometheus-sd") is None:
                skipped.append("kuma-prometheus-sd (not installed)")
            if prometheus is None:
                skipped.append(
                    "Prometheus (no prometheus binary found; install one, or pass --prometheus)"
                )
            print(f"Starting the demo mesh in {workdir} ...", flush=True)
            demo.up(prometheus)
            print(demo.summary(skipped), flush=True)
            died = demo.watch(stopping)
            if died is not None:
                print(
                    f"\n{died.name} exited with status {died.popen.returncode}; the end of "
                    f"{died.log}:\n{died.tail()}\n",
                    file=sys.stderr,
                    flush=True,
                )
                status = 1
        except KeyboardInterrupt:
            pass
        except DemoError as e:
            print(f"Error: {e}", file=sys.stderr, flush=True)
            status = 1
        finally:
            print("Stopping the demo mesh ...", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                demo.stop()
            if args.keep:
                print(f"Kept {workdir}", flush=True)
            else:
                shutil.rmtree(workdir, ignore_errors=True)
            print("Stopped.", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
