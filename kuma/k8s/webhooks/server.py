"""Serving the webhooks in kuma-cp: TLS material from the admission server's cert dir.

The API server only calls webhooks over HTTPS. `kumactl install control-plane` mounts the
`kuma-admission-server-tls-cert` Secret (`tls.crt`, `tls.key`) at the directory named by
`runtime.kubernetes.admissionServer.certDir`, and puts the certificate (its own CA) in the
webhook configurations' `caBundle`.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Any

from kuma.config import ConfigError, ConfigProblem, KumaCpConfig
from kuma.k8s.webhooks.injector import SidecarInjector
from kuma.k8s.webhooks.lookup import LookupError_

__all__ = ["LazyLightkubeLookup", "WebhookTls", "injector_from_config", "webhook_tls"]

_CERT_DIR_KEY = "runtime.kubernetes.admissionServer.certDir"


@dataclass(frozen=True)
class WebhookTls:
    cert_file: str
    key_file: str

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        return ctx


def webhook_tls(cert_dir: str) -> WebhookTls:
    """`<cert_dir>/tls.crt` and `tls.key`, checked to load; ConfigError naming the setting."""
    if not cert_dir:
        raise ConfigError(
            "Invalid configuration", [ConfigProblem(_CERT_DIR_KEY, "must not be empty")]
        )
    cert = os.path.join(cert_dir, "tls.crt")
    key = os.path.join(cert_dir, "tls.key")
    tls = WebhookTls(cert, key)
    try:
        tls.ssl_context()
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(
            "Invalid configuration",
            [ConfigProblem(_CERT_DIR_KEY, f"cannot load tls.crt/tls.key from {cert_dir}: {e}")],
        ) from None
    return tls


def injector_from_config(cfg: KumaCpConfig, lookup: Any) -> SidecarInjector:
    return SidecarInjector(
        config=cfg.runtime.kubernetes.injector,
        control_plane_url=cfg.api_public_url,
        lookup=lookup,
    )


class LazyLightkubeLookup:
    """A LightkubeLookup whose client (in-cluster config, else kubeconfig) is made on first use,
    so kuma-cp starts, and serves validation, even before the API server can be reached."""

    def __init__(self) -> None:
        self._inner: Any = None

    def _lookup(self) -> Any:
        if self._inner is None:
            from lightkube import AsyncClient
            from lightkube.config.kubeconfig import KubeConfig

            from kuma.k8s.webhooks.lookup import LightkubeLookup

            try:
                client = AsyncClient(KubeConfig.from_env())
            except Exception as e:  # no in-cluster config and no usable kubeconfig
                raise LookupError_(f"no Kubernetes API configuration: {e}") from e
            self._inner = LightkubeLookup(client)
        return self._inner

    async def namespace(self, name: str) -> Any:
        return await self._lookup().namespace(name)

    async def mesh(self, name: str) -> Any:
        return await self._lookup().mesh(name)
