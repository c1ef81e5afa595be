"""X.509 building blocks of kuma-py's certificate authorities (all through `cryptography`).

* `new_root_ca`: a mesh's builtin CA (self-signed, `spiffe://<mesh>`, `O=Kuma, OU=Mesh, CN=<mesh>`,
  KeyUsage certSign + cRLSign).
* `issue_workload_cert`: a dataplane identity signed by a mesh CA (empty subject, one URI SAN
  `spiffe://<mesh>/<service>` per service, serverAuth + clientAuth).
* `new_self_signed_cert`: the TLS certificate of a server (SDS) or a client/server pair for
  `kumactl generate tls-certificate` (Kuma's pkg/tls).
* `load_key_pair`: a PEM certificate + key, checked to belong together (Go's tls.X509KeyPair,
  with its error messages).

Private keys are PEM "RSA PRIVATE KEY" (PKCS#1) like Kuma writes them; every function that
generates an RSA key is CPU-bound for tens of milliseconds: call it in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    PrivateKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "DEFAULT_ALLOWED_CLOCK_SKEW",
    "DEFAULT_CA_VALIDITY",
    "DEFAULT_RSA_BITS",
    "DEFAULT_SELF_SIGNED_VALIDITY",
    "DEFAULT_WORKLOAD_VALIDITY",
    "CertType",
    "InvalidKeyPairError",
    "KeyPair",
    "issue_workload_cert",
    "load_key_pair",
    "new_root_ca",
    "new_self_signed_cert",
    "pem_certificates",
    "spiffe_id",
]

DEFAULT_RSA_BITS = 2048
DEFAULT_ALLOWED_CLOCK_SKEW = dt.timedelta(seconds=10)
DEFAULT_CA_VALIDITY = dt.timedelta(days=10 * 365)
DEFAULT_WORKLOAD_VALIDITY = dt.timedelta(hours=24)
DEFAULT_SELF_SIGNED_VALIDITY = dt.timedelta(days=10 * 365)

CertType = Literal["client", "server"]


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM certificate (possibly a chain) and its PEM private key."""

    cert_pem: bytes
    key_pem: bytes


class InvalidKeyPairError(ValueError):
    """A certificate/key pair that cannot be used; the message follows Go's crypto/tls."""


def spiffe_id(mesh: str, service: str | None = None) -> str:
    """`spiffe://<mesh>` (the CA) or `spiffe://<mesh>/<service>` (a workload)."""
    return f"spiffe://{mesh}" if service is None else f"spiffe://{mesh}/{service}"


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256 | None:
    # Ed25519/Ed448 sign without a separate digest
    if isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
        return None
    return hashes.SHA256()


def new_root_ca(
    mesh: str,
    *,
    rsa_bits: int = 0,
    validity: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A mesh's builtin root CA (Kuma's `newRootCa`): `rsa_bits` 0 means 2048, `validity` None
    means 10 years from `now`; NotBefore is `now` minus 10 s of allowed clock skew."""
    now = now or _utcnow()
    key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits or DEFAULT_RSA_BITS)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kuma"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Mesh"),
            x509.NameAttribute(NameOID.COMMON_NAME, mesh),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DEFAULT_ALLOWED_CLOCK_SKEW)
        .not_valid_after(now + (validity if validity is not None else DEFAULT_CA_VALIDITY))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id(mesh))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return KeyPair(_cert_pem(cert), _key_pem(key))


def issue_workload_cert(
    ca: KeyPair,
    mesh: str,
    services: Sequence[str],
    *,
    validity: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A dataplane identity signed by `ca` (Kuma's `NewWorkloadCert`).

    RSA-2048, subject left empty (so the SAN extension is critical), one URI SAN
    `spiffe://<mesh>/<service>` per service in the given order, NotBefore `now` - 10 s,
    NotAfter `now` + `validity` (24 h by default), KeyUsage digitalSignature + keyEncipherment
    + keyAgreement, ExtKeyUsage serverAuth + clientAuth, not a CA.
    Raises InvalidKeyPairError when `ca` cannot be used.
    """
    if not services:
        raise ValueError("a workload certificate needs at least one service")
    now = now or _utcnow()
    ca_key, ca_cert = load_key_pair(ca)
    key = rsa.generate_private_key(public_exponent=65537, key_size=DEFAULT_RSA_BITS)
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    except x509.ExtensionNotFound:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DEFAULT_ALLOWED_CLOCK_SKEW)
        .not_valid_after(now + (validity if validity is not None else DEFAULT_WORKLOAD_VALIDITY))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(spiffe_id(mesh, s)) for s in services]
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(aki, critical=False)
        .sign(ca_key, _hash_for(ca_key))
    )
    return KeyPair(_cert_pem(cert), _key_pem(key))


