"""The quarterly compliance audit (pure): each control mapped to the evidence that proves it, with a renewal date
(as Drata or Vanta keep it), judged Ready, Needs renewal or Failing; its report and findings
(the pack's manifest and keys: `upkeep.reviews.evidence`).

The evidence is durable run records and S3 objects (`upkeep.reviews.evidence`), not Prefect flow runs, which are
pruned long before an auditor asks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from upkeep import humanize
from upkeep.reviews.evidence import (
    STATUSES,
    ComplianceInputs,
    Control,
    ControlResult,
    EvidenceItem,
    EvidenceRecord,
    Status,
    age,
    aware,
    baseline_item,
    day,
    minute,
    quarter,
)
from upkeep.reviews.model import ReviewFinding
from upkeep.routines import CERTIFICATES, DR_TEST, SECURITY_AUDIT, SECURITY_PATCHES, SECURITY_REVIEW, VERIFY_BACKUP

SEVERE = ("high", "critical")


@dataclass
class _Judgement:
    """What one control's check found (built while checking, turned into a `ControlResult`)."""

    run: EvidenceRecord | None = None  # the newest run judged: its end dates the evidence
    holds: str = ""  # what the evidence shows when nothing fails
    failures: list[str] = field(default_factory=list)
    evidence: list[EvidenceItem] = field(default_factory=list)


def _runs(c: Control, inputs: ComplianceInputs, runs: Sequence[EvidenceRecord]) -> _Judgement:
    """The newest of `runs` as the evidence; no run, or a failed one, fails the control."""
    j, dep = _Judgement(), c.renew.deployment_name(inputs.environment)
    if not runs:
        j.failures.append(f"no {c.noun} on record; run {dep}")
        return j
    j.run = runs[-1]
    j.evidence.append(j.run.item())
    if j.run.status == "failed":
        outcome = " ".join(str(j.run.record.get("outcome", "")).split())[:160]
        j.failures.append(f"the last {j.run.routine} run, {minute(j.run.ended_at)}, failed"
                          + (f" ({outcome})" if outcome else "") + f"; fix its cause and run {dep}")
    return j


def _fact(j: _Judgement, c: Control, inputs: ComplianceInputs, name: str) -> Any:
    """A fact of the judged run, or None with a failure naming it (records older than their facts lack them)."""
    assert j.run is not None
    if name not in j.run.facts:
        j.failures.append(f"the {j.run.routine} record of {day(j.run.ended_at)} has no facts.{name} (written before that "
                          f"fact was recorded); run {c.renew.deployment_name(inputs.environment)} for a record that has it")
        return None
    return j.run.facts[name]


def _judged(j: _Judgement) -> bool:
    return j.run is not None and not j.failures


def _open(inputs: ComplianceInputs, keep: Callable[[Mapping[str, Any]], bool]) -> list[Mapping[str, Any]]:
    """The finding documents `keep` selects, once per finding id (the earliest first seen), oldest first."""
    by_id: dict[str, Mapping[str, Any]] = {}
    for d in inputs.findings:
        if d.get("status") != "fixed" and keep(d):
            old = by_id.get(d["id"])
            if old is None or aware(d["first_seen"]) < aware(old["first_seen"]):
                by_id[d["id"]] = d
    return sorted(by_id.values(), key=lambda d: (aware(d["first_seen"]), d["id"]))


def _days(sla: timedelta) -> str:
    """'7-day' (an SLA in whole days), else '36 h'."""
    return f"{sla.days}-day" if sla % timedelta(days=1) == timedelta(0) else humanize.duration(sla)


def _named(docs: Sequence[Mapping[str, Any]], now: datetime, text: Callable[[Mapping[str, Any]], str]) -> str:
    shown = ", ".join(f"{d['host']} {text(d)} ({age(now - aware(d['first_seen']))})" for d in docs[:3])
    return shown + (f" and {len(docs) - 3} more" if len(docs) > 3 else "")


