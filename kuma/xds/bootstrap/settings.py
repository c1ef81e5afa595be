"""What the bootstrap server puts into every Envoy bootstrap: kuma-cp's `bootstrapServer.params`.

settings = BootstrapSettings.from_config(config)      # resolves xdsHost / xdsPort defaults
settings = BootstrapSettings(xds_host="cp.internal", xds_port=5678)
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kuma.config import KumaCpConfig

__all__ = ["BootstrapSettings"]

_MAX_PORT = 65535


@dataclass(frozen=True, slots=True)
class BootstrapSettings:
    """Resolved bootstrap parameters (no "empty means X" left: the caller resolved them)."""

    xds_host: str
    """Host Envoy dials for ADS (`bootstrapServer.params.xdsHost`, else
    `general.advertisedHostname`)."""
    xds_port: int
    """Port Envoy dials for ADS (`bootstrapServer.params.xdsPort`, else `xdsServer.grpcPort`)."""
    admin_address: str = "127.0.0.1"
    """IP Envoy's admin API listens on (`bootstrapServer.params.adminAddress`)."""
    admin_port: int = 0
    """Admin port used when the request names none; 0 leaves Envoy's admin API off
    (`bootstrapServer.params.adminPort`)."""
    admin_access_log_path: str = "/dev/null"
    """Access log of Envoy's admin API (`bootstrapServer.params.adminAccessLogPath`)."""
    xds_connect_timeout: timedelta = timedelta(seconds=1)
    """Connect timeout of the `ads_cluster` (`bootstrapServer.params.xdsConnectTimeout`)."""
    xds_ca_cert_file: str = ""
    """PEM file Envoy must trust for the ADS server's certificate (`xdsServer.tlsCertFile`).
    Empty: ADS is plaintext. Read on every request, so a rotated file is picked up."""

    def __post_init__(self) -> None:
        if not self.xds_host:
            raise ValueError("xds_host must not be empty")
        if not 1 <= self.xds_port <= _MAX_PORT:
            raise ValueError(f"xds_port must be in the range [1, {_MAX_PORT}]")
        if not 0 <= self.admin_port <= _MAX_PORT:
            raise ValueError(f"admin_port must be in the range [0, {_MAX_PORT}]")
        try:
            ipaddress.ip_address(self.admin_address)
        except ValueError:
            raise ValueError("admin_address should be a valid IP address") from None
        if not self.admin_access_log_path:
            raise ValueError("admin_access_log_path must not be empty")
        if self.xds_connect_timeout <= timedelta(0):
            # Kuma accepts 0, but Envoy refuses a cluster whose connect_timeout is not > 0
            raise ValueError("xds_connect_timeout must be positive")

    @classmethod
    def from_config(cls, config: KumaCpConfig) -> BootstrapSettings:
        """The settings kuma-cp's configuration implies, with Kuma's autoconfiguration."""
        params = config.bootstrap_server.params
        return cls(
            xds_host=params.xds_host or config.general.advertised_hostname,
            xds_port=params.xds_port or config.xds_server.grpc_port,
            admin_address=params.admin_address,
            admin_port=params.admin_port,
            admin_access_log_path=params.admin_access_log_path,
            xds_connect_timeout=params.xds_connect_timeout,
            xds_ca_cert_file=config.xds_server.tls_cert_file,
        )
