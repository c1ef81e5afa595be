"""A valid resource body for every type the REST API serves, as a client would PUT it."""

from __future__ import annotations

import copy
from typing import Any

from kuma.model import registry
from kuma.model.resource import ResourceType

__all__ = ["sample_body"]

_SPECS: dict[str, dict[str, Any]] = {
    "Mesh": {
        "mtls": {
            "enabledBackend": "ca-1",
            "backends": [{"name": "ca-1", "type": "builtin"}],
        },
    },
    "Dataplane": {
        "networking": {
            "address": "192.168.0.2",
            "inbound": [
                {
                    "port": 8000,
                    "servicePort": 80,
                    "tags": {
                        "kuma.io/service": "backend",
                        "kuma.io/protocol": "http",
                        "version": "v1",
                    },
                }
            ],
            "outbound": [{"port": 10000, "tags": {"kuma.io/service": "redis"}}],
        },
    },
    "DataplaneInsight": {
        "subscriptions": [
            {
                "id": "stream-1",
                "controlPlaneInstanceId": "cp-1",
                "connectTime": "2020-10-22T10:00:00Z",
                "status": {
                    "lastUpdateTime": "2020-10-22T10:00:05Z",
                    "total": {"responsesSent": "3", "responsesAcknowledged": "3"},
                    "cds": {"responsesSent": "1", "responsesAcknowledged": "1"},
                    "eds": {"responsesSent": "1", "responsesAcknowledged": "1"},
                    "lds": {"responsesSent": "1", "responsesAcknowledged": "1"},
                    "rds": {},
                },
            }
        ]
    },
    "HealthCheck": {
        "sources": [{"match": {"kuma.io/service": "web"}}],
        "destinations": [{"match": {"kuma.io/service": "backend"}}],
        "conf": {
            "interval": "10s",
            "timeout": "2s",
            "unhealthyThreshold": 3,
            "healthyThreshold": 1,
        },
    },
    "ProxyTemplate": {
        "selectors": [{"match": {"kuma.io/service": "backend"}}],
        "conf": {"imports": ["default-proxy"]},
    },
    "TrafficPermission": {
        "sources": [{"match": {"kuma.io/service": "web"}}],
        "destinations": [{"match": {"kuma.io/service": "backend", "version": "*"}}],
    },
    "TrafficLog": {
        "sources": [{"match": {"kuma.io/service": "web"}}],
        "destinations": [{"match": {"kuma.io/service": "backend"}}],
    },
    "TrafficRoute": {
        "sources": [{"match": {"kuma.io/service": "web"}}],
        "destinations": [{"match": {"kuma.io/service": "backend"}}],
        "conf": [
            {"weight": 90, "destination": {"kuma.io/service": "backend", "version": "v1"}},
            {"weight": 10, "destination": {"kuma.io/service": "backend", "version": "v2"}},
        ],
    },
    "TrafficTrace": {
        "selectors": [{"match": {"kuma.io/service": "*"}}],
    },
    "FaultInjection": {
        "sources": [{"match": {"kuma.io/service": "web", "kuma.io/protocol": "http"}}],
        "destinations": [{"match": {"kuma.io/service": "backend", "kuma.io/protocol": "http"}}],
        "conf": {"abort": {"percentage": 50, "httpStatus": 500}},
    },
    "CircuitBreaker": {
        "sources": [{"match": {"kuma.io/service": "web"}}],
        "destinations": [{"match": {"kuma.io/service": "backend"}}],
        "conf": {
            "interval": "5s",
            "baseEjectionTime": "30s",
            "maxEjectionPercent": 20,
            "detectors": {"totalErrors": {"consecutive": 20}},
        },
    },
    "Secret": {"data": "c2VjcmV0"},
    "Zone": {"ingress": {"address": "10.20.1.1:10001"}},
    "ZoneInsight": {
        "subscriptions": [
            {
                "id": "kds-1",
                "globalInstanceId": "global-1",
                "connectTime": "2020-10-22T10:00:00Z",
                "status": {"total": {}},
            }
        ]
    },
    "Retry": {
        "sources": [{"match": {"kuma.io/service": "web"}}],
        "destinations": [{"match": {"kuma.io/service": "backend"}}],
        "conf": {
            "http": {
                "numRetries": 5,
                "perTryTimeout": "0.200s",
                "backOff": {"baseInterval": "0.020s", "maxInterval": "1s"},
                "retriableStatusCodes": [500, 504],
            },
            "grpc": {"numRetries": 3, "retryOn": ["cancelled", "unavailable"]},
            "tcp": {"maxConnectAttempts": 3},
        },
    },
    "Timeout": {
        "sources": [{"match": {"kuma.io/service": "web"}}],
        "destinations": [{"match": {"kuma.io/service": "backend"}}],
        "conf": {
            "connectTimeout": "5s",
            "tcp": {"idleTimeout": "3600s"},
            "http": {"requestTimeout": "15s", "idleTimeout": "3600s"},
            "grpc": {"streamIdleTimeout": "300s", "maxStreamDuration": "1800s"},
        },
    },
}


def sample_body(rtype: ResourceType, name: str, mesh: str = "default") -> dict[str, Any]:
    """`{"type", "mesh"?, "name", ...spec}` of a resource that passes Kuma's validation."""
    body: dict[str, Any] = {"type": rtype.name}
    if rtype.mesh_scoped:
        body["mesh"] = mesh
    body["name"] = name
    body.update(copy.deepcopy(_SPECS[rtype.name]))
    return body


assert set(_SPECS) == {t.name for t in registry.all_types()}, "a type has no sample"
