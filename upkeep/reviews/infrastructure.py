"""The quarterly infrastructure review: inventory snapshot, drift since the last one, drift within the fleet (pure).

`FACTS_ARGV` is a constant script (no input is ever put into it) whose output `parse_facts` reads; a
`Snapshot` (hosts, service versions, certificates) is stored as JSON, and the next review compares with it.
An unreachable host stays in the snapshot with its error; what was not seen is never called removed or changed.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from upkeep import humanize
from upkeep.errors import ReviewInputError
from upkeep.reviews.eol import EolStatus
from upkeep.reviews.model import Level, ReviewFinding, ordered

MARKER = "upkeep-facts 1"
FACTS_ARGV = [
    "/bin/sh", "-c",
    f"echo '{MARKER}'; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null; echo '--'; "
    "uname -r; echo '--'; uname -m; echo '--'; head -n1 /proc/uptime 2>/dev/null",
]
UNKNOWN = "unknown"
_FACT_KEYS = ("os", "os_id", "version_id", "codename", "kernel", "arch")


@dataclass(frozen=True)
class HostFacts:
    """What FACTS_ARGV saw on a host; a field it could not read is 'unknown'."""

    host: str
    os_id: str = UNKNOWN  # "debian", "ubuntu"
    version_id: str = UNKNOWN  # "12", "22.04"
    codename: str = UNKNOWN  # "bookworm", "jammy"
    pretty_name: str = UNKNOWN  # "Debian GNU/Linux 12 (bookworm)"
    kernel: str = UNKNOWN
    arch: str = UNKNOWN
    uptime_seconds: float | None = None

    def describe(self) -> str:
        up = f", up {humanize.duration(self.uptime_seconds)}" if self.uptime_seconds is not None else ""
        return f"{self.host}: {self.pretty_name}, kernel {self.kernel} ({self.arch}){up}"


def parse_facts(host: str, output: str) -> HostFacts:
    """The facts in FACTS_ARGV's output; ValueError naming the host when the output is not that script's."""
    lines = output.splitlines()
    if not lines or lines[0].strip() != MARKER:
        head = lines[0][:80] if lines else ""
        raise ReviewInputError(f"{host}: the output is not FACTS_ARGV's (first line {head!r}, expected {MARKER!r}): "
                         "run upkeep.reviews.infrastructure.FACTS_ARGV unchanged on the host")
    sections: list[list[str]] = [[]]
    for line in lines[1:]:
        if line.strip() == "--":
            sections.append([])
        else:
            sections[-1].append(line)
    sections += [[] for _ in range(4 - len(sections))]
    release = _os_release(sections[0])

    def first(i: int) -> str:
        return next((s.strip() for s in sections[i] if s.strip()), UNKNOWN)

    try:
        uptime: float | None = float(first(3).split()[0])
    except (ValueError, IndexError):
        uptime = None
    name = release.get("PRETTY_NAME") or " ".join(v for v in (release.get("NAME"), release.get("VERSION")) if v) or UNKNOWN
    return HostFacts(host, release.get("ID", UNKNOWN).lower() or UNKNOWN, release.get("VERSION_ID") or UNKNOWN,
                     release.get("VERSION_CODENAME") or release.get("UBUNTU_CODENAME") or UNKNOWN, name,
                     first(1), first(2), uptime)


def _os_release(lines: Sequence[str]) -> dict[str, str]:
    """KEY=value lines of os-release(5), shell quoting removed; anything else skipped."""
    out: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.strip().partition("=")
        if not sep or not key.isidentifier():
            continue
        try:
            words = shlex.split(value)
        except ValueError:  # unbalanced quotes: take the value as written
            words = [value.strip("\"'")]
        out[key] = " ".join(words)
    return out


@dataclass(frozen=True)
class Snapshot:
    """The inventory at one review: hosts (with their facts or error), service versions and certificates."""

    taken_at: datetime
    environment: str
    hosts: dict[str, dict[str, Any]]  # name → address, roles, os, os_id, version_id, codename, kernel, arch[, error]
    services: dict[str, str] = field(default_factory=dict)  # "web-1/nginx" → "1.22.1" or "unknown"
    certificates: dict[str, dict[str, str]] = field(default_factory=dict)  # name → target, not_after, fingerprint, issuer

    def reachable(self, host: str) -> bool:
        return host in self.hosts and not self.hosts[host].get("error")

    def to_json(self) -> dict[str, Any]:
        return {"taken_at": self.taken_at.isoformat(), "environment": self.environment,
                "hosts": {h: {**v, "roles": list(v["roles"])} for h, v in sorted(self.hosts.items())},
                "services": dict(sorted(self.services.items())),
                "certificates": {n: dict(c) for n, c in sorted(self.certificates.items())}}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Snapshot:
        try:
            hosts = {h: {**{k: UNKNOWN for k in _FACT_KEYS}, **v, "roles": sorted(v.get("roles", []))}
                     for h, v in d["hosts"].items()}
            return cls(datetime.fromisoformat(d["taken_at"]), d["environment"], hosts, dict(d.get("services", {})),
                       {n: dict(c) for n, c in d.get("certificates", {}).items()})
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ReviewInputError(f"not a stored infrastructure snapshot ({type(exc).__name__}: {exc}): pass what "
                             "Snapshot.to_json() wrote (taken_at ISO, environment, hosts, services, certificates)") from exc


def snapshot(environment: str, taken_at: datetime, hosts: Mapping[str, tuple[str, Sequence[str]]],
             facts: Mapping[str, HostFacts | str], services: Mapping[str, str],
             certificates: Mapping[str, Mapping[str, str]]) -> Snapshot:
    """The snapshot of one review; a host whose facts are an error string (or missing) is kept with that error."""
    extra = sorted(set(facts) - set(hosts))
    if extra:
        raise ReviewInputError(f"facts for {', '.join(extra)}, which the inventory hosts do not list: pass facts keyed by "
                         "the same host names as `hosts`")
    out: dict[str, dict[str, Any]] = {}
    for name, (address, roles) in sorted(hosts.items()):
        f = facts.get(name, "no facts gathered")
        entry: dict[str, Any] = {"address": address, "roles": sorted(roles)}
        if isinstance(f, HostFacts):
            entry |= {"os": f.pretty_name, "os_id": f.os_id, "version_id": f.version_id, "codename": f.codename,
                      "kernel": f.kernel, "arch": f.arch}
        else:
            entry |= {k: UNKNOWN for k in _FACT_KEYS} | {"error": f or "unreachable"}
        out[name] = entry
    certs = {n: {k: str(c.get(k) or UNKNOWN) for k in ("target", "not_after", "fingerprint", "issuer")}
             for n, c in sorted(certificates.items())}
    return Snapshot(taken_at, environment, out, {k: v or UNKNOWN for k, v in sorted(services.items())}, certs)


@dataclass(frozen=True)
class Change:
    """One difference: since the last review (`drift`) or between hosts of this one (`drift_within`)."""

    kind: str  # "host added", "kernel changed", "certificate renewed", …, "kernels differ", "service versions differ"
    subject: str  # "web-1", "web-1/nginx", "certificate api.example.org", "role web", "service nginx"
    before: str = ""
    after: str = ""

    def describe(self) -> str:
        if self.kind.endswith(" differ"):  # drift within: before = the most common value, after = the others
            n = self.after.count("; ") + 2
            return f"{self.subject} runs {n} {self.kind.removesuffix(' differ')}: {self.before}; {self.after}"
        if self.kind == "certificate renewed":
            return f"{self.subject} renewed: {self.after} (was {self.before})"
        if self.kind.endswith(" added"):
            return f"{self.subject} added ({self.after})"
        if self.kind.endswith(" removed"):
            return f"{self.subject} removed (was {self.before})"
        what = self.kind.removesuffix(" changed").removesuffix(" renewed")
        verb = "renewed" if self.kind.endswith("renewed") else f"{what} changed"
        return f"{self.subject}: {verb} from {self.before} to {self.after}"


def _host_text(h: Mapping[str, Any]) -> str:
    return f"{h['address']}, roles {', '.join(h['roles']) or 'none'}, {h['os']}"


def _cert_text(c: Mapping[str, str]) -> str:
    return f"{c['target']}, expires {c['not_after'][:10]}, issuer {c['issuer']}, {humanize.digest(c['fingerprint'], 'sha256')}"


def drift(previous: Snapshot | None, current: Snapshot) -> list[Change]:
    """What changed since the last review (none for the first, the baseline). Facts of a host unreachable in
    either snapshot, and versions 'unknown' in either, are not compared: not seen is not changed."""
    if previous is None:
        return []
    out: list[Change] = []
    before, now = previous.hosts, current.hosts
    out += [Change("host added", h, "", _host_text(now[h])) for h in sorted(set(now) - set(before))]
    out += [Change("host removed", h, _host_text(before[h]), "") for h in sorted(set(before) - set(now))]
    for h in sorted(set(before) & set(now)):
        a, b = before[h], now[h]
        out += [Change(f"{k} changed", h, str(a[k]), str(b[k])) for k in ("address",) if a[k] != b[k]]
        if a["roles"] != b["roles"]:
            out.append(Change("roles changed", h, ", ".join(a["roles"]) or "none", ", ".join(b["roles"]) or "none"))
        if previous.reachable(h) and current.reachable(h):
            out += [Change(label, h, a[k], b[k]) for k, label in (("os", "OS changed"), ("kernel", "kernel changed"),
                                                                  ("arch", "architecture changed")) if a[k] != b[k]]
    for key in sorted(set(previous.services) | set(current.services)):
        host = key.split("/", 1)[0]
        if not (previous.reachable(host) and current.reachable(host)):
            continue  # the host was added, removed or not reached: its services are not compared
        old, new = previous.services.get(key), current.services.get(key)
        if old is None and new is not None:
            out.append(Change("service added", key, "", new))
        elif new is None and old is not None:
            out.append(Change("service removed", key, old, ""))
        elif old != new and UNKNOWN not in (old, new):
            out.append(Change("service version changed", key, str(old), str(new)))
    pc, cc = previous.certificates, current.certificates
    out += [Change("certificate added", f"certificate {n}", "", _cert_text(cc[n])) for n in sorted(set(cc) - set(pc))]
    out += [Change("certificate removed", f"certificate {n}", _cert_text(pc[n]), "") for n in sorted(set(pc) - set(cc))]
    out += [Change("certificate renewed", f"certificate {n}", _cert_text(pc[n]), _cert_text(cc[n]))
            for n in sorted(set(pc) & set(cc)) if pc[n]["fingerprint"] != cc[n]["fingerprint"]]
    return out


def drift_within(current: Snapshot) -> list[Change]:
    """Inconsistencies inside one snapshot: hosts of one role on different OS releases or kernels, and one
    service at different versions across hosts (unreachable hosts and unknown versions left out)."""
    out: list[Change] = []
    up = {h: v for h, v in current.hosts.items() if current.reachable(h)}
    for role in sorted({r for v in up.values() for r in v["roles"]}):
        members = {h: v for h, v in up.items() if role in v["roles"]}
        for key, kind in (("os", "OS releases differ"), ("kernel", "kernels differ")):
            out += _spread(kind, f"role {role}", {h: v[key] for h, v in members.items() if v[key] != UNKNOWN})
    by_service: dict[str, dict[str, str]] = {}
    for key, version in current.services.items():
        host, _, service = key.partition("/")
        if host in up and version != UNKNOWN:
            by_service.setdefault(service, {})[host] = version
    for service, versions in sorted(by_service.items()):
        out += _spread("service versions differ", f"service {service}", versions)
    return out


def _spread(kind: str, subject: str, values: Mapping[str, str]) -> list[Change]:
    """One Change when the hosts hold more than one value: the most common first, then the others."""
    hosts: dict[str, list[str]] = {}
    for h, v in sorted(values.items()):
        hosts.setdefault(v, []).append(h)
    if len(hosts) < 2:
        return []
    groups = sorted(hosts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    text = [f"{v} on {', '.join(hs)}" for v, hs in groups]
    return [Change(kind, subject, text[0], "; ".join(text[1:]))]


_LEVELS: dict[str, Level] = {"host removed": "warning", "certificate removed": "warning", "host added": "info",
                           "roles changed": "info", "address changed": "info", "OS changed": "info",
                           "architecture changed": "info", "service removed": "info"}
_EOL_LEVELS: dict[str, Level] = {"near end of life": "warning", "unknown release": "info"}


def findings(changes: Sequence[Change], within: Sequence[Change], eol_statuses: Mapping[str, EolStatus]) -> list[ReviewFinding]:
    """What a person should look at: releases past or near end of life, inconsistencies in the fleet, and the
    changes a quarter should explain (routine kernel, version and certificate updates are in the report only)."""
    out = [ReviewFinding("warning" if c.kind != "kernels differ" else "info", c.subject, c.describe() + ".",
                         "drift within this snapshot") for c in within]
    out += [ReviewFinding(_LEVELS[c.kind], c.subject, c.describe() + ".", f"{c.kind} since the last review")
            for c in changes if c.kind in _LEVELS]
    for host, s in sorted(eol_statuses.items()):
        if s.state == "supported":
            continue
        level: Level = _EOL_LEVELS.get(s.state, "warning" if s.covered else "critical")
        out.append(ReviewFinding(level, host, s.describe(), f"{s.source or 'distro-info-data'} on {s.today}"))
    return ordered(out)


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary(current: Snapshot, previous: Snapshot | None, changes: Sequence[Change],
            eol_statuses: Mapping[str, EolStatus]) -> str:
    """The first sentence: hosts and releases, changes since the last review, end of life."""
    down = [h for h in current.hosts if not current.reachable(h)]
    releases = {v["os"] for h, v in current.hosts.items() if current.reachable(h)}
    parts = [humanize.count(len(current.hosts), "host") + f" on {humanize.count(len(releases), 'OS release')}"
             + (f" ({len(down)} not reached)" if down else "")]
    if previous is None:
        parts.append("first review: this snapshot is the baseline")
    else:
        parts.append(f"{humanize.count(len(changes), 'change')} since the review of {previous.taken_at.date()}")
    by_state = Counter(s.state for s in eol_statuses.values())
    near = [s.days for s in eol_statuses.values() if s.state == "near end of life" and s.days is not None]
    if near:
        n = by_state["near end of life"]
        parts.append(f"{humanize.count(n, 'host')} on a release that reaches end of life in "
                     f"{humanize.count(min(near), 'day')}" if n == 1 else
                     f"{n} hosts on releases that reach end of life within {humanize.count(max(near), 'day')}")
    if by_state["end of life"]:
        covered = sum(s.state == "end of life" and s.covered is not None for s in eol_statuses.values())
        parts.append(f"{humanize.count(by_state['end of life'], 'host')} past end of life"
                     + (f" ({covered} still under extended support)" if covered else ""))
    if by_state["unknown release"]:
        parts.append(f"end of life unknown for {humanize.count(by_state['unknown release'], 'host')}")
    if eol_statuses and not (near or by_state["end of life"] or by_state["unknown release"]):
        parts.append("every host on a supported release")
    return "; ".join(parts) + "."


def markdown(current: Snapshot, previous: Snapshot | None, changes: Sequence[Change], within: Sequence[Change],
             eol_statuses: Mapping[str, EolStatus]) -> str:
    """The review's section: a sentence, the hosts, the changes, the drift within, the certificates."""
    day: date = current.taken_at.date()
    out = [f"## Infrastructure review — {current.environment}, {day}\n", summary(current, previous, changes, eol_statuses),
           "\n### Hosts\n", "| host | address | roles | OS | kernel | services | end of life |", "|---|---|---|---|---|---|---|"]
    for h, v in sorted(current.hosts.items()):
        svc = ", ".join(f"{k.split('/', 1)[1]} {ver}" for k, ver in sorted(current.services.items())
                        if k.split("/", 1)[0] == h)
        status = eol_statuses.get(h)
        os_text = v["os"] if current.reachable(h) else f"not reached: {v.get('error', '')}"
        cells = [h, v["address"], ", ".join(v["roles"]), os_text, v["kernel"], svc or "—",
                 status.brief() if status else "—"]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if previous is None:
        out += ["\n### Changes\n", "First review: this snapshot is the baseline the next review compares with."]
    else:
        out += [f"\n### Changes since {previous.taken_at.date()}\n"]
        out += [f"- {c.describe()}." for c in changes] or ["No change."]
    if within:
        out += ["\n### Drift within the fleet\n", *[f"- {c.describe()}." for c in within]]
    out += ["\n### Certificates\n"]
    if current.certificates:
        out += ["| name | target | expires | issuer |", "|---|---|---|---|"]
        for n, c in sorted(current.certificates.items(), key=lambda kv: kv[1]["not_after"]):
            out.append("| " + " | ".join(_cell(x) for x in (n, c["target"], _expires(c["not_after"], day), c["issuer"])) + " |")
    else:
        out.append("No certificate in the inventory.")
    return "\n".join(out) + "\n"


def _expires(not_after: str, today: date) -> str:
    """'2027-03-01 (in 85 days)', '2026-11-30 (6 days ago)'; the text as given when it is not an ISO date."""
    try:
        d = datetime.fromisoformat(not_after).date()
    except ValueError:
        return not_after
    days = (d - today).days
    return f"{d} (in {humanize.count(days, 'day')})" if days >= 0 else f"{d} ({humanize.count(-days, 'day')} ago)"
