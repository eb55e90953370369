"""The security routines' configuration (`environments.<env>.security`): certificates, the audit's inputs, the
access review's files, waivers.

Paths and commands on a host are rendered with the host's variables (`{root}`, `{name}`, `{address}`), each word
on its own (upkeep.config.render): a value never becomes shell syntax.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from upkeep.config.units import Duration
from upkeep.security.findings import Severity, Waiver

_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CertificateCheck(_Model):
    """A TLS endpoint (the host's address and `port`, asked for `server_name`) or a certificate `file` on the host;
    renewed by `renew` on the host when due, then `reload` (the service re-reads it), then checked again."""

    name: str = Field(pattern=_NAME, description="how the report names it")
    host: str = Field(description="an inventory host: its address is dialled, and renew / reload / file are on it")
    port: int | None = Field(None, ge=1, le=65535, description="the TLS port (an endpoint)")
    file: str | None = Field(None, description="a PEM certificate file on the host (instead of a port)")
    server_name: str = Field(pattern=r"^[A-Za-z0-9*][A-Za-z0-9.*-]{0,252}$",
                             description="the name sent as SNI, that the certificate must be valid for")
    address: str | None = Field(None, description="dial this address instead of the host's (a load balancer)")
    ca_file: str | None = Field(None, description="CA bundle (on the machine running Upkeep) the chain must verify "
                                                  "against (default: the system's store)")
    renew: list[str] = Field(default_factory=list, description="argv on the host that installs a new certificate "
                                                               "(default: none: a due certificate is reported)")
    reload: list[str] = Field(default_factory=list, description="argv on the host after renew: the service re-reads it")
    become: bool = Field(False, description="read the file and run renew / reload through the environment's become")
    timeout: Duration = Field(timedelta(seconds=5), description="for the TLS handshake (default: 5s)")

    @model_validator(mode="after")
    def _one_target(self) -> CertificateCheck:
        if (self.port is None) == (self.file is None):
            raise ValueError(f"certificate {self.name!r}: give exactly one of port (a TLS endpoint) or file (a PEM file "
                             "on the host)")
        if self.reload and not self.renew:
            raise ValueError(f"certificate {self.name!r}: reload without renew never runs: add the renew command")
        if self.file is not None and not self.file.startswith(("/", "{")):
            raise ValueError(f"certificate {self.name!r}: file must be an absolute path (or start with a variable "
                             "such as {root})")
        return self


class DependencyProject(_Model):
    """A project whose dependencies are audited: `npm audit --json` or `pip-audit -f json` in `path` on the hosts."""

    kind: Literal["npm", "pip"]
    path: str = Field(description="the project's directory on the host ({root} and host variables rendered)")
    role: str | None = Field(None, description="only on the hosts with this role (default: every host)")
    command: list[str] = Field(default_factory=list, description="argv instead of the default audit command")


class VulnerabilityFeed(_Model):
    """OSV entries (a JSON list, or an object with `vulns`) for the installed Debian packages."""

    source: str = Field(description="an https:// URL or a file on the machine running Upkeep")
    release: str = Field("Debian:12", pattern=r"^Debian:[0-9]+$", description="the OSV ecosystem of the hosts")
    dpkg_status: str = Field("/var/lib/dpkg/status", description="the dpkg status file on each host")
    max_age: Duration | None = Field(None, description="a file older than this is reported stale (default: not checked)")


class AccessReview(_Model):
    """What the access review reads on each host (become when configured): accounts with a login shell, sudoers
    entries, and the fingerprints of each account's authorized_keys."""

    passwd: str = "/etc/passwd"
    sudoers: list[str] = Field(default_factory=lambda: ["/etc/sudoers", "/etc/sudoers.d"],
                               description="files, or directories whose files are read")
    authorized_keys: str = Field("{home}/.ssh/authorized_keys", description="{home}: the account's home from passwd")
    nologin_shells: list[str] = Field(default_factory=lambda: ["/usr/sbin/nologin", "/sbin/nologin", "/bin/false",
                                                               "/usr/bin/false", "/bin/sync"])


class WaiverConfig(_Model):
    """A finding pattern hidden until `expires`, with the reason and the person who owns it."""

    pattern: str = Field(min_length=3, description="fnmatch over finding ids `source:host:key`, e.g. "
                                                   "`npm-audit:*:app lodash GHSA-*`")
    reason: str = Field(min_length=3)
    owner: str = Field(min_length=1)
    expires: date = Field(description="the last day the waiver is in force (YYYY-MM-DD)")

    @field_validator("pattern")
    @classmethod
    def _shape(cls, value: str) -> str:
        if value.count(":") < 2:
            raise ValueError("a waiver pattern matches ids `source:host:key`: write e.g. `permissions:host1:/opt/* suid`"
                             " (use * for any host)")
        return value

    def waiver(self) -> Waiver:
        return Waiver(self.pattern, self.reason, self.owner, self.expires)


class SecurityConfig(_Model):
    """`environments.<env>.security`: what the security routines check, and how loudly."""

    certificates: list[CertificateCheck] = Field(default_factory=list)
    audit_roots: list[str] = Field(default_factory=list, description="permission audit: SUID/SGID and world-writable "
                                                                     "files under these roots, per host (default: none)")
    sshd: list[str] = Field(default_factory=lambda: ["/usr/sbin/sshd", "-T"],
                            description="argv printing the effective sshd configuration (empty: not audited)")
    firewall: Literal["nft", "iptables", "none"] = Field("nft", description="how the ruleset is listed")
    firewall_command: list[str] = Field(default_factory=list, description="argv listing the ruleset instead of "
                                        "`nft -j list ruleset` / `iptables-save` (same output format)")
    projects: list[DependencyProject] = Field(default_factory=list)
    feed: VulnerabilityFeed | None = Field(None, description="OS package vulnerabilities (default: not scanned)")
    access: AccessReview = AccessReview()
    become_reads: bool = Field(True, description="read protected files (sudoers, authorized_keys, the ruleset) through "
                                                 "the environment's become")
    waivers: list[WaiverConfig] = Field(default_factory=list)
    notify_at: Severity = Field("critical", description="a new finding this severe or worse notifies at once")
    patch_sla: Duration = Field(timedelta(days=7), description="how long a pending security update may wait before the "
                                "compliance audit marks patching Failing (default: 7d)")
    review_days: int = Field(7, ge=1, le=90, description="days of log analysis the security review reads")

    @model_validator(mode="after")
    def _unique(self) -> SecurityConfig:
        names = [c.name for c in self.certificates]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"security.certificates: duplicate name(s) {', '.join(dup)}: give each a unique name")
        for i, root in enumerate(self.audit_roots):
            if not root.startswith(("/", "{")):
                raise ValueError(f"security.audit_roots[{i}] {root!r}: an absolute path (or one starting with {{root}})")
        return self

    def waivers_list(self) -> list[Waiver]:
        return [w.waiver() for w in self.waivers]