def new_self_signed_cert(
    common_name: str,
    cert_type: CertType,
    hosts: Sequence[str] = (),
    *,
    validity: dt.timedelta = DEFAULT_SELF_SIGNED_VALIDITY,
    now: dt.datetime | None = None,
) -> KeyPair:
    """A self-signed certificate that is its own trust root (Kuma's `NewSelfSignedCert`).

    CN `common_name`, valid 10 years, a CA (so clients can trust it directly), KeyUsage
    keyEncipherment + digitalSignature + certSign, ExtKeyUsage serverAuth (+ clientAuth for
    "client"); each host becomes an IP SAN when it parses as an IP address, else a DNS SAN.
    """
    if cert_type not in ("client", "server"):
        raise ValueError(
            f'invalid type of CertType: "{cert_type}". Expected either "server" or "client"'
        )
    now = now or _utcnow()
    key = rsa.generate_private_key(public_exponent=65537, key_size=DEFAULT_RSA_BITS)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    if cert_type == "client":
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    names: list[x509.GeneralName] = []
    seen: set[str] = set()
    for host in hosts:
        if not host or host in seen:
            continue
        seen.add(host)
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return KeyPair(_cert_pem(cert), _key_pem(key))


# -- reading ------------------------------------------------------------------------------------

_PEM_BEGIN = b"-----BEGIN "


def _pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """(type, whole block) of every PEM block in `data`, in order."""
    blocks: list[tuple[str, bytes]] = []
    rest = data
    while True:
        start = rest.find(_PEM_BEGIN)
        if start < 0:
            return blocks
        line_end = rest.find(b"-----", start + len(_PEM_BEGIN))
        if line_end < 0:
            return blocks
        label = rest[start + len(_PEM_BEGIN) : line_end]
        end_marker = b"-----END " + label + b"-----"
        end = rest.find(end_marker, line_end)
        if end < 0:
            return blocks
        stop = end + len(end_marker)
        blocks.append((label.decode("ascii", "replace"), rest[start:stop] + b"\n"))
        rest = rest[stop:]


def pem_certificates(data: bytes) -> list[x509.Certificate]:
    """Every CERTIFICATE block of `data`, parsed (ValueError on a malformed one)."""
    return [
        x509.load_pem_x509_certificate(block)
        for label, block in _pem_blocks(data)
        if label == "CERTIFICATE"
    ]


def _skipped(kind: str, labels: list[str], what: str) -> InvalidKeyPairError:
    if not labels:
        return InvalidKeyPairError(f"tls: failed to find any PEM data in {what} input")
    return InvalidKeyPairError(
        f'tls: failed to find "{kind}" PEM block in {what} input after skipping PEM blocks '
        f"of the following types: [{' '.join(labels)}]"
    )


def load_key_pair(
    pair: KeyPair,
) -> tuple[CertificateIssuerPrivateKeyTypes, x509.Certificate]:
    """The private key and the first (leaf) certificate of `pair`, checked to match.

    Raises InvalidKeyPairError with Go's crypto/tls wording (`tls: failed to find any PEM
    data in certificate input`, `tls: private key does not match public key`, ...).
    """
    blocks = _pem_blocks(pair.cert_pem)
    certs = [b for label, b in blocks if label == "CERTIFICATE"]
    if not certs:
        raise _skipped("CERTIFICATE", [label for label, _ in blocks], "certificate")
    key_blocks = _pem_blocks(pair.key_pem)
    key_block = next(
        (b for label, b in key_blocks if label == "PRIVATE KEY" or label.endswith(" PRIVATE KEY")),
        None,
    )
    if key_block is None:
        raise _skipped("PRIVATE KEY", [label for label, _ in key_blocks], "key")
    try:
        cert = x509.load_pem_x509_certificate(certs[0])
    except ValueError:
        raise InvalidKeyPairError("x509: malformed certificate") from None
    try:
        key: PrivateKeyTypes = serialization.load_pem_private_key(key_block, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InvalidKeyPairError("tls: failed to parse private key") from None
    if not isinstance(
        key,
        rsa.RSAPrivateKey
        | ec.EllipticCurvePrivateKey
        | ed25519.Ed25519PrivateKey
        | ed448.Ed448PrivateKey,
    ):
        raise InvalidKeyPairError("tls: unknown private key type")
    public = cert.public_key()
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    mine = key.public_key().public_bytes(serialization.Encoding.DER, fmt)
    theirs = public.public_bytes(serialization.Encoding.DER, fmt)
    if mine != theirs:
        if type(key.public_key()) is not type(public):
            raise InvalidKeyPairError("tls: private key type does not match public key type")
        raise InvalidKeyPairError("tls: private key does not match public key")
    return key, cert
