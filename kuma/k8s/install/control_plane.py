"""`kumactl install control-plane`: the manifests of a Kuma control plane on Kubernetes.

What Kuma 0.7.3 installs, built as dicts: the system Namespace; the SDS, KDS and admission
server TLS Secrets (self-signed certificates, each its own CA, generated when not given);
the kuma-cp ConfigMap; the ServiceAccount, ClusterRole/Binding and Role/Binding
`kuma:control-plane`; one CRD per Kuma kind (`kuma.k8s.crds`); the `kuma-control-plane`
Service and Deployment (KUMA_ENVIRONMENT=kubernetes, KUMA_STORE_TYPE=kubernetes, read-only
API, the admission server on 5443 with its cert dir); and the Mutating/Validating webhook
configurations pointing at the webhooks of `kuma.k8s.webhooks` (caBundle = the admission
server's certificate). `--cni-enabled` adds the kuma-cni DaemonSet in kube-system.

Kuma 0.7.3 emits `admissionregistration.k8s.io/v1beta1` and `rbac.authorization.k8s.io/v1`;
kuma-py emits `admissionregistration.k8s.io/v1` (v1beta1 is gone since Kubernetes 1.22), whose
webhooks must name `admissionReviewVersions` — `v1`, which the webhook server speaks.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from kuma.ca.pki import new_self_signed_cert
from kuma.errors import KumaError
from kuma.k8s import crds
from kuma.k8s.webhooks.app import (
    PATH_DEFAULT_MESH,
    PATH_INJECT,
    PATH_OWNER_REFERENCE,
    PATH_VALIDATE,
    PATH_VALIDATE_SECRET,
    PATH_VALIDATE_SERVICE,
)
from kuma.version import __version__

__all__ = ["DEFAULT_REGISTRY", "ControlPlaneArgs", "InstallError", "control_plane_manifests"]

DEFAULT_REGISTRY = "kong-docker-kuma-docker.bintray.io"
MODES = ("standalone", "remote", "global")
_CP = "kuma:control-plane"
_SA = "kuma-control-plane"
_SECRETS_DIR = "/var/run/secrets/kuma.io"
_CONFIG_DIR = "/etc/kuma.io/kuma-control-plane"


class InstallError(KumaError):
    """The flags cannot make a valid installation."""


@dataclass
class ControlPlaneArgs:
    namespace: str = "kuma-system"
    image_pull_policy: str = "IfNotPresent"
    control_plane_version: str = __version__
    control_plane_image: str = f"{DEFAULT_REGISTRY}/kuma-cp"
    control_plane_service_name: str = "kuma-control-plane"
    admission_server_tls_cert: str = ""
    admission_server_tls_key: str = ""
    injector_failure_policy: str = "Ignore"
    dataplane_image: str = f"{DEFAULT_REGISTRY}/kuma-dp"
    dataplane_init_image: str = f"{DEFAULT_REGISTRY}/kuma-init"
    sds_tls_cert: str = ""
    sds_tls_key: str = ""
    kds_tls_cert: str = ""
    kds_tls_key: str = ""
    kds_global_address: str = ""
    cni_enabled: bool = False
    cni_image: str = "lobkovilya/install-cni"
    cni_version: str = "0.0.2"
    mode: str = "standalone"
    zone: str = ""
    use_node_port: bool = False
    env_vars: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """InstallError with Kuma's message for flags that do not go together."""
        if self.mode not in MODES:
            raise InstallError(f"invalid mode. Available modes: {', '.join(MODES)}")
        if self.mode == "remote" and not self.zone:
            raise InstallError("--zone is mandatory with `remote` mode")
        if self.mode == "remote" and not self.kds_global_address:
            raise InstallError("--kds-global-address is mandatory with `remote` mode")
        if self.kds_global_address:
            if self.mode != "remote":
                raise InstallError("--kds-global-address can only be used when --mode=remote")
            try:
                scheme = urlparse(self.kds_global_address).scheme
            except ValueError:
                raise InstallError(
                    "--kds-global-address is not valid URL. "
                    "The allowed format is grpcs://hostname:port"
                ) from None
            if scheme != "grpcs":
                raise InstallError("--kds-global-address should start with grpcs://")
        for what in ("admission-server", "sds", "kds"):
            attr = what.replace("-", "_")
            cert = getattr(self, f"{attr}_tls_cert")
            key = getattr(self, f"{attr}_tls_key")
            if bool(cert) != bool(key):
                raise InstallError(
                    f"both --{what}-tls-cert and --{what}-tls-key must be provided at the same time"
                )

    def autogenerate_certs(self) -> None:
        """Fill every TLS pair that was not given with a new self-signed one (its own CA)."""
        svc = self.control_plane_service_name
        fqdn = f"{svc}.{self.namespace}.svc"
        service_hosts = [fqdn, f"{svc}.{self.namespace}", svc, "localhost"]
        for attr, hosts in (
            ("admission_server", service_hosts),
            ("sds", service_hosts),
            ("kds", [fqdn, "localhost"]),
        ):
            if not getattr(self, f"{attr}_tls_cert"):
                pair = new_self_signed_cert(fqdn, "server", hosts)
                setattr(self, f"{attr}_tls_cert", pair.cert_pem.decode())
                setattr(self, f"{attr}_tls_key", pair.key_pem.decode())


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update(extra)
    return meta


