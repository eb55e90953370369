"""The weekly security review (the Event Editor guide's Security Review: security logs, access patterns,
vulnerabilities, user permissions), approved in the Prefect UI: that approval, who and when, is the evidence the
compliance audit cites.

pre: the week's security events from the log analysis' daily summaries (failed logins, bursts of 401/403/429, new
sources on admin paths, probes)
execute: the access review on every host: accounts with a login shell, sudo rules, authorized_keys fingerprints
post: findings (what changed since the approved review); the review asked for approval in the UI; the approved
hosts' access kept as the new approved review
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow

from flows._findings import fail_if_unreached, report_findings, unreached
from flows._routine import Routine
from tasks.log_analysis import daily_summaries
from tasks.monitoring import approve_baselines, approved_baselines
from tasks.security import audit_hosts
from upkeep.routines import SECURITY_REVIEW
from upkeep.security.access import access_findings, log_findings
from upkeep.security.audit import describe_change
from upkeep.security.report import state_markdown


@flow(name=SECURITY_REVIEW.flow)
def security_review(environment: str = "development", config: str | None = None) -> dict[str, Any]:
    with Routine(SECURITY_REVIEW, environment, config) as r:
        hosts = r.select_hosts()
        days = r.env.security.review_days
        with r.stage("pre"):
            summaries, missing, unread = daily_summaries((datetime.now(UTC) - timedelta(days=1)).date(), days)
            approved = approved_baselines("access", hosts)
        with r.stage("execute"):
            result = r.group(audit_hosts, hosts, label="access", parts=["access"])
            access, gone = {h: a.access for h, a in result.returned().items()}, unreached(result)
        with r.stage("post"):
            findings = log_findings(summaries, environment)
            for host, items in access.items():
                b = approved[host]
                findings += access_findings(items, b.items if b else None, host)
            notes = [f"log analysis summaries missing for {', '.join(missing)}: those days' events are not in this review"
                     + (f" ({unread})" if unread else " (log-analysis runs daily in daily-maintenance)")] if missing else []
            report_findings(r, "Security review", findings, notes=notes, unreached=gone,
                            appendix=state_markdown("Access under review", access, approved))
            asked = {f"access:{h}": describe_change("access", items, approved[h]) for h, items in access.items()}
            ok = r.approve_items(asked, "baselines")
            if ok:
                approve_baselines("access", {i.split(":", 1)[1]: access[i.split(":", 1)[1]] for i in ok},
                                  r.approver or "unknown", "weekly security review")
            else:
                r.report.notes.append("the access review was not approved: the last approved review stays the evidence")
            fail_if_unreached(gone)
        return {"approved": ok, "findings": r.report.facts.get("findings", {})}

