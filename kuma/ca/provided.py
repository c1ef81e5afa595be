"""The `provided` CA: the user supplies the root certificate and its key.

    type: provided
    conf:
      cert: {secret: my-ca-cert}      # or {file: /path/ca.pem}, or {inline: <base64>}
      key:  {secret: my-ca-key}

Nothing is created (`ensure` does nothing); `validate_backend` loads both data sources and
checks that they form a root CA Envoy can use as its trust anchor: one self-signed
certificate, basic constraint CA, KeyUsage keyCertSign, and none of digitalSignature,
keyAgreement, keyEncipherment (X509-SVID). Secrets are read from the mesh being validated, so
create the Mesh first, then the Secrets, then enable the backend.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509

from kuma.ca.core import CaError, KeyPairCaManager
from kuma.ca.datasource import DataSourceLoader
from kuma.ca.pki import InvalidKeyPairError, KeyPair, load_key_pair
from kuma.errors import ValidationError
from kuma.model.validation import Path, Violations
from kuma.model.validators.common import to_typed
from kuma.model.validators.golang import go_quote
from kuma.pb.kuma.mesh import v1alpha1 as mesh_pb
from kuma.pb.kuma.system import v1alpha1 as system_pb

__all__ = ["ProvidedCaManager", "validate_ca_cert"]

_SVID_APPENDIX = "(see X509-SVID: Appendix A. X.509 Field Reference)"


def validate_ca_cert(pair: KeyPair) -> list[str]:
    """What is wrong with `pair` as a mesh root CA (Kuma's messages, all about `cert`)."""
    try:
        _, cert = load_key_pair(pair)
    except InvalidKeyPairError as e:
        return [f"not a valid TLS key pair: {e}"]
    if pair.cert_pem.count(b"-----BEGIN CERTIFICATE-----") != 1:
        return ["certificate must be a root CA (certificate chains are not allowed)"]
    problems = []
    if cert.issuer.rfc4514_string() != cert.subject.rfc4514_string():
        problems.append("certificate must be self-signed (intermediate CAs are not allowed)")
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        problems.append(
            "basic constraint 'CA' must be set to 'true' (see X509-SVID: 4.1. Basic Constraints)"
        )
    try:
        usage: x509.KeyUsage | None = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.key_cert_sign:
        problems.append(
            "key usage extension 'keyCertSign' must be set (see X509-SVID: 4.3. Key Usage)"
        )
    if usage is not None:
        for flag, name in (
            (usage.digital_signature, "digitalSignature"),
            (usage.key_agreement, "keyAgreement"),
            (usage.key_encipherment, "keyEncipherment"),
        ):
            if flag:
                problems.append(f"key usage extension '{name}' must NOT be set {_SVID_APPENDIX}")
    return problems


def _validate_source(errs: Violations, path: Path, source: system_pb.DataSource) -> None:
    if source.secret is None and source.file is None and source.inline is None:
        errs.add(path, "data source has to be chosen. Available sources: secret, file, inline")
    elif source.secret is not None and not source.secret:
        errs.add(path.field("secret"), "cannot be empty")
    elif source.inline is not None and not source.inline:
        errs.add(path.field("inline"), "cannot be empty")
    elif source.file is not None and not source.file:
        errs.add(path.field("file"), "cannot be empty")


class ProvidedCaManager(KeyPairCaManager):
    """CaManager of `provided` backends."""

    def __init__(self, loader: DataSourceLoader) -> None:
        self._loader = loader

    @staticmethod
    def _config(
        backend: mesh_pb.CertificateAuthorityBackend, errs: Violations
    ) -> tuple[system_pb.DataSource | None, system_pb.DataSource | None] | None:
        data: dict[str, Any] = backend.conf.to_dict() if backend.conf is not None else {}
        sources: list[system_pb.DataSource | None] = []
        failed = False
        for name in ("cert", "key"):
            raw = data.get(name)
            if raw is None:
                sources.append(None)
                continue
            decoded = to_typed(
                system_pb.DataSource,
                raw,
                Path(name),
                errs,
                prefix="could not convert backend config: ",
            )
            failed = failed or decoded is None
            sources.append(decoded)
        return None if failed else (sources[0], sources[1])

    async def validate_backend(
        self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend
    ) -> None:
        errs = Violations()
        config = self._config(backend, errs)
        if config is None:
            errs.raise_if_any()
            return
        cert, key = config
        for name, source in (("cert", cert), ("key", key)):
            if source is None:
                errs.add(name, "has to be defined")
            else:
                _validate_source(errs, Path(name), source)
        if errs:
            raise ValidationError(errs.items)
        try:
            pair = await self._load_sources(mesh, cert, key)
        except CaError as e:
            errs.add("cert", str(e))
            errs.add("key", str(e))
        else:
            for problem in validate_ca_cert(pair):
                errs.add("cert", problem)
        errs.raise_if_any()

    async def _load_sources(
        self, mesh: str, cert: system_pb.DataSource | None, key: system_pb.DataSource | None
    ) -> KeyPair:
        if cert is None or key is None:
            raise CaError("cert and key have to be defined")
        key_pem = await self._loader.load(mesh, key)
        cert_pem = await self._loader.load(mesh, cert)
        return KeyPair(cert_pem, key_pem)

    async def _load(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> KeyPair:
        errs = Violations()
        config = self._config(backend, errs)
        try:
            if config is None:
                raise CaError(
                    "could not convert backend config to ProvidedCertificateAuthorityConfig"
                )
            return await self._load_sources(mesh, *config)
        except CaError as e:
            raise CaError(
                f"failed to load CA key pair for Mesh {go_quote(mesh)} and backend "
                f"{go_quote(backend.name)}: {e}"
            ) from None

    async def ensure(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> None:
        return  # the user created the CA; validate_backend checked it

    def used_secrets(self, mesh: str, backend: mesh_pb.CertificateAuthorityBackend) -> list[str]:
        config = self._config(backend, Violations())
        if config is None:
            return []
        return [s.secret for s in config if s is not None and s.secret]