def control_plane_manifests(args: ControlPlaneArgs) -> list[dict[str, Any]]:
    """Every object to apply, unsorted (args must be validated and have their certs)."""
    ns = args.namespace
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": _meta(ns, labels={"kuma.io/system-namespace": "true"}),
        },
        *_rbac(args),
        *_services(args),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(_SA, ns)},
        *_secrets(args),
        _config_map(args),
        _deployment(args),
        *(crds.crd_manifest(crd) for crd in crds.all_crds()),
        _mutating_webhooks(args),
        _validating_webhooks(args),
    ]
    if args.cni_enabled:
        docs.extend(_cni(args))
    return docs


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


_ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


def _rbac(args: ControlPlaneArgs) -> list[dict[str, Any]]:
    ns = args.namespace
    policy_verbs = ["get", "list", "watch"]
    if args.mode == "remote":
        policy_verbs += ["create", "update", "patch", "delete"]
    policies = [
        c.plural
        for c in crds.all_crds()
        if c.type.mesh_scoped and c.kind not in ("Dataplane", "DataplaneInsight", "ProxyTemplate")
    ]
    rules = [
        _rule([""], ["namespaces", "pods", "services"], ["get", "list", "watch"]),
        _rule([""], ["events"], ["create", "patch"]),
        _rule(
            [crds.GROUP],
            ["dataplanes", "dataplaneinsights", "meshes", "zones", "zoneinsights"],
            _ALL_VERBS,
        ),
        _rule([crds.GROUP], ["proxytemplates"], _ALL_VERBS),
        _rule([crds.GROUP], ["proxytemplates/status"], ["get", "update", "patch"]),
        _rule([crds.GROUP], policies, policy_verbs),
        _rule([""], ["pods/finalizers"], ["*"]),
        _rule([crds.GROUP], ["meshes/finalizers"], ["*"]),
        _rule([crds.GROUP], ["dataplanes/finalizers"], ["*"]),
    ]
    if args.cni_enabled:
        rules.append(
            _rule(
                ["k8s.cni.cncf.io"],
                ["network-attachment-definitions"],
                ["get", "list", "watch", "create", "delete"],
            )
        )
    # kuma-cp validates ServiceAccount tokens before it issues mTLS certificates
    rules.append(_rule(["authentication.k8s.io"], ["tokenreviews"], ["create"]))
    subjects = [{"kind": "ServiceAccount", "name": _SA, "namespace": ns}]
    rbac = "rbac.authorization.k8s.io"
    return [
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": _meta(_CP),
            "rules": rules,
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(_CP),
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": _CP},
            "subjects": subjects,
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "Role",
            "metadata": _meta(_CP, ns),
            "rules": [
                _rule([""], ["secrets"], _ALL_VERBS),
                _rule([""], ["configmaps"], _ALL_VERBS),
            ],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": _meta(_CP, ns),
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": _CP},
            "subjects": subjects,
        },
    ]


