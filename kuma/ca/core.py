"""The CA manager contract (Kuma's `core_ca.Manager`) and helpers shared by its implementations.

One `CaManager` per backend type (`builtin`, `provided`); the same instance serves every mesh
and backend of its type. Meshes name their CAs in `mtls.backends`, and `mtls.enabledBackend`
picks the one in force.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from kuma.ca.pki import DEFAULT_WORKLOAD_VALIDITY, InvalidKeyPairError, KeyPair, issue_workload_cert
from kuma.errors import KumaError
from kuma.model.selectors import SERVICE_TAG, dataplane_tags
from kuma.model.validators.golang import go_quote
from kuma.model.validators.mesh import parse_kuma_duration
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb

__all__ = [
    "CaError",
    "CaManager",
    "CaManagers",
    "KeyPairCaManager",
    "dataplane_services",
    "dp_cert_validity",
    "enabled_backend",
]


class CaError(KumaError):
    """A CA could not be created, loaded or used (the message says which and why)."""


class CaManager(ABC):
    """Creates, checks and uses the CAs of one backend type.

    `validate_backend` raises `kuma.errors.ValidationError` whose violation fields are relative
    to the backend's `conf` (`cert`, `key.secret`, `caCert.RSAbits`; "" for the conf itself);
    the mesh-level caller prefixes them with `mtls.backends[<i>].config`. The other methods
    raise `CaError` when the CA cannot be created or loaded.
    """

    @abstractmethod
    async def validate_backend(
        self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend
    ) -> None:
        """Check that the backend's configuration is usable (a provided CA is loaded)."""

    @abstractmethod
    async def ensure(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> None:
        """Make the CA available, creating it when this type creates CAs (idempotent)."""

    @abstractmethod
    def used_secrets(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> list[str]:
        """Names of the mesh Secrets the CA is kept in or loaded from."""

    @abstractmethod
    async def get_root_certs(
        self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend
    ) -> list[bytes]:
        """The CA's root certificates (PEM), which dataplanes trust."""

    @abstractmethod
    async def generate_dataplane_cert(
        self,
        mesh: str,
        backend: mesh_pb.CertificateAuthorityBackend,
        services: Sequence[str],
        *,
        now: dt.datetime | None = None,
    ) -> KeyPair:
        """An identity certificate for a dataplane of `services` (SPIFFE URI SANs), valid for
        `dp_cert_validity(backend)` from `now`."""


class KeyPairCaManager(CaManager):
    """A CA kept as one certificate and key (builtin, provided): subclasses say how to load it,
    roots and dataplane certificates follow from it."""

    @abstractmethod
    async def _load(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> KeyPair:
        """The CA's certificate and key; CaError when they cannot be read."""

    async def get_root_certs(
        self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend
    ) -> list[bytes]:
        return [(await self._load(mesh, backend)).cert_pem]

    async def generate_dataplane_cert(
        self,
        mesh: str,
        backend: mesh_pb.CertificateAuthorityBackend,
        services: Sequence[str],
        *,
        now: dt.datetime | None = None,
    ) -> KeyPair:
        ca = await self._load(mesh, backend)
        validity = dp_cert_validity(backend)
        try:
            # RSA key generation releases the GIL: certificates for many dataplanes in parallel
            return await anyio.to_thread.run_sync(
                lambda: issue_workload_cert(ca, mesh, services, validity=validity, now=now)
            )
        except (InvalidKeyPairError, ValueError) as e:
            names = "[" + " ".join(go_quote(s) for s in services) + "]"
            raise CaError(
                f"failed to generate a Workload Identity cert for services {names} in Mesh "
                f"{go_quote(mesh)} using backend {go_quote(backend.name)}: {e}"
            ) from None


CaManagers = Mapping[str, CaManager]
"""CA managers by backend type (`builtin`, `provided`)."""


def enabled_backend(mesh: Any) -> mesh_pb.CertificateAuthorityBackend | None:
    """The mTLS backend in force for a Mesh spec, or None when mTLS is off."""
    mtls = mesh.mtls
    if mtls is None or not mtls.enabled_backend:
        return None
    for backend in mtls.backends:
        if backend.name == mtls.enabled_backend:
            return backend
    return None


def dp_cert_validity(backend: mesh_pb.CertificateAuthorityBackend) -> dt.timedelta:
    """`dpCert.rotation.expiration` of the backend (24 h when unset).

    Raises CaError for a value Kuma's duration syntax does not accept (the Mesh validator
    refuses those, so a stored Mesh never has one).
    """
    text = ""
    if backend.dp_cert is not None and backend.dp_cert.rotation is not None:
        text = backend.dp_cert.rotation.expiration
    if not text:
        return DEFAULT_WORKLOAD_VALIDITY
    try:
        return dt.timedelta(milliseconds=parse_kuma_duration(text))
    except ValueError as e:
        raise CaError(str(e)) from None


def dataplane_services(dataplane: Any) -> list[str]:
    """Every distinct `kuma.io/service` of a Dataplane spec's inbounds and gateway, sorted."""
    return dataplane_tags(dataplane).get(SERVICE_TAG, [])
