"""Certificates judged as served over real TLS on loopback (certificates made here, a CA of the test's own):
lifetime-aware renewal, name, chain, key."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from upkeep.security.certs import facts_of, fetch_chain, judge, name_matches, renewal_due

NOW = datetime.now(UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str = "Upkeep Test CA") -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=3650)).add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    return key, cert


def leaf(ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], names: list[str], start: datetime,
         end: datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(names[0])).issuer_name(ca[1].subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
            .sign(ca[0], hashes.SHA256()))
    return key, cert


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key, cert = make_ca()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """serve(key, cert) → port of a TLS server on 127.0.0.1 presenting that certificate (until the test ends)."""
    servers: list[socket.socket] = []

    def start(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> int:
        pem = tmp_path / f"{cert.serial_number}.pem"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pem)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        servers.append(sock)

        def loop() -> None:
            while True:
                try:
                    conn, _ = sock.accept()
                except OSError:
                    return
                try:
                    with ctx.wrap_socket(conn, server_side=True) as tls:
                        tls.recv(1)
                except (OSError, ssl.SSLError):
                    pass

        threading.Thread(target=loop, daemon=True).start()
        return int(sock.getsockname()[1])

    yield start
    for s in servers:
        s.close()


def test_lifetime_aware_renewal() -> None:
    ca_key = make_ca()
    _k, ninety = leaf(ca_key, ["a.test"], NOW - timedelta(days=80), NOW + timedelta(days=10))  # 10 of 90 days left
    _k, six = leaf(ca_key, ["a.test"], NOW - timedelta(days=3), NOW + timedelta(days=3))  # 3 of 6 days left
    _k, six_late = leaf(ca_key, ["a.test"], NOW - timedelta(days=5), NOW + timedelta(days=1))
    def der(c: x509.Certificate) -> bytes:
        return c.public_bytes(serialization.Encoding.DER)

    assert renewal_due(facts_of(der(ninety), True), NOW)[0]  # under 30 days
    due, why = renewal_due(facts_of(der(six), True), NOW)
    assert not due and "a third of its 6-day lifetime" in why  # certbot's 30 days would renew it on every run
    assert renewal_due(facts_of(der(six_late), True), NOW)[0]  # under 2 days


def test_served_certificates_are_judged(ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path],
                                        serve: Callable[..., int]) -> None:
    good = serve(*leaf((ca[0], ca[1]), ["api.em.test"], NOW - timedelta(days=1), NOW + timedelta(days=89)))
    verdict = judge(fetch_chain("127.0.0.1", good, "api.em.test", cafile=str(ca[2])), "api.em.test", NOW)
    assert verdict.ok and not verdict.renew and "EC secp256r1" in verdict.detail
    soon = serve(*leaf((ca[0], ca[1]), ["api.em.test"], NOW - timedelta(days=80), NOW + timedelta(days=10)))
    verdict = judge(fetch_chain("127.0.0.1", soon, "api.em.test", cafile=str(ca[2])), "api.em.test", NOW)
    assert not verdict.ok and verdict.renew and verdict.problems == ("renewal due",)
    wrong = judge(fetch_chain("127.0.0.1", good, "admin.em.test", cafile=str(ca[2])), "admin.em.test", NOW)
    assert wrong.problems == ("not valid for admin.em.test (names: api.em.test)",)
    other_ca = make_ca("Someone Else")
    broken = serve(*leaf(other_ca, ["api.em.test"], NOW - timedelta(days=1), NOW + timedelta(days=89)))
    verdict = judge(fetch_chain("127.0.0.1", broken, "api.em.test", cafile=str(ca[2])), "api.em.test", NOW)
    assert len(verdict.problems) == 1 and verdict.problems[0].startswith("chain does not verify")


def test_wildcards_cover_one_label() -> None:
    assert name_matches(["*.em.test"], "api.em.test") and not name_matches(["*.em.test"], "a.b.em.test")
    assert not name_matches(["*.em.test"], "em.test") and name_matches(["API.em.test."], "api.em.test")
