"""Certificate authorities of meshes with mTLS: see docs/mtls.md.

    ca_managers = default_ca_managers(manager)        # {"builtin": ..., "provided": ...}
    await ca_managers["builtin"].ensure("default", backend)
    pair = await ca_managers[backend.type].generate_dataplane_cert("default", backend, ["web"])

`kuma.manager.ca.enable_mesh_ca(manager)` hooks them into Mesh create/update; the SDS server
(`kuma.sds`) issues dataplane identities with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kuma.ca.builtin import BuiltinCaManager, cert_secret_name, key_secret_name
from kuma.ca.core import (
    CaError,
    CaManager,
    CaManagers,
    dataplane_services,
    dp_cert_validity,
    enabled_backend,
)
from kuma.ca.datasource import DataSourceLoader
from kuma.ca.pki import (
    CertType,
    InvalidKeyPairError,
    KeyPair,
    issue_workload_cert,
    load_key_pair,
    new_root_ca,
    new_self_signed_cert,
    spiffe_id,
)
from kuma.ca.provided import ProvidedCaManager, validate_ca_cert

if TYPE_CHECKING:
    from kuma.manager.manager import ResourceManager

__all__ = [
    "BuiltinCaManager",
    "CaError",
    "CaManager",
    "CaManagers",
    "CertType",
    "DataSourceLoader",
    "InvalidKeyPairError",
    "KeyPair",
    "ProvidedCaManager",
    "cert_secret_name",
    "dataplane_services",
    "default_ca_managers",
    "dp_cert_validity",
    "enabled_backend",
    "issue_workload_cert",
    "key_secret_name",
    "load_key_pair",
    "new_root_ca",
    "new_self_signed_cert",
    "spiffe_id",
    "validate_ca_cert",
]


def default_ca_managers(manager: ResourceManager) -> dict[str, CaManager]:
    """The CA managers kuma-cp installs: `builtin` and `provided`, using `manager`'s store."""
    return {
        "builtin": BuiltinCaManager(manager),
        "provided": ProvidedCaManager(DataSourceLoader(manager)),
    }
