"""`kumactl install control-plane | metrics | tracing`: Kubernetes manifests on stdout.

    kumactl install control-plane | kubectl apply -f -
    kumactl install metrics | kubectl apply -f -
    kumactl install tracing | kubectl apply -f -

Kuma 0.7.3's flags. Images: `--control-plane-image`, `--dataplane-image` and
`--dataplane-init-image` name whole repositories; Kuma 1.x's `--*-registry` and
`--*-repository` flags are accepted too and, when given, build the image as
`<registry>/<repository>` (an explicit `--*-image` wins). The TLS flags take PEM text
(`--admission-server-tls-cert="$(cat cert.pem)"`); pairs left out are generated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click
from click.core import ParameterSource

from kuma.cli.errors import KumactlError
from kuma.cli.framework import GoFlag, KumaCommand, KumaGroup
from kuma.k8s.install import (
    ControlPlaneArgs,
    InstallError,
    MetricsArgs,
    TracingArgs,
    control_plane_manifests,
    dump_documents,
    metrics_manifests,
    tracing_manifests,
)
from kuma.k8s.install.control_plane import DEFAULT_REGISTRY

__all__ = ["install_group"]

_CP_DEFAULTS = ControlPlaneArgs()
_METRICS_DEFAULTS = MetricsArgs()


def _flag(name: str, default: str, help: str) -> GoFlag:
    return GoFlag([f"--{name}", name.replace("-", "_")], go_default=default, help=help)


def _bool(name: str, help: str) -> GoFlag:
    return GoFlag([f"--{name}", name.replace("-", "_")], go_type=None, help=help)


def _image(
    ctx: click.Context, image_flag: str, registry_flag: str | None, repository_flag: str
) -> str:
    params = ctx.params

    def explicit(flag: str | None) -> bool:
        return flag is not None and ctx.get_parameter_source(flag) is ParameterSource.COMMANDLINE

    if explicit(image_flag) or not (explicit(registry_flag) or explicit(repository_flag)):
        return str(params[image_flag])
    registry = params[registry_flag] if registry_flag else params["dataplane_registry"]
    return f"{registry}/{params[repository_flag]}"


def _control_plane(env_var: Sequence[list[tuple[str, str]]], **params: Any) -> None:
    ctx = click.get_current_context()
    args = ControlPlaneArgs(
        namespace=params["namespace"],
        image_pull_policy=params["image_pull_policy"],
        control_plane_version=params["control_plane_version"],
        control_plane_image=_image(
            ctx, "control_plane_image", "control_plane_registry", "control_plane_repository"
        ),
        control_plane_service_name=params["control_plane_service_name"],
        admission_server_tls_cert=params["admission_server_tls_cert"],
        admission_server_tls_key=params["admission_server_tls_key"],
        injector_failure_policy=params["injector_failure_policy"],
        dataplane_image=_image(
            ctx, "dataplane_image", "dataplane_registry", "dataplane_repository"
        ),
        dataplane_init_image=_image(ctx, "dataplane_init_image", None, "dataplane_init_repository"),
        sds_tls_cert=params["sds_tls_cert"],
        sds_tls_key=params["sds_tls_key"],
        kds_tls_cert=params["kds_tls_cert"],
        kds_tls_key=params["kds_tls_key"],
        kds_global_address=params["kds_global_address"],
        cni_enabled=params["cni_enabled"],
        cni_image=params["cni_image"],
        cni_version=params["cni_version"],
        mode=params["mode"],
        zone=params["zone"],
        use_node_port=params["use_node_port"],
        env_vars={k: v for pairs in env_var for k, v in pairs},
    )
    try:
        args.validate()
    except InstallError as e:
        raise KumactlError(str(e)) from None
    args.autogenerate_certs()
    click.echo(dump_documents(control_plane_manifests(args)), nl=False)


def control_plane_command() -> KumaCommand:
    d = _CP_DEFAULTS
    return KumaCommand(
        "control-plane",
        short="Install Kuma Control Plane on Kubernetes",
        long="Install Kuma Control Plane on Kubernetes in a 'kuma-system' namespace.",
        callback=_control_plane,
        params=[
            _flag("namespace", d.namespace, "namespace to install Kuma Control Plane to"),
            _flag(
                "image-pull-policy",
                d.image_pull_policy,
                "image pull policy that applies to all components of the Kuma Control Plane",
            ),
            _flag(
                "control-plane-version",
                d.control_plane_version,
                "version shared by all components of the Kuma Control Plane",
            ),
            _flag(
                "control-plane-image",
                d.control_plane_image,
                "image of the Kuma Control Plane component",
            ),
            _flag(
                "control-plane-registry",
                DEFAULT_REGISTRY,
                "registry of the Kuma Control Plane image (with --control-plane-repository)",
            ),
            _flag(
                "control-plane-repository",
                "kuma-cp",
                "repository of the Kuma Control Plane image in --control-plane-registry",
            ),
            _flag(
                "control-plane-service-name",
                d.control_plane_service_name,
                "Service name of the Kuma Control Plane",
            ),
            _flag(
                "admission-server-tls-cert",
                "",
                "TLS certificate for the admission web hooks implemented by the Kuma Control Plane",
            ),
            _flag(
                "admission-server-tls-key",
                "",
                "TLS key for the admission web hooks implemented by the Kuma Control Plane",
            ),
            _flag(
                "injector-failure-policy",
                d.injector_failure_policy,
                "failue policy of the mutating web hook implemented by the Kuma Injector component",
            ),
            _flag("dataplane-image", d.dataplane_image, "image of the Kuma Dataplane component"),
            _flag(
                "dataplane-registry",
                DEFAULT_REGISTRY,
                "registry of the Kuma Dataplane images (with --dataplane-repository or "
                "--dataplane-init-repository)",
            ),
            _flag(
                "dataplane-repository",
                "kuma-dp",
                "repository of the Kuma Dataplane image in --dataplane-registry",
            ),
            _flag(
                "dataplane-init-image",
                d.dataplane_init_image,
                "init image of the Kuma Dataplane component",
            ),
            _flag(
                "dataplane-init-repository",
                "kuma-init",
                "repository of the Kuma Dataplane init image in --dataplane-registry",
            ),
            _flag("sds-tls-cert", "", "TLS certificate for the SDS server"),
            _flag("sds-tls-key", "", "TLS key for the SDS server"),
            _flag("kds-tls-cert", "", "TLS certificate for the KDS server"),
            _flag("kds-tls-key", "", "TLS key for the KDS server"),
            _flag(
                "kds-global-address",
                "",
                "URL of Global Kuma CP (example: grpcs://192.168.0.1:5685)",
            ),
            _bool("cni-enabled", "install Kuma with CNI instead of proxy init container"),
            _flag(
                "cni-image", d.cni_image, "image of Kuma CNI component, if CNIEnabled equals true"
            ),
            _flag("cni-version", d.cni_version, "version of the CNIImage"),
            _flag(
                "mode",
                d.mode,
                "kuma cp modes: one of standalone|remote|global",
            ),
            _flag("zone", "", "set the Kuma zone name"),
            _bool("use-node-port", "use NodePort instead of LoadBalancer"),
            GoFlag(
                ["--env-var", "env_var"],
                go_type="stringToString",
                go_default="[]",
                help="environment variables that will be passed to the control plane",
            ),
        ],
    )


def _metrics(**params: Any) -> None:
    args = MetricsArgs(**params)
    click.echo(dump_documents(metrics_manifests(args)), nl=False)


def metrics_command() -> KumaCommand:
    d = _METRICS_DEFAULTS
    return KumaCommand(
        "metrics",
        short="Install Metrics backend in Kubernetes cluster (Prometheus)",
        long=(
            "Install Metrics backend in Kubernetes cluster (Prometheus with kuma-prometheus-sd) "
            "in a kuma-metrics namespace"
        ),
        callback=_metrics,
        params=[
            _flag("namespace", d.namespace, "namespace to install metrics to"),
            _flag(
                "kuma-prometheus-sd-image",
                d.kuma_prometheus_sd_image,
                "image name of Kuma Prometheus SD",
            ),
            _flag(
                "kuma-prometheus-sd-version",
                d.kuma_prometheus_sd_version,
                "version of Kuma Prometheus SD",
            ),
            _flag("kuma-cp-address", d.kuma_cp_address, "the address of Kuma CP"),
        ],
    )


def _tracing(namespace: str) -> None:
    click.echo(dump_documents(tracing_manifests(TracingArgs(namespace=namespace))), nl=False)


def tracing_command() -> KumaCommand:
    return KumaCommand(
        "tracing",
        short="Install Tracing backend in Kubernetes cluster (Jaeger)",
        long="Install Tracing backend in Kubernetes cluster (Jaeger) in a 'kuma-tracing' namespace",
        callback=_tracing,
        params=[_flag("namespace", TracingArgs().namespace, "namespace to install tracing to")],
    )


def install_group() -> KumaGroup:
    """`kumactl install`."""
    group = KumaGroup(
        "install",
        short="Install various Kuma components.",
        long="Install various Kuma components.",
    )
    for cmd in (control_plane_command(), metrics_command(), tracing_command()):
        group.add_command(cmd)
    return group
