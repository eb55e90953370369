"""The full security audit (the Event Manager guide's Security Maintenance: vulnerability scan, dependency check,
permission audit, SSL certificate check, firewall rule review; and the access review), monthly, read-only, fanned
out over the hosts. One findings schema for every source, kept across runs.

pre: the approved baselines (permissions, firewall, access) of every host
execute: every host audited in one pass (installed packages against the vulnerability feed, npm / pip audits,
SUID / SGID / world-writable files, sshd settings, the firewall ruleset, access) · the certificates observed
post: findings against the last audit's (new / persisting / fixed), waivers applied · hosts whose permissions or
firewall differ from their approved baseline proposed for approval in the UI; an approved one becomes the baseline
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._findings import fail_if_unreached, report_findings, unreached
from flows._routine import Routine
from tasks.monitoring import approve_baselines, approved_baselines
from tasks.security import PARTS, audit_hosts, check_certificates
from upkeep.routines import SECURITY_AUDIT
from upkeep.security.audit import audit_findings, describe_change, proposals
from upkeep.security.report import state_markdown

APPROVED_HERE = ("permissions", "firewall")  # the access baseline is the weekly security review's to approve


@flow(name=SECURITY_AUDIT.flow)
def security_audit(environment: str = "development", config: str | None = None, approve: bool = True,
                   hosts: list[str] | None = None) -> dict[str, Any]:
    """`approve` false: report only, ask nobody (a run started to look); `hosts`: audit only these (the others'
    findings are kept as they were)."""
    with Routine(SECURITY_AUDIT, environment, config) as r:
        hosts = r.select_hosts(hosts)
        with r.stage("pre"):
            baselines = {kind: approved_baselines(kind, hosts) for kind in ("permissions", "firewall", "access")}
        with r.stage("execute"):
            result = r.group(audit_hosts, hosts, label="audit", parts=list(PARTS))
            audits, gone = result.returned(), unreached(result)
            names = [c.name for c in r.env.security.certificates]
            certs = r.group(check_certificates, names, label="certificate").returned() if names else {}
        with r.stage("post"):
            findings = audit_findings(audits, baselines) + [f for c in certs.values() for f in c.findings()]
            notes = [f"{kind} baseline of {h}: {b.describe()}" for kind, by in baselines.items()
                     for h, b in by.items() if b is not None][:20]
            proposed = proposals(audits, baselines, APPROVED_HERE)
            appendix = "".join(state_markdown(f"Proposed {kind} baseline", by, baselines[kind]) for kind, by in proposed.items())
            rec = report_findings(r, "Security audit", findings, hosts=hosts, notes=notes, unreached=gone, appendix=appendix)
            asked = {f"{kind}:{h}": describe_change(kind, items, baselines[kind][h])
                     for kind, by in proposed.items() for h, items in by.items()}
            for item in r.approve_items(asked, "baselines") if approve else []:
                kind, host = item.split(":", 1)
                approve_baselines(kind, {host: proposed[kind][host]}, r.approver or "unknown", "security audit")
            fail_if_unreached(gone)
        return {"findings": rec.counts(), "proposed": sorted(asked)}
