"""What the SDS server serves a dataplane, and when it issues a new identity.

Per connected dataplane (all its SDS streams share it) one `ProxyIdentity` holds a secrets
`Snapshot` of two Envoy v3 Secrets:

* `mesh_ca`: a validation context trusting the mesh CA's root certificates;
* `identity_cert`: the dataplane's certificate (SPIFFE URI SAN per service) and key.

`regeneration_reason` decides when a new certificate is due: none yet, the dataplane's services
changed, the mesh's CA changed (another backend, other root certificates, or another
`dpCert.rotation.expiration`), or 4/5 of the certificate's lifetime has passed.

Every issue is recorded in the dataplane's DataplaneInsight (`record_certificate`):
`mTLS.certificateExpirationTime`, `mTLS.lastCertificateRegeneration` and
`mTLS.certificateRegenerations++`, re-reading on conflicts and leaving the ADS subscriptions
(written by kuma/xds/insights.py into the same resource) untouched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import structlog
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import common_pb2, secret_pb2

from kuma.ca.pki import KeyPair
from kuma.errors import (
    KumaError,
    MeshNotFoundError,
    ResourceAlreadyExistsError,
    ResourceConflictError,
    ResourceNotFoundError,
)
from kuma.model import registry
from kuma.model.resource import Resource, ResourceMeta
from kuma.pb.kuma.mesh.v1alpha1 import DataplaneInsight, DataplaneInsightMtls
from kuma.xds.core import SECRET, ProxyId, Snapshot, XdsResource

if TYPE_CHECKING:
    from kuma.manager.manager import ResourceManager

__all__ = [
    "IDENTITY_CERT",
    "MESH_CA",
    "CaFingerprint",
    "MtlsDisabledError",
    "NoServicesError",
    "ProxyIdentity",
    "identity_cert_secret",
    "mesh_ca_secret",
    "record_certificate",
]

MESH_CA = "mesh_ca"
IDENTITY_CERT = "identity_cert"

log = structlog.get_logger("kuma.sds")

_MAX_ATTEMPTS = 5

# upb message classes (untyped for mypy: xds-protos ships no stubs)
_Secret: Any = secret_pb2.Secret
_TlsCertificate: Any = common_pb2.TlsCertificate
_ValidationContext: Any = common_pb2.CertificateValidationContext
_DataSource: Any = base_pb2.DataSource


class MtlsDisabledError(KumaError):
    """The dataplane's mesh has no enabled mTLS backend: there is no identity to serve."""

    def __init__(self, mesh: str) -> None:
        self.mesh = mesh
        super().__init__(
            f'mTLS is not enabled in mesh "{mesh}": set mtls.enabledBackend on the Mesh to '
            "give its dataplanes certificates"
        )


class NoServicesError(KumaError):
    """The dataplane has no `kuma.io/service` tag, so nothing to put in a certificate."""

    def __init__(self) -> None:
        super().__init__("Dataplane has no services associated with it")


def identity_cert_secret(pair: KeyPair) -> XdsResource:
    """Secret `identity_cert`: the certificate chain and private key, inline."""
    msg = _Secret(
        name=IDENTITY_CERT,
        tls_certificate=_TlsCertificate(
            certificate_chain=_DataSource(inline_bytes=pair.cert_pem),
            private_key=_DataSource(inline_bytes=pair.key_pem),
        ),
    )
    return XdsResource(IDENTITY_CERT, SECRET, msg, origin="sds")


def mesh_ca_secret(roots: Sequence[bytes]) -> XdsResource:
    """Secret `mesh_ca`: a validation context trusting `roots` (PEM, joined by newlines)."""
    msg = _Secret(
        name=MESH_CA,
        validation_context=_ValidationContext(
            trusted_ca=_DataSource(inline_bytes=b"\n".join(roots))
        ),
    )
    return XdsResource(MESH_CA, SECRET, msg, origin="sds")


@dataclass(frozen=True, slots=True)
class CaFingerprint:
    """What identifies the CA a certificate was issued by, and how it was issued."""

    backend: str
    type: str
    roots: str
    """Hash of the root certificates."""
    rotation: str
    """`dpCert.rotation.expiration` as written ("" for the default)."""

    @classmethod
    def of(cls, backend: Any, roots: Sequence[bytes]) -> CaFingerprint:
        h = hashlib.blake2b(digest_size=16)
        for root in roots:
            h.update(root)
            h.update(b"\0")
        rotation = ""
        if backend.dp_cert is not None and backend.dp_cert.rotation is not None:
            rotation = backend.dp_cert.rotation.expiration
        return cls(backend.name, backend.type, h.hexdigest(), rotation)


