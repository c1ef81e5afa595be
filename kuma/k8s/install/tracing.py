"""`kumactl install tracing`: Jaeger all-in-one 1.18 in `kuma-tracing` (Kuma 0.7.3).

One Deployment (Zipkin-compatible collector on 9411) and the Services `jaeger-query` (UI on
80), `jaeger-collector` (14267, 14268, 9411), `jaeger-agent` (UDP 5775/6831/6832, TCP 5778)
and `zipkin` (9411). A mesh tracing backend of type zipkin then points at
`http://jaeger-collector.kuma-tracing:9411/api/v2/spans`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["TracingArgs", "tracing_manifests"]

_ALL_IN_ONE = {"app.kubernetes.io/name": "jaeger", "app.kubernetes.io/component": "all-in-one"}


@dataclass
class TracingArgs:
    namespace: str = "kuma-tracing"


def _port(name: str, port: int, protocol: str = "TCP", target: int | None = None) -> Any:
    return {"name": name, "port": port, "protocol": protocol, "targetPort": target or port}


def _service(
    name: str, namespace: str, component: str, ports: list[Any], headless: bool = False
) -> dict[str, Any]:
    spec: dict[str, Any] = {"ports": ports, "selector": dict(_ALL_IN_ONE)}
    if headless:
        spec["clusterIP"] = "None"
    else:
        spec["type"] = "ClusterIP"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app": "jaeger",
                "app.kubernetes.io/name": "jaeger",
                "app.kubernetes.io/component": component,
            },
        },
        "spec": spec,
    }


def tracing_manifests(args: TracingArgs) -> list[dict[str, Any]]:
    ns = args.namespace
    pod_labels = {"app": "jaeger", **_ALL_IN_ONE}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "jaeger", "namespace": ns, "labels": dict(pod_labels)},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "jaeger"}},
                "strategy": {"type": "Recreate"},
                "template": {
                    "metadata": {
                        "labels": dict(pod_labels),
                        "annotations": {
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": "16686",
                        },
                    },
                    "spec": {
                        "containers": [
                            {
                                "name": "jaeger",
                                "image": "jaegertracing/all-in-one:1.18",
                                "env": [{"name": "COLLECTOR_ZIPKIN_HTTP_PORT", "value": "9411"}],
                                "ports": [
                                    {"containerPort": 5775, "protocol": "UDP"},
                                    {"containerPort": 6831, "protocol": "UDP"},
                                    {"containerPort": 6832, "protocol": "UDP"},
                                    {"containerPort": 5778, "protocol": "TCP"},
                                    {"containerPort": 16686, "protocol": "TCP"},
                                    {"containerPort": 9411, "protocol": "TCP"},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/", "port": 14269},
                                    "initialDelaySeconds": 5,
                                },
                            }
                        ]
                    },
                },
            },
        },
        _service("jaeger-query", ns, "query", [_port("query-http", 80, target=16686)]),
        _service(
            "jaeger-collector",
            ns,
            "collector",
            [
                _port("jaeger-collector-tchannel", 14267),
                _port("jaeger-collector-http", 14268),
                _port("jaeger-collector-zipkin", 9411),
            ],
        ),
        _service(
            "jaeger-agent",
            ns,
            "agent",
            [
                _port("agent-zipkin-thrift", 5775, "UDP"),
                _port("agent-compact", 6831, "UDP"),
                _port("agent-binary", 6832, "UDP"),
                _port("agent-configs", 5778),
            ],
            headless=True,
        ),
        _service("zipkin", ns, "zipkin", [_port("jaeger-collector-zipkin", 9411)], headless=True),
    ]
