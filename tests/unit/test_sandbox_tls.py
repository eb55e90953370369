"""The stand-in's HTTPS: the certificate chosen by SNI from its TLS directory, verified against the sandbox's test
CA, re-read on `reload-tls` (all or nothing: a broken file keeps the old certificates and the answer names it).

The stand-in runs as a real subprocess on loopback ports; certificates come from `sandbox.tls`.
"""

from __future__ import annotations

import json
import select
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from sandbox.procs import free_port
from sandbox.tls import CA, install, issue, make_ca

REPO = Path(__file__).resolve().parents[2]
CTL = REPO / "sandbox" / "standinctl.py"
NOW = datetime.now(UTC)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def served(port: int, server_name: str, cafile: Path) -> x509.Certificate:
    """The certificate the stand-in presents for `server_name`; the handshake verifies it against `cafile`."""
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.check_hostname = False  # the SNI name is the point here; names are checked by the caller
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock, \
            ctx.wrap_socket(sock, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def names_of(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(n) for n in san.get_values_for_type(x509.DNSName)]


def ctl(url: str, action: str) -> subprocess.CompletedProcess[str]:
    """standinctl.py as the inventory runs it on a host (with this interpreter: it is stdlib only)."""
    return subprocess.run([sys.executable, str(CTL), url, action], capture_output=True, text=True, timeout=10)


@pytest.fixture
def ca(tmp_path: Path) -> CA:
    return make_ca(tmp_path / "ca")


@pytest.fixture
def tls_dir(tmp_path: Path, ca: CA) -> Path:
    """default (names default.test), a.test and b.test, each its own certificate from the CA."""
    directory = tmp_path / "tls"
    for file, name in {"default": "default.test", "a.test": "a.test", "b.test": "b.test"}.items():
        install(directory, file, *issue(ca, [name], NOW - timedelta(hours=1), NOW + timedelta(days=90)))
    return directory


@pytest.fixture
def standin(tmp_path: Path, tls_dir: Path) -> Iterator[tuple[str, int, subprocess.Popen[str]]]:
    """(control URL, TLS port, process) of a stand-in serving `tls_dir`; terminated by PID at the end."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.standin", "--host", "127.0.0.1", "--port", "0",
                             "--tls-port", str(port), "--tls-dir", str(tls_dir), "--log-file", str(tmp_path / "api.log")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 15)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("READY http://127.0.0.1:"):
        proc.kill()
        pytest.fail(f"the stand-in did not start: {line!r} {proc.communicate(timeout=5)[1]}")
    yield line.removeprefix("READY "), port, proc
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    finally:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()


def test_the_certificate_is_chosen_by_sni_and_verifies_against_the_ca(standin: tuple[str, int, subprocess.Popen[str]],
                                                                      ca: CA) -> None:
    _, port, _ = standin
    assert names_of(served(port, "a.test", ca.cert_path)) == ["a.test"]
    assert names_of(served(port, "b.test", ca.cert_path)) == ["b.test"]
    assert names_of(served(port, "unknown.test", ca.cert_path)) == ["default.test"]
    assert served(port, "a.test", ca.cert_path).issuer == ca.cert.subject


def test_the_same_routes_answer_over_https(standin: tuple[str, int, subprocess.Popen[str]], ca: CA) -> None:
    url, port, _ = standin
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.check_hostname = False
    with urllib.request.urlopen(f"https://127.0.0.1:{port}/health", context=ctx, timeout=3) as resp:  # noqa: S310
        body = json.loads(resp.read())
        assert resp.status == 200 and (body["status"], body["service"]) == ("ok", "api")
    with _OPENER.open(f"{url}/health", timeout=3) as resp:  # the plain port still serves
        assert resp.status == 200


def test_reload_tls_serves_the_renewed_certificate(standin: tuple[str, int, subprocess.Popen[str]], ca: CA,
                                                   tls_dir: Path) -> None:
    url, port, _ = standin
    before = served(port, "a.test", ca.cert_path)
    install(tls_dir, "a.test", *issue(ca, ["a.test", "www.a.test"], NOW, NOW + timedelta(days=30)))
    assert served(port, "a.test", ca.cert_path) == before  # not until told to
    done = ctl(url, "reload-tls")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["tls_reloads"] == 1 and answer["tls_names"] == ["a.test", "b.test", "default"]
    after = served(port, "a.test", ca.cert_path)
    assert names_of(after) == ["a.test", "www.a.test"] and after.serial_number != before.serial_number
    assert names_of(served(port, "b.test", ca.cert_path)) == ["b.test"]


def test_a_broken_file_keeps_the_old_certificates_and_the_answer_names_it(
        standin: tuple[str, int, subprocess.Popen[str]], ca: CA, tls_dir: Path) -> None:
    url, port, proc = standin
    before = served(port, "a.test", ca.cert_path)
    cert, _ = issue(ca, ["a.test"], NOW, NOW + timedelta(days=30))
    (tls_dir / "a.test.pem").write_bytes(cert)  # a renewal half done: the new certificate with the old key
    done = ctl(url, "reload-tls")
    assert done.returncode == 1 and "HTTP 500" in done.stderr
    assert f"{tls_dir / 'a.test.key'}: does not match the certificate in {tls_dir / 'a.test.pem'}" in done.stderr
    (tls_dir / "b.test.pem").write_text("not a certificate")
    (tls_dir / "c.test.pem").write_bytes(cert)  # and no key beside it
    done = ctl(url, "reload-tls")
    assert done.returncode == 1 and f"{tls_dir / 'b.test.pem'}: not a PEM certificate" in done.stderr
    assert f"{tls_dir / 'c.test.key'}: cannot read it (No such file or directory)" in done.stderr
    assert f"{tls_dir / 'a.test.key'}: does not match" in done.stderr  # every broken file named
    assert served(port, "a.test", ca.cert_path) == before  # still the old ones, b.test too
    assert names_of(served(port, "b.test", ca.cert_path)) == ["b.test"]
    assert names_of(served(port, "c.test", ca.cert_path)) == ["default.test"]
    proc.terminate()  # both servers stop cleanly on SIGTERM
    assert proc.wait(timeout=10) == 0


def test_a_broken_chain_and_a_weak_key_are_served(standin: tuple[str, int, subprocess.Popen[str]], ca: CA,
                                                  tls_dir: Path) -> None:
    url, port, _ = standin
    install(tls_dir, "broken.test", *issue(None, ["broken.test"], NOW, NOW + timedelta(days=30)))
    install(tls_dir, "weak.test", *issue(ca, ["weak.test"], NOW, NOW + timedelta(days=30), key="rsa1024"))
    assert ctl(url, "reload-tls").returncode == 0
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer certificate"):
        served(port, "broken.test", ca.cert_path)
    # a weak key is served (for the check to report it); this client's own security level would refuse it
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname, bare.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock, \
            bare.wrap_socket(sock, server_hostname="weak.test") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None and x509.load_der_x509_certificate(der).public_key().key_size == 1024  # type: ignore[union-attr]