def _services(args: ControlPlaneArgs) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = [
        {"port": 5681, "name": "http-api-server"},
        {"port": 443, "name": "https-admission-server", "targetPort": 5443},
    ]
    if args.mode != "global":
        ports += [
            {"port": 5676, "name": "mads-server"},
            {"port": 5677, "name": "grpc-sds"},
            {"port": 5678, "name": "grpc-xds"},
            {"port": 5679, "name": "http-xds"},
            {"port": 5682, "name": "http-bootstrap-server"},
            {"port": 5653, "name": "dns-server", "protocol": "UDP"},
        ]
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(args.control_plane_service_name, args.namespace),
            "spec": {
                "type": "ClusterIP",
                "ports": ports,
                "selector": {"app": "kuma-control-plane"},
            },
        }
    ]
    if args.mode == "global":
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _meta("global-remote-sync", args.namespace),
                "spec": {
                    "type": "NodePort" if args.use_node_port else "LoadBalancer",
                    "ports": [{"port": 5685, "nodePort": 30685, "name": "global-remote-sync"}],
                    "selector": {"app": "kuma-control-plane"},
                },
            }
        )
    return docs


def _tls_secret(name: str, namespace: str, cert: str, key: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": _meta(name, namespace),
        "data": {"tls.crt": _b64(cert), "tls.key": _b64(key)},
    }


def _secrets(args: ControlPlaneArgs) -> list[dict[str, Any]]:
    ns = args.namespace
    docs = []
    if args.mode != "global":
        docs.append(_tls_secret("kuma-sds-tls-cert", ns, args.sds_tls_cert, args.sds_tls_key))
    docs.append(_tls_secret("kuma-kds-tls-cert", ns, args.kds_tls_cert, args.kds_tls_key))
    docs.append(
        _tls_secret(
            "kuma-admission-server-tls-cert",
            ns,
            args.admission_server_tls_cert,
            args.admission_server_tls_key,
        )
    )
    return docs


def _config_map(args: ControlPlaneArgs) -> dict[str, Any]:
    config = (
        "# kuma-cp configuration; the Deployment's KUMA_* variables take precedence.\n"
        "# See `kuma-cp run --help` and docs/configuration.md for every setting.\n"
        "environment: kubernetes\n"
        "store:\n"
        "  type: kubernetes\n"
        "  kubernetes:\n"
        f"    systemNamespace: {args.namespace}\n"
    )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("kuma-control-plane-config", args.namespace),
        "data": {"config.yaml": config},
    }


def _env(name: str, value: str) -> dict[str, str]:
    return {"name": name, "value": value}


