"""The shared vocabulary of the xDS layer.

Data flow (see ../shared/ARCHITECTURE.md, "How the control plane flows"):

    store events -> MeshCatalog (kuma/xds/catalog.py): one MeshContext per mesh, kept current
    MeshContext + connected proxy -> topology (kuma/xds/topology.py) -> Proxy (matched policies)
    Proxy + MeshContext -> generators (kuma/xds/generators/) -> ResourceSet
    ResourceSet -> Snapshot (payloads serialised once, versions = content hashes)
    Snapshot -> ADS stream state machine (kuma/xds/server/) -> Envoy

Everything here is plain data; nothing does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from google.protobuf.message import Message as PbMessage

from kuma.model.resource import Resource

__all__ = [
    "ALL_TYPES",
    "CLUSTER",
    "ENDPOINT",
    "LISTENER",
    "ROUTE",
    "SECRET",
    "DataplaneMetadata",
    "Endpoint",
    "MeshContext",
    "ProxyId",
    "ProxyWatch",
    "ResourceSet",
    "Snapshot",
    "SnapshotSource",
    "XdsResource",
    "short_type",
]

_PREFIX = "type.googleapis.com/"
LISTENER = _PREFIX + "envoy.config.listener.v3.Listener"
CLUSTER = _PREFIX + "envoy.config.cluster.v3.Cluster"
ENDPOINT = _PREFIX + "envoy.config.endpoint.v3.ClusterLoadAssignment"
ROUTE = _PREFIX + "envoy.config.route.v3.RouteConfiguration"
SECRET = _PREFIX + "envoy.extensions.transport_sockets.tls.v3.Secret"
# Order in which a stream sends changes: clusters before the endpoints and listeners using them.
ALL_TYPES = (CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET)
_SHORT = {CLUSTER: "cds", ENDPOINT: "eds", LISTENER: "lds", ROUTE: "rds", SECRET: "sds"}


def short_type(type_url: str) -> str:
    """`cds`, `eds`, `lds`, `rds`, `sds` (DataplaneInsight counters and metrics labels)."""
    return _SHORT.get(type_url, type_url.rsplit(".", 1)[-1].lower())


@dataclass(frozen=True, slots=True, order=True)
class ProxyId:
    """A dataplane's identity on the xDS side; Envoy's node id is `<mesh>.<name>`."""

    mesh: str
    name: str

    def __str__(self) -> str:
        return f"{self.mesh}.{self.name}"

    @classmethod
    def parse(cls, node_id: str) -> ProxyId:
        """Split on the FIRST dot, like Kuma (dataplane names may contain dots on Kubernetes)."""
        mesh, dot, name = node_id.partition(".")
        if not mesh:
            raise ValueError("mesh must not be empty")
        if not dot:
            raise ValueError("the name should be provided after the dot")
        if not name:
            raise ValueError("name must not be empty")
        return cls(mesh, name)


@dataclass(frozen=True, slots=True)
class DataplaneMetadata:
    """What Envoy's node metadata tells the control plane (set by the bootstrap)."""

    admin_port: int = 0
    dataplane_token_path: str = ""

    @classmethod
    def from_node_metadata(cls, metadata: Mapping[str, Any]) -> DataplaneMetadata:
        port = metadata.get("dataplane.admin.port", "")
        try:
            admin_port = int(port) if port else 0
        except (TypeError, ValueError):
            admin_port = 0
        return cls(admin_port, str(metadata.get("dataplaneTokenPath", "") or ""))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One instance of a service: a dataplane inbound reachable at target:port."""

    target: str
    port: int
    tags: Mapping[str, str]
    weight: int = 1


class XdsResource:
    """One Envoy resource. Serialised at most once (`payload`), hashed once (`digest`).

    `message` may be shared between proxies (a service's cluster or endpoints): never mutate a
    resource you did not build; copy it (`with_message`) instead.
    """

    __slots__ = ("_digest", "_payload", "message", "name", "origin", "type_url")

    def __init__(
        self,
        name: str,
        type_url: str,
        message: PbMessage | None,
        origin: str = "",
        *,
        payload: bytes | None = None,
    ) -> None:
        if message is None and payload is None:
            raise ValueError("an XdsResource needs a message or a payload")
        self.name = name
        self.type_url = type_url
        self.message = message
        self.origin = origin
        self._payload = payload
        self._digest: bytes | None = None

    @property
    def payload(self) -> bytes:
        if self._payload is None:
            assert self.message is not None
            self._payload = self.message.SerializeToString(deterministic=True)
        return self._payload

    @property
    def digest(self) -> bytes:
        if self._digest is None:
            self._digest = hashlib.blake2b(self.payload, digest_size=16).digest()
        return self._digest

    def with_message(self, message: PbMessage) -> XdsResource:
        return XdsResource(self.name, self.type_url, message, self.origin)

    def __repr__(self) -> str:
        return f"XdsResource({short_type(self.type_url)} {self.name!r} origin={self.origin!r})"


class ResourceSet:
    """What the generators produce for one proxy: resources by (type, name), in insertion order."""

    def __init__(self, resources: Iterable[XdsResource] = ()) -> None:
        self._by_key: dict[tuple[str, str], XdsResource] = {}
        for r in resources:
            self.add(r)

    def add(self, resource: XdsResource) -> None:
        """Add or replace (a later generator may override an earlier one's resource)."""
        self._by_key[(resource.type_url, resource.name)] = resource

    def extend(self, resources: Iterable[XdsResource]) -> None:
        for r in resources:
            self.add(r)

    def remove(self, type_url: str, name: str) -> None:
        self._by_key.pop((type_url, name), None)

    def get(self, type_url: str, name: str) -> XdsResource | None:
        return self._by_key.get((type_url, name))

    def of_type(self, type_url: str) -> list[XdsResource]:
        return [r for (t, _), r in self._by_key.items() if t == type_url]

    def __iter__(self) -> Iterator[XdsResource]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one proxy should have, per type: {name: resource}, plus per-type versions.

    A type's version is a hash of its resources' names and digests, so an unchanged type keeps
    its version and is not re-sent.
    """

    resources: Mapping[str, Mapping[str, XdsResource]]
    versions: Mapping[str, str]

    @classmethod
    def build(cls, resources: Iterable[XdsResource]) -> Snapshot:
        by_type: dict[str, dict[str, XdsResource]] = {t: {} for t in ALL_TYPES}
        for r in resources:
            by_type.setdefault(r.type_url, {})[r.name] = r
        versions = {}
        for type_url, items in by_type.items():
            h = hashlib.blake2b(digest_size=8)
            for name in sorted(items):
                h.update(name.encode())
                h.update(b"\0")
                h.update(items[name].digest)
            versions[type_url] = h.hexdigest()
        return cls(by_type, versions)

    @classmethod
    def empty(cls) -> Snapshot:
        return cls.build(())

    def version(self, type_url: str) -> str:
        return self.versions.get(type_url, "")

    def of_type(self, type_url: str) -> Mapping[str, XdsResource]:
        return self.resources.get(type_url, {})


@dataclass(slots=True)
class MeshContext:
    """A consistent view of one mesh at one moment, as generators and topology see it.

    Built and kept current by kuma/xds/catalog.py from store change events. Treat as read-only:
    the catalog replaces it (copy-on-write) rather than mutating one a reader may hold.
    """

    mesh: Resource
    """The Mesh resource (spec decoded)."""
    dataplanes: Mapping[str, Resource] = field(default_factory=dict)
    """Every Dataplane of the mesh by name (specs decoded)."""
    policies: Mapping[str, tuple[Resource, ...]] = field(default_factory=dict)
    """Policies by type name (`TrafficRoute`, `TrafficPermission`, ...), sorted by name."""
    endpoints: Mapping[str, tuple[Endpoint, ...]] = field(default_factory=dict)
    """Service name -> every inbound of a non-gateway dataplane tagged with it.

    The catalog keeps a service's tuple object unchanged while its endpoints are unchanged, so
    caches may key on the tuple's identity (holding a reference to it).
    """
    generation: int = 0
    """Bumped on every change; caches key on (mesh, generation)."""

    @property
    def name(self) -> str:
        return self.mesh.meta.name

    def policies_of(self, type_name: str) -> tuple[Resource, ...]:
        return self.policies.get(type_name, ())


class ProxyWatch(Protocol):
    """A connected proxy's view of its desired config, kept current by the reconciler."""

    @property
    def snapshot(self) -> Snapshot | None:
        """The latest snapshot; None until the first one is generated. After the dataplane is
        deleted this is `Snapshot.empty()`."""

    @property
    def generation(self) -> int:
        """Increases whenever `snapshot` is replaced."""

    async def wait_changed(self, since: int) -> int:
        """Wait until `generation > since`; return the new generation."""


class SnapshotSource(Protocol):
    """What the ADS server needs from the reconciler (kuma/xds/reconciler.py)."""

    def connect(
        self, proxy_id: ProxyId, metadata: DataplaneMetadata
    ) -> AbstractAsyncContextManager[ProxyWatch]:
        """Track `proxy_id` while the context is open (several streams of one proxy may
        overlap, e.g. during an Envoy reconnect; tracking ends with the last one)."""
