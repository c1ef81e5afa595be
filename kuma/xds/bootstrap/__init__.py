"""Envoy bootstraps for dataplanes: the generator and kuma-cp's bootstrap server (port 5682).

See generator.py for what a bootstrap holds and server.py for the HTTP contract.
"""

from kuma.xds.bootstrap.generator import (
    STATS_TAGS,
    AdminPortConflictError,
    BootstrapParams,
    bootstrap_to_yaml,
    build_bootstrap,
    check_admin_port,
    generate_bootstrap,
)
from kuma.xds.bootstrap.server import YAML_CONTENT_TYPE, build_bootstrap_app
from kuma.xds.bootstrap.settings import BootstrapSettings
from kuma.xds.bootstrap.types import (
    ACCESS_LOG_SINK_CLUSTER,
    ADS_CLUSTER,
    BootstrapRequest,
    BootstrapRequestError,
    access_log_socket_path,
)

__all__ = [
    "ACCESS_LOG_SINK_CLUSTER",
    "ADS_CLUSTER",
    "STATS_TAGS",
    "YAML_CONTENT_TYPE",
    "AdminPortConflictError",
    "BootstrapParams",
    "BootstrapRequest",
    "BootstrapRequestError",
    "BootstrapSettings",
    "access_log_socket_path",
    "bootstrap_to_yaml",
    "build_bootstrap",
    "build_bootstrap_app",
    "check_admin_port",
    "generate_bootstrap",
]