def _deployment(args: ControlPlaneArgs) -> dict[str, Any]:
    ns = args.namespace
    version = args.control_plane_version
    not_global = args.mode != "global"
    env = [
        _env("KUMA_ENVIRONMENT", "kubernetes"),
        _env("KUMA_STORE_TYPE", "kubernetes"),
        _env("KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE", ns),
        _env("KUMA_GENERAL_ADVERTISED_HOSTNAME", f"{args.control_plane_service_name}.{ns}"),
    ]
    if not_global:
        env += [
            _env("KUMA_SDS_SERVER_GRPC_PORT", "5677"),
            _env("KUMA_XDS_SERVER_GRPC_PORT", "5678"),
            _env("KUMA_BOOTSTRAP_SERVER_PORT", "5682"),
            _env("KUMA_SDS_SERVER_TLS_CERT_FILE", f"{_SECRETS_DIR}/kuma-sds/tls-cert/tls.crt"),
            _env("KUMA_SDS_SERVER_TLS_KEY_FILE", f"{_SECRETS_DIR}/kuma-sds/tls-cert/tls.key"),
        ]
    if args.mode == "remote":
        env.append(_env("KUMA_MULTICLUSTER_REMOTE_GLOBAL_ADDRESS", args.kds_global_address))
    env += [
        _env(
            "KUMA_MULTICLUSTER_GLOBAL_KDS_TLS_CERT_FILE",
            f"{_SECRETS_DIR}/kuma-kds/tls-cert/tls.crt",
        ),
        _env(
            "KUMA_MULTICLUSTER_GLOBAL_KDS_TLS_KEY_FILE",
            f"{_SECRETS_DIR}/kuma-kds/tls-cert/tls.key",
        ),
        _env("KUMA_API_SERVER_PORT", "5681"),
        _env("KUMA_API_SERVER_READ_ONLY", "true"),
        _env("KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT", "5443"),
        _env(
            "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR",
            f"{_SECRETS_DIR}/kuma-admission-server/tls-cert",
        ),
        _env("KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED", str(args.cni_enabled).lower()),
        _env(
            "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE",
            f"{args.dataplane_image}:{version}",
        ),
        _env("KUMA_INJECTOR_INIT_CONTAINER_IMAGE", f"{args.dataplane_init_image}:{version}"),
        _env("KUMA_MODE", args.mode),
    ]
    if args.zone:
        env.append(_env("KUMA_MULTICLUSTER_REMOTE_ZONE", args.zone))
    for key in sorted(args.env_vars):
        env.append(_env(key.upper(), args.env_vars[key]))
    ports: list[dict[str, Any]] = [{"containerPort": 5681}, {"containerPort": 5443}]
    if not_global:
        ports += [
            {"containerPort": 5676},
            {"containerPort": 5677},
            {"containerPort": 5678},
            {"containerPort": 5679},
            {"containerPort": 5682},
            {"containerPort": 5653, "protocol": "UDP"},
        ]
    secrets = (["kuma-sds-tls-cert"] if not_global else []) + [
        "kuma-kds-tls-cert",
        "kuma-admission-server-tls-cert",
    ]
    mount_dirs = {
        "kuma-sds-tls-cert": f"{_SECRETS_DIR}/kuma-sds/tls-cert",
        "kuma-kds-tls-cert": f"{_SECRETS_DIR}/kuma-kds/tls-cert",
        "kuma-admission-server-tls-cert": f"{_SECRETS_DIR}/kuma-admission-server/tls-cert",
    }
    mounts = [{"name": s, "mountPath": mount_dirs[s], "readOnly": True} for s in secrets]
    mounts.append({"name": "kuma-control-plane-config", "mountPath": _CONFIG_DIR, "readOnly": True})
    volumes: list[dict[str, Any]] = [{"name": s, "secret": {"secretName": s}} for s in secrets]
    volumes.append(
        {"name": "kuma-control-plane-config", "configMap": {"name": "kuma-control-plane-config"}}
    )
    labels = {"app": "kuma-control-plane"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta("kuma-control-plane", ns, labels=dict(labels)),
        "spec": {
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": _SA,
                    "containers": [
                        {
                            "name": "control-plane",
                            "image": f"{args.control_plane_image}:{version}",
                            "imagePullPolicy": args.image_pull_policy,
                            "env": env,
                            "args": [
                                "run",
                                "--log-level=info",
                                f"--config-file={_CONFIG_DIR}/config.yaml",
                            ],
                            "ports": ports,
                            "livenessProbe": {"httpGet": {"path": "/healthy", "port": 5680}},
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 5680}},
                            "resources": {
                                "requests": {
                                    "cpu": "500m" if args.mode == "global" else "100m",
                                    "memory": "256Mi",
                                }
                            },
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def _client_config(args: ControlPlaneArgs, path: str) -> dict[str, Any]:
    return {
        "caBundle": _b64(args.admission_server_tls_cert),
        "service": {
            "namespace": args.namespace,
            "name": args.control_plane_service_name,
            "path": path,
        },
    }


def _webhook(
    args: ControlPlaneArgs,
    name: str,
    path: str,
    failure_policy: str,
    rules: list[dict[str, Any]],
    **extra: Any,
) -> dict[str, Any]:
    hook: dict[str, Any] = {"name": name, **extra}
    hook.update(
        {
            "failurePolicy": failure_policy,
            "clientConfig": _client_config(args, path),
            "rules": rules,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
        }
    )
    return hook


def _rules(group: str, version: str, operations: list[str], resources: list[str]) -> list[Any]:
    return [
        {
            "apiGroups": [group],
            "apiVersions": [version],
            "operations": operations,
            "resources": resources,
        }
    ]


def _policy_plurals() -> list[str]:
    return [
        c.plural for c in crds.all_crds() if c.type.owner_type == "Mesh" and c.kind != "Dataplane"
    ]


def _mutating_webhooks(args: ControlPlaneArgs) -> dict[str, Any]:
    g, v = crds.GROUP, crds.VERSION
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": _meta("kuma-admission-mutating-webhook-configuration"),
        "webhooks": [
            _webhook(
                args,
                "mesh.defaulter.kuma-admission.kuma.io",
                PATH_DEFAULT_MESH,
                "Fail",
                _rules(g, v, ["CREATE", "UPDATE"], ["meshes"]),
            ),
            _webhook(
                args,
                "owner-reference.kuma-admission.kuma.io",
                PATH_OWNER_REFERENCE,
                "Fail",
                _rules(g, v, ["CREATE"], _policy_plurals()),
            ),
            _webhook(
                args,
                "kuma-injector.kuma.io",
                PATH_INJECT,
                args.injector_failure_policy,
                _rules("", "v1", ["CREATE"], ["pods"]),
            ),
        ],
    }


def _validating_webhooks(args: ControlPlaneArgs) -> dict[str, Any]:
    kuma_kinds = [
        c.plural for c in crds.all_crds() if c.kind not in ("DataplaneInsight", "ZoneInsight")
    ]
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": _meta("kuma-validating-webhook-configuration"),
        "webhooks": [
            _webhook(
                args,
                "validator.kuma-admission.kuma.io",
                PATH_VALIDATE,
                "Fail",
                _rules(crds.GROUP, crds.VERSION, ["CREATE", "UPDATE", "DELETE"], kuma_kinds),
            ),
            _webhook(
                args,
                "service.validator.kuma-admission.kuma.io",
                PATH_VALIDATE_SERVICE,
                "Ignore",
                _rules("", "v1", ["CREATE", "UPDATE"], ["services"]),
            ),
            _webhook(
                args,
                "secret.validator.kuma-admission.kuma.io",
                PATH_VALIDATE_SECRET,
                "Ignore",
                _rules("", "v1", ["CREATE", "UPDATE", "DELETE"], ["secrets"]),
                namespaceSelector={"matchLabels": {"kuma.io/system-namespace": "true"}},
            ),
        ],
    }


