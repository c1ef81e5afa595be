"""Small shared pieces of the Envoy builders: cluster subsets, endpoint metadata, addresses.

Messages are the upb-backed classes of PyPI `xds-protos` (Envoy v3 API).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from envoy.config.core.v3 import address_pb2, base_pb2
from google.protobuf import any_pb2, struct_pb2

from kuma.model.selectors import SERVICE_TAG

__all__ = [
    "LB_METADATA_KEY",
    "TAGS_HEADER",
    "TRANSPORT_SOCKET_MATCH_KEY",
    "Builder",
    "ClusterSubset",
    "Configurer",
    "endpoint_metadata",
    "lb_metadata",
    "pack",
    "serialize_tags",
    "set_socket_address",
]

LB_METADATA_KEY = "envoy.lb"
TRANSPORT_SOCKET_MATCH_KEY = "envoy.transport_socket_match"
TAGS_HEADER = "x-kuma-tags"
"""Outbound HTTP requests carry the source dataplane's tags in this header; inbound routes
strip it before the request reaches the application."""

M = TypeVar("M")
T = TypeVar("T")
Configurer = Callable[[M], None]
"""Configures one aspect of a message under construction (a listener, cluster, route, ...)."""


class Builder(Generic[T]):
    """Builds a message by running configurers in order on a fresh instance.

    `configure` accepts None for "nothing to do here" so optional aspects read linearly:
    `builder.configure(transparent_proxying(tp))` where `transparent_proxying` may return None.
    """

    __slots__ = ("_configurers", "_factory")

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._configurers: list[Callable[[T], None]] = []

    def configure(self, *configurers: Callable[[T], None] | None) -> Builder[T]:
        self._configurers.extend(c for c in configurers if c is not None)
        return self

    def build(self) -> T:
        message = self._factory()
        for configurer in self._configurers:
            configurer(message)
        return message


@dataclass(frozen=True, slots=True)
class ClusterSubset:
    """Where (part of) an outbound's traffic goes: a cluster (a service name), a weight, and
    the destination's tags; tags besides `kuma.io/service` select a subset of the cluster's
    endpoints through Envoy's subset load balancer."""

    cluster: str
    weight: int = 0
    tags: Mapping[str, str] | None = None

    @property
    def lb_tags(self) -> tuple[tuple[str, str], ...]:
        """Sorted `(tag, value)` pairs other than `kuma.io/service`."""
        if not self.tags:
            return ()
        return tuple(sorted((k, v) for k, v in self.tags.items() if k != SERVICE_TAG))


def pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def set_socket_address(address: address_pb2.Address, ip: str, port: int) -> None:
    socket = address.socket_address
    socket.address = ip
    socket.port_value = port


def _fill_struct(struct: struct_pb2.Struct, tags: Iterable[tuple[str, str]]) -> None:
    for key, value in tags:
        struct.fields[key].string_value = value


def lb_metadata(tags: Mapping[str, str] | None, target: base_pb2.Metadata) -> bool:
    """Fill `target.filter_metadata["envoy.lb"]` with the non-service tags; False if none."""
    pairs = [(k, v) for k, v in sorted((tags or {}).items()) if k != SERVICE_TAG]
    if not pairs:
        return False
    _fill_struct(target.filter_metadata[LB_METADATA_KEY], pairs)
    return True


def endpoint_metadata(tags: Mapping[str, str] | None, target: base_pb2.Metadata) -> bool:
    """An endpoint's metadata: its non-service tags under both `envoy.lb` (subset load
    balancing) and `envoy.transport_socket_match` (per-subset TLS later); False if none."""
    pairs = [(k, v) for k, v in sorted((tags or {}).items()) if k != SERVICE_TAG]
    if not pairs:
        return False
    _fill_struct(target.filter_metadata[LB_METADATA_KEY], pairs)
    _fill_struct(target.filter_metadata[TRANSPORT_SOCKET_MATCH_KEY], pairs)
    return True


def serialize_tags(tags: Mapping[str, Iterable[str]]) -> str:
    """Kuma's `x-kuma-tags` value: `&k1=v1,v2&&k2=v3&` (keys sorted, values as given)."""
    return "".join(f"&{key}={','.join(tags[key])}&" for key in sorted(tags))
