"""What every security routine does with its findings in its post stage: compare them with the last run's (the
store, waivers applied), publish the findings report and table, notify at once about new ones severe enough."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from flows._routine import Routine
from tasks.monitoring import keep_findings
from tasks.reports import publish_findings
from upkeep.errors import UpkeepError
from upkeep.hosts.fanout import FanOutResult
from upkeep.security import report
from upkeep.security.findings import Finding, Reconciliation


def report_findings(r: Routine, title: str, findings: Sequence[Finding], hosts: Sequence[str] | None = None,
                    notes: Sequence[str] = (), unreached: Mapping[str, str] | None = None,
                    appendix: str = "") -> Reconciliation:
    """Reconcile, publish and notify; the run report gets the summary sentence. `unreached`: host → why it could not
    be read: a finding each, and their earlier findings carried over (they are not fixed because nobody looked).
    `appendix`: more markdown for the findings artifact (what a reviewer approves)."""
    gone = dict(unreached or {})
    findings = [*findings, *(Finding("audit", h, "unreachable", "high", f"{h} could not be checked", why[:300],
                                     "bring the host back (or fix its SSH access), then run this again")
                             for h, why in sorted(gone.items()))]
    rec = keep_findings(r.name, list(findings), list(hosts) if hosts is not None else None, sorted(gone))
    now = datetime.now(UTC)
    publish_findings(r.report, report.markdown(title, rec, now, notes) + appendix, report.rows(rec))
    r.report.notes.append(report.summary(rec, now) + " (the findings artifact lists them)")
    r.report.notes += report.expired_waiver_lines(rec.expired_waivers)
    r.report.facts["findings"] = rec.counts()
    floor = r.env.security.notify_at
    urgent = [x for x in rec.new if report.at_least(x.finding.severity, floor)]
    if urgent:
        shown = "; ".join(f"{x.finding.host}: {x.finding.title}" for x in urgent[:5])
        r.notify(f"{len(urgent)} new {floor}-or-worse finding(s): {shown}"
                 + (f" and {len(urgent) - 5} more" if len(urgent) > 5 else ""), "critical")
    if rec.expired_waivers:
        r.notify("; ".join(report.expired_waiver_lines(rec.expired_waivers)), "warning")
    return rec


def unreached(result: FanOutResult[Any]) -> dict[str, str]:
    """host → why, for the hosts of a fan-out that failed."""
    return {h: (o.message or "failed").removeprefix(f"{h}: ") for h, o in result.failed.items()}


def fail_if_unreached(gone: Mapping[str, str]) -> None:
    """End the run failed (after its report was published) when a host could not be checked."""
    if gone:
        raise UpkeepError(f"{len(gone)} host(s) could not be checked: " + "; ".join(f"{h}: {w}" for h, w in gone.items())
                          + " — their last findings are kept; the report covers the others")
