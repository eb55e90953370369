"""Certificates (the Event Manager guide's Security Maintenance: "check certificates weekly, renew under 30 days"),
in the window: renewal is due under min(30 days, a third of the certificate's lifetime), so a 6-day certificate
renews after 4 days instead of on every run (certbot#9971).

pre: every configured certificate observed (the served one, or the file) and judged
execute: each due one with a `renew` command: renew, then reload, on its host
post: each renewed one observed again — it must have changed and be sound, else the run fails; findings reported
"""

from __future__ import annotations

from typing import Any

from prefect import State, flow

from flows._findings import report_findings
from flows._routine import Routine
from tasks.security import check_certificates, renew_certificate
from upkeep.errors import UpkeepError
from upkeep.routines import CERTIFICATES
from upkeep.security.certcheck import CertResult
from upkeep.security.renewal import renewal_outcome


@flow(name=CERTIFICATES.flow)
def certificates(environment: str = "development", config: str | None = None,
                 emergency: bool = False) -> dict[str, Any] | State:
    """`emergency`: renew outside the window, as the environment's emergency policy allows (an expiring certificate)."""
    with Routine(CERTIFICATES, environment, config) as r:
        if not r.guard(emergency):
            return r.skipped()
        checks = {c.name: c for c in r.env.security.certificates}
        with r.stage("pre"):
            before: dict[str, CertResult] = r.group(check_certificates, list(checks), label="certificate").returned() \
                if checks else {}
        due = [n for n, c in before.items() if c.due and checks[n].renew]
        r.report.notes += [f"{n}: renewal due but no renew command configured: renew it by hand"
                           for n, c in before.items() if c.due and not checks[n].renew]
        with r.stage("execute", disruptive=True):
            for name in due:
                r.report.add("execute", "renew", "done", host=name, detail=renew_certificate(name))
        with r.stage("post"):
            after = r.group(check_certificates, due, label="re-check").returned() if due else {}
            failed = []
            for name in due:
                ok, why = renewal_outcome(before[name], after.get(name))
                r.report.add("post", "renewal", "done" if ok else "failed", host=name, detail=why)
                if not ok:
                    failed.append(f"{name}: {why}")
            final = {**before, **after}
            report_findings(r, "Certificates", [f for c in final.values() for f in c.findings()])
            if failed:
                raise UpkeepError("certificate renewal did not take effect: " + "; ".join(failed))
        return {"renewed": due, "checked": len(before)}
