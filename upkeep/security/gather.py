"""What the security routines read on a host, over its connection (argv only, never a shell string): protected
files through the environment's `become` (`sudo -n -u root -- cat -- FILE`), the permission audit's `find`, the
effective sshd configuration, the firewall ruleset, the dpkg status file, the access review's files and the
dependency audits. Each returns plain data for the pure modules beside it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from upkeep.config.render import host_path, render, render_argv
from upkeep.config.security import DependencyProject
from upkeep.errors import HostError, SecurityInputError
from upkeep.resources import Resources
from upkeep.security import access, hostaudit
from upkeep.security.findings import Finding
from upkeep.security.firewall import normalise_iptables, normalise_nft
from upkeep.security.sources import FeedIndex, debian_vulnerabilities, dpkg_installed, npm_audit, pip_audit


class HostReader:
    """Commands and protected reads on one host of the run's environment, with `become` when configured."""

    def __init__(self, res: Resources, host: str) -> None:
        self.res, self.name = res, host
        self.host, self.cfg = res.hosts.get(host), res.hosts.get_config(host)
        sec, become = res.env.security, res.env.become
        self.become = become.prefix() if become is not None and sec.become_reads else []

    def path(self, template: str, field: str) -> str:
        return host_path(template, self.cfg, field)

    def run(self, argv: Sequence[str], what: str, *, privileged: bool = False, ok: tuple[int, ...] = (0,),
            timeout: float = 120) -> str:
        """stdout of argv (through become when `privileged`); an exit code outside `ok` is a HostError saying what
        was being read and how to allow it."""
        full = [*(self.become if privileged else []), *argv]
        result = self.host.run(full, timeout=timeout, check=False)
        if result.exit_code not in ok:
            hint = (f"; the login user needs a sudoers line for `{' '.join(argv[:2])}`" if privileged and self.become
                    and "sudo" in result.stderr else "")
            raise HostError(self.name, f"{what}: `{' '.join(full)}` exited {result.exit_code}: "
                                       f"{result.stderr.strip()[:300]}{hint}")
        return result.stdout

    def read(self, path: str, what: str) -> str | None:
        """A file's text (None when it does not exist), read through become when configured."""
        out = self.host.run([*self.become, "cat", "--", path], timeout=60, check=False)
        if out.exit_code != 0:
            if "No such file" in out.stderr:
                return None
            raise HostError(self.name, f"cannot read {what} {path}: {out.stderr.strip()[:300]}"
                            + ("" if self.become else " (set the environment's become to read protected files)"))
        return out.stdout

    def files(self, paths: Sequence[str], what: str) -> dict[str, str]:
        """The text of each path that is a file, and of the files directly inside each path that is a directory."""
        listing = self.run(["find", *paths, "-maxdepth", "1", "-type", "f", "-print0"], f"list {what}", privileged=True,
                           ok=(0, 1))
        out = {}
        for path in sorted(p for p in listing.split("\0") if p):
            text = self.read(path, what)
            if text is not None:
                out[path] = text
        return out


def permission_items(r: HostReader) -> dict[str, str]:
    roots = [r.path(t, f"security.audit_roots[{i}]") for i, t in enumerate(r.res.env.security.audit_roots)]
    if not roots:
        return {}
    # find exits 1 when a directory could not be read: what it printed is still the answer; the error is said
    return hostaudit.permission_items(r.run(hostaudit.permission_argv(roots), "permission audit", privileged=True,
                                            ok=(0, 1), timeout=600))


def sshd_effective(r: HostReader) -> str | None:
    argv = r.res.env.security.sshd
    return r.run(render_argv(argv, r.cfg), "sshd -T", privileged=True) if argv else None


def ruleset(r: HostReader) -> list[str] | None:
    """The normalised firewall ruleset (None when the environment reviews none)."""
    sec = r.res.env.security
    if sec.firewall == "none":
        return None
    default = ["nft", "-j", "list", "ruleset"] if sec.firewall == "nft" else ["iptables-save"]
    text = r.run(render_argv(sec.firewall_command or default, r.cfg), "firewall ruleset", privileged=True)
    return normalise_nft(text) if sec.firewall == "nft" else normalise_iptables(text)


def package_findings(r: HostReader, feed: FeedIndex) -> tuple[int, list[Finding]]:
    """(installed packages, their vulnerabilities) from the host's dpkg status file against the feed."""
    cfg = r.res.env.security.feed
    if cfg is None:
        return 0, []
    path = r.path(cfg.dpkg_status, "security.feed.dpkg_status")
    status = r.host.read_file(path).decode("utf-8", "replace")  # world-readable by design: no become
    return len(dpkg_installed(status)), debian_vulnerabilities(status, feed, r.name, cfg.release)


