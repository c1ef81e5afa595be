"""Simulated Envoys for `make bench`: many ADS streams in one process, measuring config delivery.

    python -m tools.xds_loadclient --address 127.0.0.1:5678 --mesh default --names dp-0..dp-999

Each simulated dataplane opens one ADS stream (node id `<mesh>.<name>`), subscribes to CDS and
LDS, then to EDS for every EDS cluster it receives, and ACKs every response, like Envoy.

Protocol with the bench (JSON lines on stdout, commands as lines on stdin):

* `{"event": "ready", "clients": N, "seconds": s, "missing": [...]}` once every client has ACKed
  its first LDS, CDS and (if it has EDS clusters) EDS response, or `--ready-timeout` passed.
* stdin `mark LABEL [CLUSTER]`: remember every client's current endpoints (ClusterLoadAssignment
  bytes), then answer `{"event": "marked", "mark": LABEL, "expected": n}`. Make the change
  (e.g. move an endpoint through the REST API) only after reading `marked`.
  From then on each client reports, once, the moment it has received and ACKed a CLA whose
  content differs from the remembered one (of CLUSTER only, when given):
  `{"event": "changed", "mark": LABEL, "name": "dp-7", "cluster": "backend", "seconds": 0.042}`
  (`seconds` counts from the `mark` command). Expected clients are all clients, or with CLUSTER
  those subscribed to it. When all expected clients reported, or `--change-timeout` passed:
  `{"event": "summary", "mark": LABEL, "expected": n, "changed": k, "missing": [...first 20],
  "p50": s, "p90": s, "p99": s, "max": s}`.
* stdin `mark-lds LABEL`: the same for listeners: each client reports when it has received and
  ACKed an LDS response whose version differs from the one it had at the mark (e.g. after a
  TrafficPermission change rewrites every inbound listener's RBAC filter). Expected: all clients.
* stdin `status`: `{"event": "status", "clients": N, "connected": c, "ready": r, "responses": x}`.
* stdin `quit` or end of input: stop (a pending mark is summarised first).

Errors and reconnects are reported as `{"event": "disconnected", "name": ..., "error": ...}`;
a client reconnects after a second, offering the versions it has (as Envoy does).

Efficiency: one TCP connection per client by default (like real Envoys); `--streams-per-connection`
multiplexes several clients on one HTTP/2 connection to save file descriptors. Responses are
not decoded except clusters (to find EDS names) and CLA names; CLA content is compared as bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.service.discovery.v3 import discovery_pb2
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.exceptions import GRPCError, ProtocolError, StreamTerminatedError

ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources"
_PREFIX = "type.googleapis.com/"
CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"

DiscoveryRequest: Any = discovery_pb2.DiscoveryRequest
DiscoveryResponse: Any = discovery_pb2.DiscoveryResponse
_EDS = cluster_pb2.Cluster.EDS

_RANGE = re.compile(r"^(?P<prefix>.*?)(?P<start>\d+)\.\.(?P=prefix)?(?P<end>\d+)$")


def expand_names(spec: str) -> list[str]:
    """`dp-0..dp-999` (or `dp-0..999`) and comma-separated lists of either."""
    names: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        m = _RANGE.match(part)
        if m is None:
            names.append(part)
            continue
        start, end = int(m["start"]), int(m["end"])
        if end < start:
            raise ValueError(f"empty range {part!r}")
        names.extend(f"{m['prefix']}{i}" for i in range(start, end + 1))
    if len(set(names)) != len(names):
        raise ValueError("names must be unique")
    return names


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _uncancel() -> None:
    # grpclib's client stops a task blocked on a stream that is reset by calling task.cancel()
    # and raising StreamTerminatedError instead; withdraw that cancel request so anyio does not
    # take the task for cancelled from outside.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        task.uncancel()


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    index = max(0, min(len(ordered) - 1, int(q * len(ordered) + 0.999999) - 1))
    return round(ordered[index], 6)


@dataclass
class Mark:
    label: str
    cluster: str | None
    started: float
    expected: set[str]
    results: dict[str, float] = field(default_factory=dict)
    done: anyio.Event = field(default_factory=anyio.Event)
    kind: str = "eds"

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.results.values())
        missing = sorted(self.expected - set(self.results))
        return {
            "mark": self.label,
            "cluster": self.cluster,
            "expected": len(self.expected),
            "changed": len(self.results),
            "missing": missing[:20],
            "p50": _quantile(ordered, 0.5),
            "p90": _quantile(ordered, 0.9),
            "p99": _quantile(ordered, 0.99),
            "max": round(ordered[-1], 6) if ordered else None,
        }


class Client:
    """One simulated Envoy."""

    def __init__(self, name: str, node_id: str, run: Runner, metadata: dict[str, str]) -> None:
        self.name = name
        self.node_id = node_id
        self.runner = run
        self.metadata = metadata
        self.versions: dict[str, str] = {}
        self.nonces: dict[str, str] = {}
        self.acked: set[str] = set()
        self.eds_names: tuple[str, ...] = ()
        self.eds_answered: tuple[str, ...] | None = None
        self.cla: dict[str, bytes] = {}
        self.baseline: dict[str, bytes] | None = None
        self.lds_baseline = ""
        self.ready = False
        self.connected = False
        self.responses = 0

    async def run(self, channel: Channel, limiter: anyio.CapacityLimiter) -> None:
        while True:
            try:
                await self._stream_once(channel, limiter)
                error = "stream ended by the server"
            except (GRPCError, StreamTerminatedError, ProtocolError, OSError) as e:
                _uncancel()
                error = f"{type(e).__name__}: {e}"
            self.connected = False
            emit("disconnected", name=self.name, error=error)
            await anyio.sleep(1.0)

    async def _stream_once(self, channel: Channel, limiter: anyio.CapacityLimiter) -> None:
        async with channel.request(
            ADS_METHOD,
            Cardinality.STREAM_STREAM,
            DiscoveryRequest,
            DiscoveryResponse,
            metadata=self.metadata or None,
        ) as stream:
            async with limiter:  # bound how many streams are opening at once
                first = DiscoveryRequest(
                    type_url=CLUSTER, version_info=self.versions.get(CLUSTER, "")
                )
                first.node.id = self.node_id
                first.node.cluster = self.name
                await stream.send_message(first)
                await stream.send_message(
                    DiscoveryRequest(
                        type_url=LISTENER, version_info=self.versions.get(LISTENER, "")
                    )
                )
                if self.eds_names:
                    await stream.send_message(
                        DiscoveryRequest(
                            type_url=ENDPOINT,
                            version_info=self.versions.get(ENDPOINT, ""),
                            resource_names=self.eds_names,
                        )
                    )
                self.nonces.clear()  # nonces are per stream
                self.connected = True
                response = await stream.recv_message()
            while response is not None:
                await self._on_response(stream, response)
                response = await stream.recv_message()

    async def _on_response(self, stream: Any, response: Any) -> None:
        self.responses += 1
        type_url = response.type_url
        self.versions[type_url] = response.version_info
        self.nonces[type_url] = response.nonce
        changed: list[str] = []
        if type_url == CLUSTER:
            names = []
            for item in response.resources:
                c = cluster_pb2.Cluster()
                c.ParseFromString(item.value)
                if c.type == _EDS:
                    names.append(c.eds_cluster_config.service_name or c.name)
            await self._ack(stream, response, ())
            wanted = tuple(sorted(names))
            if wanted != self.eds_names:
                self.eds_names = wanted
                # a subscription change carries the latest EDS version and nonce, like Envoy's
                await stream.send_message(
                    DiscoveryRequest(
                        type_url=ENDPOINT,
                        version_info=self.versions.get(ENDPOINT, ""),
                        response_nonce=self.nonces.get(ENDPOINT, ""),
                        resource_names=wanted,
                    )
                )
        elif type_url == ENDPOINT:
            for item in response.resources:
                cla = endpoint_pb2.ClusterLoadAssignment()
                cla.ParseFromString(item.value)
                name = cla.cluster_name
                if self.cla.get(name) != item.value:
                    self.cla[name] = item.value
                    changed.append(name)
            self.eds_answered = self.eds_names
            await self._ack(stream, response, self.eds_names)
        else:
            await self._ack(stream, response, ())
            if type_url == LISTENER:
                self.runner.listeners_changed(self)
        self.acked.add(type_url)
        if not self.ready and self._has_first_config():
            self.ready = True
            self.runner.client_ready(self)
        if changed:
            self.runner.endpoints_changed(self, changed)

    def _has_first_config(self) -> bool:
        if CLUSTER not in self.acked or LISTENER not in self.acked:
            return False
        return not self.eds_names or self.eds_answered == self.eds_names

    @staticmethod
    async def _ack(stream: Any, response: Any, names: tuple[str, ...]) -> None:
        await stream.send_message(
            DiscoveryRequest(
                type_url=response.type_url,
                version_info=response.version_info,
                response_nonce=response.nonce,
                resource_names=names,
            )
        )


class Runner:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        host, _, port = args.address.rpartition(":")
        self.host, self.port = host or "127.0.0.1", int(port)
        self.names = expand_names(args.names)
        headers = dict(h.split("=", 1) for h in args.header)
        self.clients = [
            Client(
                name,
                f"{args.mesh}.{name}",
                self,
                {k: v.format(name=name, mesh=args.mesh) for k, v in headers.items()},
            )
            for name in self.names
        ]
        self.ready_count = 0
        self.t0 = 0.0
        self.all_ready: anyio.Event | None = None
        self.mark: Mark | None = None

    # -- client callbacks ---------------------------------------------------------------------

    def client_ready(self, client: Client) -> None:
        self.ready_count += 1
        if self.args.per_client_ready:
            emit("config", name=client.name, seconds=round(anyio.current_time() - self.t0, 6))
        if self.ready_count == len(self.clients) and self.all_ready is not None:
            self.all_ready.set()

    def endpoints_changed(self, client: Client, clusters: list[str]) -> None:
        mark = self.mark
        if mark is None or client.name not in mark.expected or client.name in mark.results:
            return
        baseline = client.baseline or {}
        for cluster in clusters:
            if mark.cluster is not None and cluster != mark.cluster:
                continue
            if baseline.get(cluster) != client.cla.get(cluster):
                seconds = anyio.current_time() - mark.started
                mark.results[client.name] = seconds
                emit(
                    "changed",
                    mark=mark.label,
                    name=client.name,
                    cluster=cluster,
                    seconds=round(seconds, 6),
                )
                if len(mark.results) == len(mark.expected):
                    mark.done.set()
                return

    def listeners_changed(self, client: Client) -> None:
        mark = self.mark
        if mark is None or mark.kind != "lds" or client.name in mark.results:
            return
        if client.versions.get(LISTENER, "") != client.lds_baseline:
            seconds = anyio.current_time() - mark.started
            mark.results[client.name] = seconds
            emit("changed", mark=mark.label, name=client.name, seconds=round(seconds, 6))
            if len(mark.results) == len(mark.expected):
                mark.done.set()

    # -- commands -------------------------------------------------------------------------------

    async def start_mark(
        self, label: str, cluster: str | None, tg: anyio.abc.TaskGroup, kind: str = "eds"
    ) -> None:
        if self.mark is not None:
            self.finish_mark()
        if kind == "lds":
            expected = {c.name for c in self.clients}
        else:
            expected = {c.name for c in self.clients if cluster is None or cluster in c.eds_names}
        for c in self.clients:
            c.baseline = dict(c.cla)
            c.lds_baseline = c.versions.get(LISTENER, "")
        mark = self.mark = Mark(label, cluster, anyio.current_time(), expected, kind=kind)
        emit("marked", mark=label, cluster=cluster, expected=len(expected))
        if not expected:
            mark.done.set()
        tg.start_soon(self._watch_mark, mark)

    async def _watch_mark(self, mark: Mark) -> None:
        with anyio.move_on_after(self.args.change_timeout):
            await mark.done.wait()
        if self.mark is mark:
            self.finish_mark()

    def finish_mark(self) -> None:
        mark, self.mark = self.mark, None
        if mark is not None:
            emit("summary", **mark.summary())

    def status(self) -> None:
        emit(
            "status",
            clients=len(self.clients),
            connected=sum(c.connected for c in self.clients),
            ready=self.ready_count,
            responses=sum(c.responses for c in self.clients),
        )

    # -- main -----------------------------------------------------------------------------------

    async def main(self) -> None:
        self.t0 = anyio.current_time()
        self.all_ready = anyio.Event()
        per = max(1, self.args.streams_per_connection)
        channels = [
            Channel(self.host, self.port) for _ in range((len(self.clients) + per - 1) // per)
        ]
        limiter = anyio.CapacityLimiter(self.args.connect_concurrency)
        try:
            async with anyio.create_task_group() as tg:
                for i, client in enumerate(self.clients):
                    tg.start_soon(client.run, channels[i // per], limiter)
                tg.start_soon(self._report_ready)
                await self._commands(tg)
                self.finish_mark()
                tg.cancel_scope.cancel()
        finally:
            for channel in channels:
                channel.close()

    async def _report_ready(self) -> None:
        assert self.all_ready is not None
        with anyio.move_on_after(self.args.ready_timeout):
            await self.all_ready.wait()
        missing = sorted(c.name for c in self.clients if not c.ready)
        emit(
            "ready",
            clients=len(self.clients),
            seconds=round(anyio.current_time() - self.t0, 6),
            missing=missing[:20],
            missing_count=len(missing),
        )

    async def _commands(self, tg: anyio.abc.TaskGroup) -> None:
        stdin = anyio.wrap_file(sys.stdin)
        async for line in stdin:
            words = line.split()
            if not words:
                continue
            command = words[0]
            if command == "mark" and len(words) in (2, 3):
                await self.start_mark(words[1], words[2] if len(words) == 3 else None, tg)
            elif command == "mark-lds" and len(words) == 2:
                await self.start_mark(words[1], None, tg, kind="lds")
            elif command == "status":
                self.status()
            elif command == "quit":
                return
            else:
                emit("error", error=f"unknown command {line.strip()!r}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tools.xds_loadclient", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--address", default="127.0.0.1:5678", help="ADS server host:port")
    p.add_argument("--mesh", default="default")
    p.add_argument("--names", required=True, help="dp-0..dp-999, or a comma-separated list")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="gRPC metadata for every stream; {name} and {mesh} are substituted",
    )
    p.add_argument("--streams-per-connection", type=int, default=1)
    p.add_argument("--connect-concurrency", type=int, default=64)
    p.add_argument("--ready-timeout", type=float, default=120.0)
    p.add_argument("--change-timeout", type=float, default=60.0)
    p.add_argument(
        "--per-client-ready",
        action="store_true",
        help='also print {"event": "config"} when each client has its first config',
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        runner = Runner(args)
    except ValueError as e:
        sys.exit(f"xds_loadclient: {e}")
    anyio.run(runner.main)


if __name__ == "__main__":
    main()