_CNI_NETWORK_CONFIG = """{
  "cniVersion": "0.3.1",
  "name": "kuma-cni",
  "type": "kuma-cni",
  "log_level": "info",
  "kubernetes": {
      "kubeconfig": "__KUBECONFIG_FILEPATH__",
      "cni_bin_dir": "/var/lib/cni/bin",
      "exclude_namespaces": [ "kube-system" ]
  }
}"""


def _cni(args: ControlPlaneArgs) -> list[dict[str, Any]]:
    ns = "kube-system"
    labels = {"app": "kuma-cni"}
    rbac = "rbac.authorization.k8s.io"
    node_labels = {"k8s-app": "kuma-cni-node"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta("kuma-cni", ns, labels=dict(labels)),
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("kuma-cni-config", ns, labels=dict(labels)),
            "data": {"cni_network_config": _CNI_NETWORK_CONFIG},
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": _meta("kuma-cni", labels=dict(labels)),
            "rules": [_rule([""], ["pods", "nodes"], ["get"])],
        },
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta("kuma-cni", labels=dict(labels)),
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": "kuma-cni"},
            "subjects": [{"kind": "ServiceAccount", "name": "kuma-cni", "namespace": ns}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": _meta("kuma-cni-node", ns, labels=dict(node_labels)),
            "spec": {
                "selector": {"matchLabels": dict(node_labels)},
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": dict(node_labels)},
                    "spec": {
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "hostNetwork": True,
                        "tolerations": [
                            {"effect": "NoSchedule", "operator": "Exists"},
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                            {"effect": "NoExecute", "operator": "Exists"},
                        ],
                        "priorityClassName": "system-cluster-critical",
                        "serviceAccountName": "kuma-cni",
                        "terminationGracePeriodSeconds": 5,
                        "containers": [
                            {
                                "name": "install-cni",
                                "image": f"{args.cni_image}:{args.cni_version}",
                                "imagePullPolicy": "Always",
                                "command": ["/install-cni.sh"],
                                "env": [
                                    _env("CNI_CONF_NAME", "kuma-cni.conf"),
                                    {
                                        "name": "CNI_NETWORK_CONFIG",
                                        "valueFrom": {
                                            "configMapKeyRef": {
                                                "name": "kuma-cni-config",
                                                "key": "cni_network_config",
                                            }
                                        },
                                    },
                                    _env("CNI_NET_DIR", "/etc/cni/multus/net.d"),
                                    _env("CHAINED_CNI_PLUGIN", "false"),
                                ],
                                "volumeMounts": [
                                    {"mountPath": "/host/opt/cni/bin", "name": "cni-bin-dir"},
                                    {"mountPath": "/host/etc/cni/net.d", "name": "cni-net-dir"},
                                ],
                            }
                        ],
                        "volumes": [
                            {"name": "cni-bin-dir", "hostPath": {"path": "/var/lib/cni/bin"}},
                            {
                                "name": "cni-net-dir",
                                "hostPath": {"path": "/etc/cni/multus/net.d"},
                            },
                        ],
                    },
                },
            },
        },
    ]