class ProxyIdentity:
    """The secrets of one dataplane, shared by its SDS streams.

    Readers wait for `generation` to move past what they saw (`wait_changed`) and then read
    `snapshot`. Only the SDS server writes (`publish`), under `lock`.
    """

    def __init__(self, proxy_id: ProxyId) -> None:
        self.proxy_id = proxy_id
        self.refs = 0
        self.lock = anyio.Lock()
        self.snapshot: Snapshot | None = None
        self.generation = 0
        self._changed = anyio.Event()
        self.services: tuple[str, ...] = ()
        self.ca: CaFingerprint | None = None
        self.issued_at: dt.datetime | None = None
        self.expires_at: dt.datetime | None = None
        self.rotate_at: dt.datetime | None = None
        self.regenerations = 0
        self.retry_after: dt.datetime | None = None
        """After a failed renewal, periodic checks wait until then (events do not)."""
        self.scheduled = False
        """A background reconcile is queued (so events do not pile them up)."""

    def __repr__(self) -> str:
        return f"<ProxyIdentity {self.proxy_id} gen={self.generation}>"

    def regeneration_reason(
        self, services: Sequence[str], ca: CaFingerprint, now: dt.datetime
    ) -> str | None:
        """Why a new certificate is due now, or None."""
        if self.snapshot is None:
            return "no certificate yet"
        if tuple(services) != self.services:
            return f"services changed from {list(self.services)} to {list(services)}"
        if self.ca != ca:
            old = self.ca
            if old is None or (old.backend, old.type) != (ca.backend, ca.type):
                return f"enabled CA changed to {ca.type}/{ca.backend}"
            if old.roots != ca.roots:
                return "CA root certificates changed"
            return "certificate expiration setting changed"
        if self.rotate_at is not None and now >= self.rotate_at:
            return (
                f"certificate expires at {self.expires_at.isoformat() if self.expires_at else '?'}"
            )
        return None

    def due(self, now: dt.datetime) -> bool:
        """4/5 of the current certificate's lifetime has passed (and no failed renewal is
        waiting for `retry_after`)."""
        if self.retry_after is not None and now < self.retry_after:
            return False
        return self.rotate_at is not None and now >= self.rotate_at

    def publish(
        self,
        snapshot: Snapshot,
        *,
        services: Sequence[str],
        ca: CaFingerprint,
        issued_at: dt.datetime,
        expires_at: dt.datetime,
        validity: dt.timedelta,
    ) -> None:
        """Install a freshly issued identity and wake every stream waiting for one."""
        self.snapshot = snapshot
        self.services = tuple(services)
        self.ca = ca
        self.issued_at = issued_at
        self.expires_at = expires_at
        # Kuma: regenerate after 4/5 of the configured lifetime, counted from issuing
        self.rotate_at = issued_at + validity * 4 / 5
        self.regenerations += 1
        self.retry_after = None
        self.generation += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_changed(self, since: int) -> int:
        """Wait until `generation` exceeds `since`; the new generation."""
        while self.generation <= since:
            await self._changed.wait()
        return self.generation


async def record_certificate(
    manager: ResourceManager,
    proxy_id: ProxyId,
    *,
    regenerated_at: dt.datetime,
    expires_at: dt.datetime,
) -> bool:
    """Count one certificate issue in the dataplane's DataplaneInsight (created when missing).

    Only the `mTLS` fields are touched; a concurrent writer (the ADS insight flusher, another
    control plane) makes this re-read and apply again. False when the Dataplane (or its mesh)
    no longer exists, so there is nothing to record it in.
    """
    rtype = registry.DATAPLANE_INSIGHT
    for _ in range(_MAX_ATTEMPTS):
        try:
            current: Resource | None = await manager.get(rtype, proxy_id.name, proxy_id.mesh)
        except ResourceNotFoundError:
            current = None
        spec: DataplaneInsight = current.spec if current is not None else DataplaneInsight()
        mtls = spec.m_tls or DataplaneInsightMtls()
        mtls.certificate_expiration_time = expires_at
        mtls.last_certificate_regeneration = regenerated_at
        mtls.certificate_regenerations += 1
        spec.m_tls = mtls
        try:
            if current is None:
                meta = ResourceMeta(name=proxy_id.name, mesh=proxy_id.mesh)
                await manager.create(Resource(rtype, meta, spec))
            else:
                await manager.update(current)
        except (ResourceConflictError, ResourceAlreadyExistsError):
            continue  # written meanwhile: read again, count again
        except MeshNotFoundError:
            return False
        except ResourceNotFoundError:
            if current is None:
                return False  # the owning Dataplane is gone
            continue  # the insight was deleted meanwhile
        return True
    raise ResourceConflictError(rtype.name, proxy_id.name, proxy_id.mesh)