def access_items(r: HostReader) -> list[str]:
    """Accounts with a login shell, sudo rules, and each account's key fingerprints, as review items."""
    cfg = r.res.env.security.access
    passwd = r.read(r.path(cfg.passwd, "security.access.passwd"), "passwd") or ""
    accounts = access.login_accounts(passwd, cfg.nologin_shells)
    sudoers = access.sudoers_lines(r.files([r.path(p, "security.access.sudoers") for p in cfg.sudoers], "sudoers"))
    keys = {}
    for a in accounts:
        if not a.home.startswith("/"):
            continue
        path = posixpath.normpath(render(cfg.authorized_keys.replace("{home}", a.home), r.cfg))
        try:
            text = r.read(path, f"{a.user}'s authorized_keys")
        except HostError as exc:  # one account's keys unreadable: an item the reviewer sees, the rest still read
            keys[a.user] = [f"unreadable {path} ({str(exc).rsplit(': ', 1)[-1][:80]})"]
            continue
        if text:
            keys[a.user] = access.key_fingerprints(text)
    return access.access_items(accounts, sudoers, keys)


_AUDIT = {"npm": ["npm", "audit", "--json", "--omit=dev"], "pip": ["pip-audit", "-f", "json", "--progress-spinner", "off"]}


def dependency_findings(r: HostReader, project: DependencyProject) -> list[Finding]:
    """`npm audit --json` / `pip-audit -f json` in the project's directory, parsed (both exit 1 when they found
    something: that is an answer, not a failure)."""
    path = r.path(project.path, "security.projects[].path")
    argv = render_argv(project.command, r.cfg) if project.command else _AUDIT[project.kind]
    if project.kind == "npm":
        out = r.run(["env", "-C", path, *argv], f"npm audit of {path}", ok=(0, 1), timeout=300)
        return npm_audit(out, r.name, path)
    full = argv if project.command else [*argv, "-r", posixpath.join(path, "requirements.txt")]
    out = r.run(full, f"pip-audit of {path}", ok=(0, 1), timeout=300)
    return pip_audit(out, r.name, path)


@dataclass
class HostAudit:
    """What the audit read on one host (findings of the sources without a baseline; raw items of the others)."""

    permissions: dict[str, str] = field(default_factory=dict)
    sshd: list[Finding] = field(default_factory=list)
    ruleset: list[str] | None = None
    packages: int = 0  # installed, as the dpkg status file lists them
    vulnerabilities: list[Finding] = field(default_factory=list)
    access: list[str] = field(default_factory=list)
    dependencies: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a part that could not be read, said; the others still count
    read: list[str] = field(default_factory=list)  # the parts read

    def describe(self) -> str:
        said = {"permissions": f"{len(self.permissions)} special-permission item(s)",
                "sshd": f"{len(self.sshd)} sshd finding(s)",
                "firewall": f"{len(self.ruleset or [])} firewall line(s)" if self.ruleset is not None else "",
                "packages": f"{self.packages} package(s), {len(self.vulnerabilities)} vulnerable" if self.packages else "",
                "access": f"{len(self.access)} access item(s)",
                "dependencies": f"{len(self.dependencies)} dependency finding(s)"}
        parts = [said[p] for p in self.read if said.get(p)]
        return ", ".join(parts) + (f"; NOT READ: {'; '.join(self.errors)}" if self.errors else "")


def _set(obj: object, names: tuple[str, ...], values: tuple[Any, ...]) -> None:
    for name, value in zip(names, values, strict=True):
        setattr(obj, name, value)


def audit_host(res: Resources, host: str, parts: Sequence[str], feed: FeedIndex | None = None) -> HostAudit:
    """Read every part of the audit on one host; a part that fails is recorded (its error) and the rest still read,
    so one unreadable file does not hide the host's other findings."""
    r, out = HostReader(res, host), HostAudit()
    steps = {
        "permissions": lambda: setattr(out, "permissions", permission_items(r)),
        "sshd": lambda: setattr(out, "sshd", hostaudit.sshd_findings(sshd_effective(r) or "", host)),
        "firewall": lambda: setattr(out, "ruleset", ruleset(r)),
        "packages": lambda: _set(out, ("packages", "vulnerabilities"), package_findings(r, feed or {})),
        "access": lambda: setattr(out, "access", access_items(r)),
        "dependencies": lambda: setattr(out, "dependencies", [
            f for p in res.env.security.projects if p.role is None or p.role in r.cfg.roles
            for f in dependency_findings(r, p)]),
    }
    for part in parts:
        try:
            steps[part]()
            out.read.append(part)
        except (HostError, SecurityInputError, OSError) as exc:
            out.errors.append(f"{part}: {exc}")
    if len(out.errors) == len(parts):
        raise HostError(host, "no part of the audit could be read: " + "; ".join(out.errors))
    return out
