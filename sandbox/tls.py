"""The sandbox's TLS certificates: a local test CA, leaf certificates from it (or a broken chain), and their
installation where the stand-in reads them (`DIR/<server_name>.pem` + `.key`, chosen by SNI).

Test material only: nothing here is meant to protect anything, and the keys are world-readable on purpose.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KeyKind = Literal["ec256", "rsa2048", "rsa1024"]
# no "sha1": cryptography (51) refuses to sign with it ("not supported for signatures")
SignatureKind = Literal["sha256", "sha384", "sha512"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_HASHES: dict[str, hashes.SHA256 | hashes.SHA384 | hashes.SHA512] = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(),
                                                                     "sha512": hashes.SHA512()}


@dataclass(frozen=True)
class CA:
    """A certificate authority: its certificate and key, and the files they are in."""

    cert: x509.Certificate
    key: PrivateKey
    cert_path: Path
    key_path: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key(kind: str) -> PrivateKey:
    if kind == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind in ("rsa2048", "rsa1024"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind[3:]))
    raise ValueError(f"key {kind!r}: choose ec256, rsa2048 or rsa1024")


def _pem_key(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _ca_cert(key: PrivateKey, name: str) -> x509.Certificate:
    now = datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))


def _write(path: Path, data: bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Write `path` atomically: a temporary file beside it (not ending in .pem/.key: the stand-in's reload must not
    pick it up), then renamed over it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    if owner is not None:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


def make_ca(directory: Path, name: str = "Upkeep sandbox CA") -> CA:
    """A new CA (EC P-256, 10 years) in `directory`: `ca.pem` (readable by everyone: clients verify against it)
    and `ca.key` (its owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _ca_cert(key, name)
    _write(directory / "ca.key", _pem_key(key), 0o600)
    _write(directory / "ca.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return CA(cert, key, directory / "ca.pem", directory / "ca.key")


def load_ca(directory: Path) -> CA:
    """The CA `make_ca` wrote in `directory`."""
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{key_path}: not an EC or RSA key")
    return CA(x509.load_pem_x509_certificate(cert_path.read_bytes()), key, cert_path, key_path)


def issue(ca: CA | None, names: list[str], not_before: datetime, not_after: datetime, *, key: KeyKind = "ec256",
          signature: SignatureKind = "sha256", self_signed_issuer_unknown: bool = False) -> tuple[bytes, bytes]:
    """(PEM certificate chain, PEM key) of a server certificate for `names` (SAN DNS names; the subject CN is the
    first), valid from `not_before` to `not_after`, signed by `ca`.

    The chain is the leaf alone: the CA is the trust anchor the client holds. With `ca=None` or
    `self_signed_issuer_unknown`, the leaf is signed by a throwaway CA nobody trusts (a broken chain: "unable to get
    local issuer certificate")."""
    if not names:
        raise ValueError("issue: give at least one DNS name")
    if signature not in _HASHES:
        raise ValueError(f"signature {signature!r}: choose one of {', '.join(_HASHES)} (cryptography cannot sign SHA-1)")
    issuer_key: PrivateKey
    if ca is None or self_signed_issuer_unknown:
        throwaway = ec.generate_private_key(ec.SECP256R1())
        issuer_cert, issuer_key = _ca_cert(throwaway, "Unknown sandbox issuer"), throwaway
    else:
        issuer_cert, issuer_key = ca.cert, ca.key
    leaf_key = _key(key)
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(issuer_cert.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
            .sign(issuer_key, _HASHES[signature]))
    return cert.public_bytes(serialization.Encoding.PEM), _pem_key(leaf_key)


def install(directory: Path, server_name: str, cert_pem: bytes, key_pem: bytes,
            owner: tuple[int, int] | None = None) -> tuple[Path, Path]:
    """Write `<server_name>.pem` and `.key` in `directory` (created, owned by `owner`, if missing), each atomically;
    the stand-in serves them for that SNI name after its next `reload-tls` ("default": for any other name).

    Both files are 0644 and owned by `owner` (uid, gid) when given: the stand-in runs as the stack's user, and a
    renew command over SSH runs as the login user, who must overwrite them. World-readable keys: test keys only."""
    if not server_name or "/" in server_name or server_name.startswith("."):
        raise ValueError(f"server name {server_name!r}: a DNS name (or 'default')")
    if not directory.exists():
        directory.mkdir(parents=True, mode=0o755)
        directory.chmod(0o755)
        if owner is not None:
            os.chown(directory, *owner)
    key_path, cert_path = directory / f"{server_name}.key", directory / f"{server_name}.pem"
    _write(key_path, key_pem, 0o644, owner)  # the key first: a reload between the two finds the old pair or a
    _write(cert_path, cert_pem, 0o644, owner)  # mismatch, which it refuses (and keeps serving the old one)
    return cert_path, key_path
