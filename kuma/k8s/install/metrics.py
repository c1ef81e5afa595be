"""`kumactl install metrics`: Prometheus with a kuma-prometheus-sd sidecar (Kuma 0.7.3).

The `kuma-metrics` namespace (sidecar injection enabled), and a Prometheus v2.18.2 server whose
pod also runs `kuma-prometheus-sd run --cp-address=<kuma-cp API>` writing the Dataplanes'
scrape targets to a file that the `kuma-dataplanes` scrape job (every 5 s) reads
(`file_sd_configs`), plus the usual Kubernetes scrape jobs, a ConfigMap reloader, RBAC and a
Service on port 80. Kuma also ships alertmanager, pushgateway, node-exporter, kube-state-metrics
and Grafana with its dashboards here; kuma-py installs the Prometheus part only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from kuma.k8s.install.control_plane import DEFAULT_REGISTRY
from kuma.version import __version__

__all__ = ["SD_FILE", "MetricsArgs", "metrics_manifests"]

SD_DIR = "/var/run/kuma.io/prometheus-sd"
SD_FILE = f"{SD_DIR}/kuma.file_sd.json"
_SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass
class MetricsArgs:
    namespace: str = "kuma-metrics"
    kuma_prometheus_sd_image: str = f"{DEFAULT_REGISTRY}/kuma-prometheus-sd"
    kuma_prometheus_sd_version: str = __version__
    kuma_cp_address: str = "http://kuma-control-plane.kuma-system:5681"


def _k8s_job(name: str, role: str, relabel: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "job_name": name,
        "kubernetes_sd_configs": [{"role": role}],
        "relabel_configs": relabel,
        **extra,
    }


def _annotated(kind: str, scrape: str) -> list[dict[str, Any]]:
    """Relabelling for `prometheus.io/*`-annotated pods or services."""
    meta = f"__meta_kubernetes_{kind}"
    rules: list[dict[str, Any]] = [
        {"action": "keep", "regex": "true", "source_labels": [f"{meta}_annotation_{scrape}"]},
        {
            "action": "replace",
            "regex": "(.+)",
            "source_labels": [f"{meta}_annotation_prometheus_io_path"],
            "target_label": "__metrics_path__",
        },
        {
            "action": "replace",
            "regex": r"([^:]+)(?::\d+)?;(\d+)",
            "replacement": "$1:$2",
            "source_labels": ["__address__", f"{meta}_annotation_prometheus_io_port"],
            "target_label": "__address__",
        },
        {"action": "labelmap", "regex": f"{meta}_label_(.+)"},
        {
            "action": "replace",
            "source_labels": ["__meta_kubernetes_namespace"],
            "target_label": "kubernetes_namespace",
        },
        {
            "action": "replace",
            "source_labels": [f"{meta}_name"],
            "target_label": f"kubernetes_{'pod_name' if kind == 'pod' else 'name'}",
        },
    ]
    return rules


def prometheus_config() -> dict[str, Any]:
    """The server's prometheus.yml."""
    tls = {"ca_file": f"{_SA_DIR}/ca.crt", "insecure_skip_verify": True}
    token = f"{_SA_DIR}/token"
    return {
        "global": {"evaluation_interval": "1m", "scrape_interval": "10s", "scrape_timeout": "10s"},
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": ["localhost:9090"]}]},
            _k8s_job(
                "kubernetes-apiservers",
                "endpoints",
                [
                    {
                        "action": "keep",
                        "regex": "default;kubernetes;https",
                        "source_labels": [
                            "__meta_kubernetes_namespace",
                            "__meta_kubernetes_service_name",
                            "__meta_kubernetes_endpoint_port_name",
                        ],
                    }
                ],
                bearer_token_file=token,
                scheme="https",
                tls_config=tls,
            ),
            _k8s_job(
                "kubernetes-nodes",
                "node",
                [
                    {"action": "labelmap", "regex": "__meta_kubernetes_node_label_(.+)"},
                    {"replacement": "kubernetes.default.svc:443", "target_label": "__address__"},
                    {
                        "regex": "(.+)",
                        "replacement": "/api/v1/nodes/$1/proxy/metrics",
                        "source_labels": ["__meta_kubernetes_node_name"],
                        "target_label": "__metrics_path__",
                    },
                ],
                bearer_token_file=token,
                scheme="https",
                tls_config=tls,
            ),
            _k8s_job(
                "kubernetes-service-endpoints",
                "endpoints",
                _annotated("service", "prometheus_io_scrape"),
            ),
            _k8s_job("kubernetes-pods", "pod", _annotated("pod", "prometheus_io_scrape")),
            {
                "job_name": "kuma-dataplanes",
                "scrape_interval": "5s",
                "file_sd_configs": [{"files": [SD_FILE]}],
            },
        ],
    }


