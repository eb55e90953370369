"""TLS certificates: what an endpoint serves (or a file holds), judged; lifetime-aware renewal (pure but
for `fetch_chain`, which opens one TLS connection).

Renewal is due when the time left is under min(30 days, a third of the certificate's lifetime): certbot's
fixed 30 days loops forever on a 6-day certificate (certbot#9971), and Let's Encrypt advises renewing at two
thirds of the lifetime. A certificate is judged on: expiry, the name asked for (SAN), the chain (verified
against the system's or a given CA bundle), the key (RSA under 2048 bits, EC under 256) and the signature
hash (SHA-1, MD5).
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtensionOID

RENEW_CAP = timedelta(days=30)


@dataclass(frozen=True)
class CertFacts:
    """What a served (or stored) certificate says about itself, and whether its chain verified."""

    subject: str
    names: tuple[str, ...]  # DNS SANs
    not_before: datetime
    not_after: datetime
    key: str  # "RSA 2048", "EC secp256r1"
    key_ok: bool
    signature_hash: str
    fingerprint: str  # SHA-256 of the DER: "the served certificate changed"
    chain_ok: bool
    chain_error: str = ""

    @property
    def lifetime(self) -> timedelta:
        return self.not_after - self.not_before


def renewal_due(facts: CertFacts, now: datetime) -> tuple[bool, str]:
    """(due, why): due when the time left is under min(30 days, a third of the lifetime)."""
    left, threshold = facts.not_after - now, min(RENEW_CAP, facts.lifetime / 3)
    days = left.total_seconds() / 86400
    if left <= timedelta(0):
        return True, f"expired {-days:.1f} days ago"
    rule = f"renew under {threshold.total_seconds() / 86400:.1f} days left (min(30 days, a third of its " \
           f"{facts.lifetime.total_seconds() / 86400:.0f}-day lifetime))"
    return left < threshold, f"{days:.1f} days left; {rule}"


def name_matches(names: Sequence[str], hostname: str) -> bool:
    """RFC 6125: an exact name, or a wildcard covering exactly one left-most label."""
    host = hostname.lower().rstrip(".")
    for n in (n.lower().rstrip(".") for n in names):
        if n == host or (n.startswith("*.") and "." in host and host.split(".", 1)[1] == n[2:]):
            return True
    return False


def facts_of(der: bytes, chain_ok: bool, chain_error: str = "") -> CertFacts:
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        names = tuple(san.get_values_for_type(x509.DNSName))  # type: ignore[attr-defined]
    except x509.ExtensionNotFound:
        names = ()
    pub = cert.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        key, key_ok = f"RSA {pub.key_size}", pub.key_size >= 2048
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        key, key_ok = f"EC {pub.curve.name}", pub.curve.key_size >= 256
    else:
        key, key_ok = type(pub).__name__, True
    algo = cert.signature_hash_algorithm
    return CertFacts(cert.subject.rfc4514_string(), names, cert.not_valid_before_utc, cert.not_valid_after_utc, key, key_ok,
                     algo.name if algo else "none", cert.fingerprint(hashes.SHA256()).hex(), chain_ok, chain_error)


@lru_cache(maxsize=32)
def _verifying_context(cafile: str | None, _mtime: int) -> ssl.SSLContext:
    """One verifying context per CA bundle (and its version on disk): loading the system's bundle took ~20 ms, most
    of a check's time (benchmarks/README.md); contexts are safe to share between threads."""
    verify = ssl.create_default_context(cafile=cafile)
    verify.check_hostname = False
    return verify


def fetch_chain(address: str, port: int, server_name: str, cafile: str | None = None, timeout: float = 5.0) -> CertFacts:
    """Connect, read the served certificate, and verify its chain (not the name: judged separately) against
    `cafile` or the system's store. An unverifiable chain still yields the certificate's facts."""
    verify = _verifying_context(cafile, os.stat(cafile).st_mtime_ns if cafile else 0)
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock, \
                verify.wrap_socket(sock, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return facts_of(der, True)
    except ssl.SSLCertVerificationError as exc:
        error = exc.verify_message or str(exc)
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname, bare.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((address, port), timeout=timeout) as sock, \
            bare.wrap_socket(sock, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return facts_of(der, False, error)


@dataclass(frozen=True)
class CertVerdict:
    ok: bool
    renew: bool
    problems: tuple[str, ...]
    detail: str


def judge(facts: CertFacts, hostname: str, now: datetime) -> CertVerdict:
    """Everything wrong with a certificate for `hostname` at `now`, and whether to renew it."""
    due, why = renewal_due(facts, now)
    problems = []
    if facts.not_after <= now:
        problems.append("expired")
    elif due:
        problems.append("renewal due")
    if not name_matches(facts.names, hostname):
        problems.append(f"not valid for {hostname} (names: {', '.join(facts.names) or 'none'})")
    if not facts.chain_ok:
        problems.append(f"chain does not verify ({facts.chain_error})")
    if not facts.key_ok:
        problems.append(f"weak key ({facts.key})")
    if facts.signature_hash in ("sha1", "md5"):
        problems.append(f"weak signature ({facts.signature_hash})")
    detail = f"{facts.subject}; expires {facts.not_after:%Y-%m-%d %H:%M} UTC ({why}); {facts.key}, {facts.signature_hash}"
    return CertVerdict(not problems, due, tuple(problems), detail)
