"""The configured certificates observed (a served endpoint or a file on a host), turned into findings, and
renewed on their host: `renew`, then `reload`, then the caller checks again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from upkeep.config.render import host_path, render_argv
from upkeep.config.security import CertificateCheck
from upkeep.errors import HostError, SecurityInputError
from upkeep.resources import Resources
from upkeep.security.certs import CertFacts, CertVerdict, facts_of, fetch_chain, judge
from upkeep.security.findings import Finding, Severity
from upkeep.security.gather import HostReader


@dataclass(frozen=True)
class CertResult:
    """One configured certificate now: its facts and verdict, or why it could not be read."""

    name: str
    host: str
    target: str  # "127.0.0.2:8443 (SNI api.upkeep.test)" or "host1:/etc/ssl/api.pem"
    facts: CertFacts | None
    verdict: CertVerdict | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict is not None and self.verdict.ok

    @property
    def due(self) -> bool:
        return self.verdict is not None and self.verdict.renew

    def describe(self) -> str:
        if self.verdict is None:
            return f"{self.target}: not read: {self.error}"
        state = "ok" if self.verdict.ok else "; ".join(self.verdict.problems)
        if self.facts is None:
            return f"{self.target}: {state}"
        left = (self.facts.not_after - datetime.now(UTC)).total_seconds() / 86400
        return (f"{self.target}: {state}; until {self.facts.not_after:%Y-%m-%d} ({left:.0f} days left), {self.facts.key}, "
                f"{self.facts.signature_hash}")

    def findings(self) -> list[Finding]:
        """One finding per problem (keyed by certificate and kind, so a renewed certificate closes them)."""
        fix = "renew it (configure `renew` and `reload` to let Upkeep do it) and check the served chain"
        if self.verdict is None:
            return [Finding("tls", self.host, f"{self.name} unreachable", "high", f"certificate {self.name}: not read",
                            f"{self.target}: {self.error}", "check the service is up and the port / path is right")]
        out = []
        for p in self.verdict.problems:
            kind = p.split(" ", 1)[0]
            sev: Severity = ("critical" if p == "expired" else "high" if kind in ("renewal", "not", "chain")
                             else "medium")
            out.append(Finding("tls", self.host, f"{self.name} {kind}", sev, f"certificate {self.name}: {p}",
                               f"{self.target}: {self.verdict.detail}", fix))
        return out


def _file_facts(res: Resources, check: CertificateCheck) -> CertFacts:
    """The first certificate of a PEM file on the host; its chain checked link by link (each certificate issued by
    the next), and the last against `ca_file` when given."""
    reader = HostReader(res, check.host)
    if not check.become:
        reader.become = []
    path = reader.path(check.file or "", f"security.certificates[{check.name}].file")
    text = reader.read(path, "certificate")
    if text is None:
        raise SecurityInputError(f"certificate {check.name}: {check.host}:{path} does not exist")
    try:
        chain = x509.load_pem_x509_certificates(text.encode())
    except ValueError as exc:
        raise SecurityInputError(f"certificate {check.name}: {check.host}:{path} holds no PEM certificate ({exc})") from exc
    error = ""
    for child, parent in zip(chain, chain[1:], strict=False):
        try:
            child.verify_directly_issued_by(parent)
        except Exception as exc:  # noqa: BLE001 - InvalidSignature and friends: a broken link
            error = f"{child.subject.rfc4514_string()} is not issued by the next certificate ({type(exc).__name__})"
            break
    if not error and check.ca_file:
        with open(check.ca_file, "rb") as f:
            roots = x509.load_pem_x509_certificates(f.read())
        last = chain[-1]
        if not any(_issued_by(last, ca) for ca in roots):
            error = f"{last.issuer.rfc4514_string()} is not in {check.ca_file}"
    return facts_of(chain[0].public_bytes(Encoding.DER), not error, error)


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    if cert == ca:  # the CA itself at the end of the file
        return True
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except Exception:  # noqa: BLE001 - any failure: not this CA
        return False


def observe(res: Resources, check: CertificateCheck, now: datetime) -> CertResult:
    """What the certificate is now, judged for its server name."""
    cfg = res.hosts.get_config(check.host)
    if check.port is not None:
        address = check.address or cfg.address
        target = f"{address}:{check.port} (SNI {check.server_name})"
    else:
        target = f"{check.host}:{host_path(check.file or '', cfg, f'security.certificates[{check.name}].file')}"
    try:
        if check.port is not None:
            facts = fetch_chain(address, check.port, check.server_name, check.ca_file, check.timeout.total_seconds())
        else:
            facts = _file_facts(res, check)
    except (OSError, HostError, SecurityInputError) as exc:
        return CertResult(check.name, check.host, target, None, None, str(exc) or type(exc).__name__)
    return CertResult(check.name, check.host, target, facts, judge(facts, check.server_name, now))


def renew(res: Resources, check: CertificateCheck) -> str:
    """Run the check's `renew`, then its `reload`, on its host (through become when configured); a HostError says
    which command failed and what it printed."""
    reader = HostReader(res, check.host)
    said = []
    for what, argv in (("renew", check.renew), ("reload", check.reload)):
        if not argv:
            continue
        out = reader.run(render_argv(argv, reader.cfg), f"certificate {check.name}: {what}", privileged=check.become,
                         timeout=600)
        said.append(f"{what} ran" + (f" ({' '.join(out.split())[:120]})" if out.strip() else ""))
    return "; ".join(said)
