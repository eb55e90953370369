"""The full audit's findings from what was read on each host and the approved baselines (pure), and what to
propose for approval: the hosts whose current state differs from their approved baseline (or have none yet)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from upkeep.security import access, firewall, hostaudit
from upkeep.security.findings import Finding
from upkeep.security.gather import HostAudit
from upkeep.security.store import Baseline

Baselines = Mapping[str, Mapping[str, Baseline | None]]  # kind → host → approved baseline


def _items(baseline: Baseline | None) -> tuple[str, ...] | None:
    return baseline.items if baseline is not None else None


def current_items(audit: HostAudit, kind: str) -> list[str] | None:
    """The state a `kind` baseline records for a host (None: not read this run)."""
    if kind == "permissions":
        return sorted(audit.permissions)
    if kind == "firewall":
        return audit.ruleset
    return audit.access


def audit_findings(audits: Mapping[str, HostAudit], baselines: Baselines) -> list[Finding]:
    """Every finding of the audit: vulnerable packages, dependency advisories, sshd settings, permissions and
    firewall rules outside their approved baseline, access changed since the approved review, and each part that
    could not be read on a host."""
    out: list[Finding] = []
    for host, a in sorted(audits.items()):
        out += a.vulnerabilities + a.dependencies + a.sshd
        out += hostaudit.permission_findings(a.permissions, _items(baselines.get("permissions", {}).get(host)), host)
        if a.ruleset is not None:
            out += firewall.firewall_findings(a.ruleset, _items(baselines.get("firewall", {}).get(host)), host)
        out += access.access_findings(a.access, _items(baselines.get("access", {}).get(host)), host)
        for error in a.errors:
            part = error.split(":", 1)[0]
            out.append(Finding("audit", host, f"unread {part}", "medium", f"{part} could not be audited on {host}",
                               error[:300], "give the login user (or become) read access, then run the audit again"))
    return out


def proposals(audits: Mapping[str, HostAudit], baselines: Baselines, kinds: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """kind → host → the current items, for every host whose `kind` state differs from its approved baseline."""
    out: dict[str, dict[str, list[str]]] = {}
    for kind in kinds:
        for host, a in sorted(audits.items()):
            now = current_items(a, kind)
            if now is None or (kind == "permissions" and not now and baselines.get(kind, {}).get(host) is None):
                continue
            approved = _items(baselines.get(kind, {}).get(host))
            if approved is None or list(approved) != list(now):
                out.setdefault(kind, {})[host] = list(now)
    return out


def describe_change(kind: str, now: Sequence[str], baseline: Baseline | None) -> str:
    """For the approval request: what approving would accept on this host."""
    if baseline is None:
        return f"{kind}: {len(now)} item(s), none approved yet"
    added = sorted(set(now) - set(baseline.items))
    removed = sorted(set(baseline.items) - set(now))
    shown = "; ".join([*(f"+ {i}" for i in added[:5]), *(f"- {i}" for i in removed[:5])])
    more = len(added) + len(removed) - min(len(added), 5) - min(len(removed), 5)
    return (f"{kind}: {len(added)} added, {len(removed)} removed since {baseline.describe()}: {shown}"
            + (f" and {more} more" if more > 0 else ""))