def metrics_manifests(args: MetricsArgs) -> list[dict[str, Any]]:
    ns = args.namespace
    labels = {"component": "server", "app": "prometheus"}
    name = "prometheus-server"

    def meta(namespaced: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"labels": dict(labels), "name": name}
        if namespaced:
            out["namespace"] = ns
        return out

    rbac = "rbac.authorization.k8s.io"
    sd_mount = {"mountPath": SD_DIR, "name": "kuma-prometheus-sd-volume"}
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "annotations": {"kuma.io/sidecar-injection": "enabled"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(),
            "data": {
                "prometheus.yml": yaml.safe_dump(prometheus_config(), sort_keys=False),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta(),
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "8Gi"}},
            },
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta()},
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": meta(namespaced=False),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": [
                        "nodes",
                        "nodes/proxy",
                        "nodes/metrics",
                        "services",
                        "endpoints",
                        "pods",
                        "ingresses",
                        "configmaps",
                    ],
                    "verbs": ["get", "list", "watch"],
                },
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta(namespaced=False),
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": name},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(),
            "spec": {
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9090}],
                "selector": dict(labels),
                "sessionAffinity": "None",
                "type": "ClusterIP",
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(),
            "spec": {
                "selector": {"matchLabels": dict(labels)},
                "replicas": 1,
                "template": {
                    "metadata": {
                        "labels": dict(labels),
                        "annotations": {"kuma.io/direct-access-services": "*"},
                    },
                    "spec": {
                        "serviceAccountName": name,
                        "containers": [
                            {
                                "name": "prometheus-server-configmap-reload",
                                "image": "jimmidyson/configmap-reload:v0.4.0",
                                "imagePullPolicy": "IfNotPresent",
                                "args": [
                                    "--volume-dir=/etc/config",
                                    "--webhook-url=http://127.0.0.1:9090/-/reload",
                                ],
                                "volumeMounts": [
                                    {
                                        "name": "config-volume",
                                        "mountPath": "/etc/config",
                                        "readOnly": True,
                                    }
                                ],
                            },
                            {
                                "name": "prometheus-server",
                                "image": "prom/prometheus:v2.18.2",
                                "imagePullPolicy": "IfNotPresent",
                                "args": [
                                    "--storage.tsdb.retention.time=15d",
                                    "--config.file=/etc/config/prometheus.yml",
                                    "--storage.tsdb.path=/data",
                                    "--web.console.libraries=/etc/prometheus/console_libraries",
                                    "--web.console.templates=/etc/prometheus/consoles",
                                    "--web.enable-lifecycle",
                                ],
                                "ports": [{"containerPort": 9090}],
                                "volumeMounts": [
                                    {"name": "config-volume", "mountPath": "/etc/config"},
                                    {"name": "storage-volume", "mountPath": "/data"},
                                    dict(sd_mount),
                                ],
                            },
                            {
                                "name": "kuma-prometheus-sd",
                                "image": (
                                    f"{args.kuma_prometheus_sd_image}:"
                                    f"{args.kuma_prometheus_sd_version}"
                                ),
                                "imagePullPolicy": "IfNotPresent",
                                "args": [
                                    "run",
                                    "--name=kuma-prometheus-sd",
                                    f"--cp-address={args.kuma_cp_address}",
                                    f"--output-file={SD_FILE}",
                                ],
                                "volumeMounts": [dict(sd_mount)],
                            },
                        ],
                        "securityContext": {
                            "fsGroup": 65534,
                            "runAsGroup": 65534,
                            "runAsUser": 65534,
                        },
                        "terminationGracePeriodSeconds": 300,
                        "volumes": [
                            {"name": "config-volume", "configMap": {"name": name}},
                            {
                                "name": "storage-volume",
                                "persistentVolumeClaim": {"claimName": name},
                            },
                            {"name": "kuma-prometheus-sd-volume", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
    ]