def _backups(c: Control, inputs: ComplianceInputs) -> _Judgement:
    runs = inputs.runs("verify-backup", "backup")
    # a sampled pass that found nothing (a share, no verdict) neither verifies nor fails a backup: not evidence
    j = _runs(c, inputs, [r for r in runs if "verified" in r.facts or (r.routine == "verify-backup" and "share" not in r.facts)])
    if not _judged(j):
        return j
    assert j.run is not None
    verified, key, sha = (_fact(j, c, inputs, n) for n in ("verified", "manifest_key", "manifest_sha256"))
    backup = j.run.facts.get("backup", "?")
    dep = c.renew.deployment_name(inputs.environment)
    if verified is False:
        j.failures.append(f"backup {backup} did not pass verification ({j.run.routine}, {minute(j.run.ended_at)}); "
                          f"see that run's report, fix the backup and run {dep}")
    if key is None or sha is None:
        return j
    obj = inputs.object(key)
    if obj is not None and obj.sha256 != sha:
        j.failures.append(f"the manifest s3://{obj.bucket}/{key} now has {humanize.digest(obj.sha256, 'sha256')}, not the "
                          f"verified {humanize.digest(sha, 'sha256')}: it changed after verification; find out why, "
                          f"then run {dep}")
    j.evidence.append(EvidenceItem("s3-object", f"{obj.what if obj else 'backup manifest'} of {backup}", None,
                                   bucket=obj.bucket if obj else str(j.run.facts.get("manifest_bucket", "")), key=key,
                                   sha256=sha, size=obj.size if obj else None))
    j.holds = f"backup {backup} verified by {j.run.routine} on {minute(j.run.ended_at)}"
    return j


def _dr_test(c: Control, inputs: ComplianceInputs) -> _Judgement:
    j = _runs(c, inputs, inputs.runs("dr-test"))
    if not _judged(j):
        return j
    assert j.run is not None
    rto, facts = _fact(j, c, inputs, "rto_seconds"), j.run.facts
    target = (float(facts["rto_target_seconds"]) if "rto_target_seconds" in facts
              else inputs.rto_target.total_seconds() if inputs.rto_target is not None else None)
    dep, when = c.renew.deployment_name(inputs.environment), day(j.run.ended_at)
    if target is None:
        j.failures.append(f"the DR test of {when} has no facts.rto_target_seconds and no rto_target is configured; set "
                          f"dr.rto_target and run {dep}")
    if rto is None or target is None:
        return j
    if float(rto) > target:
        j.failures.append(f"the DR test of {when} took {humanize.duration(float(rto))} to recover, over its "
                          f"{humanize.duration(target)} RTO target; shorten the restore and run {dep}")
    elif facts.get("passed") is False:
        j.failures.append(f"the DR test of {when} did not pass (an RPO or read check failed: see its report); fix it "
                          f"and run {dep}")
    j.holds = (f"the DR test of backup {facts.get('backup', '?')} restored in {humanize.duration(float(rto))}, within "
               f"its {humanize.duration(target)} RTO target, on {minute(j.run.ended_at)}")
    return j


def _patches(c: Control, inputs: ComplianceInputs) -> _Judgement:
    j, now, sla = _runs(c, inputs, inputs.runs("security-patches")), inputs.at, inputs.patch_sla
    late = _open(inputs, lambda d: d.get("source") == "security-updates" and d.get("status") in ("new", "persisting")
                 and now - aware(d["first_seen"]) > sla)
    if late:
        j.failures.append(f"{humanize.count(len(late), 'security update')} pending longer than the {_days(sla)} patch SLA: "
                          f"{_named(late, now, lambda d: str(d['key']))}; run "
                          f"{c.renew.deployment_name(inputs.environment)}")
    if j.run is not None:
        j.holds = (f"no security update pending longer than the {_days(sla)} SLA, and security patches were applied on "
                   f"{minute(j.run.ended_at)}")
    return j


def _certificates(c: Control, inputs: ComplianceInputs) -> _Judgement:
    j = _runs(c, inputs, inputs.runs("certificates"))
    bad = _open(inputs, lambda d: d.get("source") == "tls" and d.get("severity") in SEVERE
                and d.get("status") in ("new", "persisting"))
    if bad:
        j.failures.append(f"{humanize.count(len(bad), 'TLS finding')} open at high or critical: "
                          f"{_named(bad, inputs.at, lambda d: str(d['title']))}; renew or fix them, then run "
                          f"{c.renew.deployment_name(inputs.environment)}")
    if j.run is not None:
        j.holds = f"no TLS finding open at high or critical, and certificates were checked on {minute(j.run.ended_at)}"
    return j


