"""GeneratorSettings: what the generators need to know about the control plane itself.

Everything here is the same for every dataplane of every mesh (Kuma's `ControlPlaneContext`):
where Envoy fetches its mTLS certificates (the SDS server) and which certificate it trusts for
that connection. The control plane fills it from its configuration and the SDS server's
certificate, once, and hands it to `SnapshotGenerator`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GeneratorSettings"]


@dataclass(frozen=True, slots=True)
class GeneratorSettings:
    sds_target: str = ""
    """`host:port` of the SDS server as Envoy dials it (Google gRPC `target_uri`), e.g.
    `kuma-cp.internal:5677`. Required to generate config for a mesh with mTLS enabled."""
    sds_ca_pem: bytes = b""
    """PEM of the SDS server's certificate (or of the CA that signed it): Envoy's
    `ssl_credentials.root_certs` for the SDS channel. Required with mTLS, like `sds_target`."""

    @property
    def sds_configured(self) -> bool:
        return bool(self.sds_target and self.sds_ca_pem)
