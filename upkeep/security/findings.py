"""One findings schema for every security source, kept across runs, and waivers that expire (pure).

A `Finding` is what one check saw now; its `id` is stable across runs (source, host and the check's own
key: a package and CVE, a file path, a rule), so a run can say what is **new**, what **persists** (and since
when), what was **fixed** (seen last run, gone now). A `Waiver` (inventory: pattern, reason, owner, expiry)
hides the findings its pattern matches until it expires; an expired waiver hides nothing and is itself
reported, like debsecan or Lynis never do (both print text only, with no memory of earlier runs).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from fnmatch import fnmatchcase
from typing import Any, Literal

Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low", "info")
Status = Literal["new", "persisting", "fixed", "waived"]


@dataclass(frozen=True)
class Finding:
    """What one check saw on one host now."""

    source: str  # "dpkg-osv", "npm-audit", "permissions", "sshd", "firewall", "tls", "access", ...
    host: str
    key: str  # the check's own identity of the problem: "openssl CVE-2024-5535", "/usr/local/bin/x suid"
    severity: Severity
    title: str
    detail: str = ""
    fix: str = ""

    @property
    def id(self) -> str:
        return f"{self.source}:{self.host}:{self.key}"

    def describe(self) -> str:
        return f"{self.severity}: {self.title}"


@dataclass(frozen=True)
class FindingRecord:
    """A finding as the store keeps it: the finding, when first and last seen, and its status this run."""

    finding: Finding
    first_seen: datetime
    last_seen: datetime
    status: Status
    waiver: str | None = None  # the pattern of the waiver hiding it

    def document(self) -> dict[str, Any]:
        f = self.finding
        return {"id": f.id, "source": f.source, "host": f.host, "key": f.key, "severity": f.severity, "title": f.title,
                "detail": f.detail, "fix": f.fix, "first_seen": self.first_seen, "last_seen": self.last_seen,
                "status": self.status, "waiver": self.waiver}

    @classmethod
    def from_document(cls, d: Mapping[str, Any]) -> FindingRecord:
        f = Finding(d["source"], d["host"], d["key"], d["severity"], d["title"], d.get("detail", ""), d.get("fix", ""))
        return cls(f, d["first_seen"], d["last_seen"], d["status"], d.get("waiver"))


@dataclass(frozen=True)
class Waiver:
    pattern: str  # fnmatch over finding ids: "npm-audit:*:lodash GHSA-*", "permissions:web-1:/opt/legacy/*"
    reason: str
    owner: str
    expires: date

    def covers(self, finding: Finding) -> bool:
        return fnmatchcase(finding.id, self.pattern)


@dataclass
class Reconciliation:
    """This run's findings against the last run's: what to report, and the records to store."""

    new: list[FindingRecord] = field(default_factory=list)
    persisting: list[FindingRecord] = field(default_factory=list)
    fixed: list[FindingRecord] = field(default_factory=list)
    waived: list[FindingRecord] = field(default_factory=list)
    expired_waivers: list[Waiver] = field(default_factory=list)
    waivers_in_force: list[Waiver] = field(default_factory=list)

    def records(self) -> list[FindingRecord]:
        """What the store keeps after this run (fixed ones too, so the next report does not call them new)."""
        return [*self.new, *self.persisting, *self.waived, *self.fixed]

    def counts(self) -> dict[str, int]:
        """Open findings (new and persisting, not waived) per severity, most severe first."""
        open_ = [*self.new, *self.persisting]
        return {s: sum(1 for r in open_ if r.finding.severity == s) for s in SEVERITIES}


def reconcile(previous: Iterable[FindingRecord], current: Sequence[Finding], now: datetime,
              waivers: Sequence[Waiver] = ()) -> Reconciliation:
    """Compare this run's findings with the stored ones; apply the waivers in force on `now`'s date.

    A finding seen before keeps its `first_seen` (also when it was fixed and came back: it reappears as
    new, first seen now). Two sources reporting the same id count once (the first)."""
    today = now.date()
    out = Reconciliation(expired_waivers=[w for w in waivers if w.expires < today],
                         waivers_in_force=[w for w in waivers if w.expires >= today])
    before = {r.finding.id: r for r in previous}
    seen: set[str] = set()
    for f in current:
        if f.id in seen:
            continue
        seen.add(f.id)
        old = before.get(f.id)
        open_before = old is not None and old.status != "fixed"
        first = old.first_seen if old is not None and open_before else now
        waiver = next((w for w in out.waivers_in_force if w.covers(f)), None)
        if waiver is not None:
            out.waived.append(FindingRecord(f, first, now, "waived", waiver.pattern))
        elif open_before:
            out.persisting.append(FindingRecord(f, first, now, "persisting"))
        else:
            out.new.append(FindingRecord(f, now, now, "new"))
    for fid, old in before.items():
        if fid not in seen and old.status != "fixed":
            out.fixed.append(replace(old, status="fixed", waiver=None))
    for group in (out.new, out.persisting):
        group.sort(key=lambda r: (SEVERITIES.index(r.finding.severity), r.finding.id))
    return out