def _access(c: Control, inputs: ComplianceInputs) -> _Judgement:
    j = _runs(c, inputs, inputs.runs("security-review"))
    approved = sorted((b for b in inputs.baselines if b.get("kind") == "access"), key=lambda b: str(b["host"]))
    j.evidence += [baseline_item(b) for b in approved]
    dep = c.renew.deployment_name(inputs.environment)
    if not approved:
        j.failures.append(f"no approved access baseline on record; run {dep} and approve its access review")
    if j.run is not None and j.run.status != "failed" and _fact(j, c, inputs, "approved") is False:
        j.failures.append(f"the access review of {day(j.run.ended_at)} was not approved; approve it in the Prefect UI "
                          f"or run {dep} again")
    if j.run is not None:
        latest = max(approved, key=lambda b: aware(b["approved_at"]), default=None)
        j.holds = (f"{humanize.count(len(approved), 'approved access baseline')} on record"
                   + (f" (the latest by {latest['approved_by']} on {day(aware(latest['approved_at']))})" if latest else "")
                   + f", and the access review was approved on {minute(j.run.ended_at)}")
    return j


def _audit(c: Control, inputs: ComplianceInputs) -> _Judgement:
    j, now, sla = _runs(c, inputs, inputs.runs("security-audit")), inputs.at, inputs.patch_sla
    severe = _open(inputs, lambda d: d.get("scope") == "security-audit" and d.get("severity") in SEVERE)
    late = [d for d in severe if d.get("status") != "waived" and now - aware(d["first_seen"]) > sla]
    if late:
        j.failures.append(f"{humanize.count(len(late), 'high or critical audit finding')} open longer than the "
                          f"{_days(sla)} SLA and not waived: {_named(late, now, lambda d: str(d['title']))}; fix them or "
                          f"waive them (security.waivers, with an owner and expiry)")
    if j.run is not None:
        waived = sum(d.get("status") == "waived" for d in severe)
        j.holds = ((f"{humanize.count(len(severe), 'high or critical finding')} open, {waived} waived, the rest within "
                    f"the {_days(sla)} SLA" if severe else "no high or critical finding open")
                   + f", and the security audit ran on {minute(j.run.ended_at)}")
    return j


CONTROLS: tuple[tuple[Control, Callable[[Control, ComplianceInputs], _Judgement]], ...] = (
    (Control("backups-verified", "Backups are verified",
             "The newest backup is verified (integrity, completeness, test restore) at least every 2 days.",
             2, ("verify-backup", "backup"), VERIFY_BACKUP, "verified backup"), _backups),
    (Control("dr-test-passed", "Disaster recovery is tested",
             "A DR test restores the latest verified backup within its RTO target at least once a quarter.",
             92, ("dr-test",), DR_TEST, "DR test"), _dr_test),
    (Control("patches-within-sla", "Security patches within the SLA",
             "Security updates are applied within the patch SLA; security patches run weekly.",
             8, ("security-patches",), SECURITY_PATCHES, "security-patches run"), _patches),
    (Control("certificates-valid", "Certificates are valid",
             "Certificates are checked and renewed weekly; none is expired or about to expire.",
             8, ("certificates",), CERTIFICATES, "certificates run"), _certificates),
    (Control("access-reviewed", "Access is reviewed",
             "Accounts, SSH keys and sudo rules are reviewed and approved weekly.",
             8, ("security-review",), SECURITY_REVIEW, "approved access review"), _access),
    (Control("audit-findings-handled", "Audit findings are handled",
             "A full security audit runs monthly; its high and critical findings are fixed within the SLA or waived.",
             32, ("security-audit",), SECURITY_AUDIT, "security audit"), _audit),
)


def _result(c: Control, inputs: ComplianceInputs, j: _Judgement) -> ControlResult:
    now, dep = inputs.at, c.renew.deployment_name(inputs.environment)
    at = j.run.ended_at if j.run is not None else None
    renew_by = at + c.period if at is not None else None
    old = now - at if at is not None else timedelta(0)
    if j.failures:
        status: Status = "Failing"
        reason = "; ".join(j.failures)
        if at is not None and old > c.period and j.run is not None and j.run.status != "failed":
            reason += f"; the last {c.noun}, {day(at)}, is {age(old)} old (period {c.period_days} days): run {dep}"
    elif old > c.void_after:
        status, reason = "Failing", (f"no {c.noun} within {c.period_days} days (the last, {day(at)}, is {age(old)} old); "
                                     f"run {dep}")
    elif old > c.period:
        status, reason = "Needs renewal", (f"{j.holds}, but that is {age(old)} old, past its {c.period_days}-day period "
                                           f"since {day(renew_by)}; run {dep} to renew")
    else:
        status, reason = "Ready", f"{j.holds} ({age(old)} ago); renew by {day(renew_by)}"
    return ControlResult(c, status, reason, at, renew_by, tuple(j.evidence))


def evaluate(inputs: ComplianceInputs) -> list[ControlResult]:
    """Every control judged on the inputs, in the guide's order."""
    return [_result(c, inputs, check(c, inputs)) for c, check in CONTROLS]


def summary(results: Sequence[ControlResult]) -> str:
    """'4 of 6 controls Ready, 1 Needs renewal, 1 Failing: dr-test-passed — no DR test within 92 days (…); run …'"""
    n = {s: sum(r.status == s for r in results) for s in STATUSES}
    text = f"{n['Ready']} of {len(results)} controls Ready" + "".join(f", {n[s]} {s}" for s in STATUSES[1:] if n[s])
    failing = [f"{r.control.id} — {r.reason}" for r in results if r.status == "Failing"]
    return text + (": " + ". ".join(failing) if failing else "") + "."


def _short(e: EvidenceItem) -> str:
    if e.kind == "run-record":
        return f"{e.routine} run {e.flow_run_id[:8]}"
    return e.what + (f" ({humanize.digest(e.sha256, 'sha256')})" if e.sha256 else "")


def markdown(results: Sequence[ControlResult], inputs: ComplianceInputs) -> str:
    """The pack's report: the verdict in a sentence, a table of controls, then each control's evidence."""
    lines = [f"## Compliance evidence: {inputs.environment}, {quarter(inputs.at)[0]} (as of {minute(inputs.at)})", "",
             summary(results), "",
             "| control | status | evidence date | renew by | evidence |", "|---|---|---|---|---|"]
    for r in results:
        shown = ", ".join(_short(e) for e in r.evidence[:3]) + (f" and {len(r.evidence) - 3} more"
                                                                 if len(r.evidence) > 3 else "")
        lines.append(f"| {r.control.id} | **{r.status}** | {day(r.evidence_at)} | {day(r.renew_by)} | "
                     f"{' '.join(shown.split()).replace('|', '/') or 'none'} |")
    for r in results:
        c = r.control
        lines += ["", f"### {c.id}: {c.title} — {r.status}", "",
                  f"_{c.guide}_ Evidence lasts {humanize.count(c.period_days, 'day')}; routines cited: "
                  f"{', '.join(c.routines)}.", "", r.reason[0].upper() + r.reason[1:] + ".", ""]
        lines += [f"- {e.kind}: {e.describe()}" for e in r.evidence] or ["- no evidence on record"]
    return "\n".join(lines) + "\n"


def findings(results: Iterable[ControlResult]) -> list[ReviewFinding]:
    """A critical finding per Failing control, a warning per one that Needs renewal."""
    out = []
    for r in results:
        if r.status != "Ready":
            out.append(ReviewFinding("critical" if r.status == "Failing" else "warning", f"control {r.control.id}",
                                     r.reason + ".", f"evidence {day(r.evidence_at)}, renew by {day(r.renew_by)}; "
                                     f"{humanize.count(len(r.evidence), 'item')} cited"))
    return out
