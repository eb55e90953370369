"""The daily security check (the Event Manager guide's Security Maintenance: "check for security patches daily";
certificates watched), read-only: installing stays in the window (security-patches, in weekly-maintenance).

pre: —
execute: the package lists refreshed and the security updates waiting on each host · every configured certificate
observed (expiry, chain, name, key)
post: findings against yesterday's (new / persisting with their age / fixed), waivers applied; a new critical
finding notifies at once
"""

from __future__ import annotations

from prefect import flow

from flows._findings import fail_if_unreached, report_findings, unreached
from flows._routine import Routine
from tasks.security import check_certificates, pending_security_updates
from upkeep.routines import SECURITY_CHECK


@flow(name=SECURITY_CHECK.flow)
def security_check(environment: str = "development", config: str | None = None) -> dict[str, int]:
    with Routine(SECURITY_CHECK, environment, config) as r:
        hosts = r.select_hosts()
        with r.stage("execute"):
            pending = r.group(pending_security_updates, hosts, label="pending security updates")
            names = [c.name for c in r.env.security.certificates]
            certs = r.group(check_certificates, names, label="certificate") if names else None
        with r.stage("post"):
            findings = [f for fs in pending.returned().values() for f in fs]
            findings += [f for c in (certs.returned().values() if certs else []) for f in c.findings()]
            rec = report_findings(r, "Daily security check", findings, unreached=unreached(pending), notes=[
                f"{sum(len(v) for v in pending.returned().values())} security update(s) pending on "
                f"{len(pending.returned())} host(s): installed by security-patches in the weekly window"])
            fail_if_unreached(unreached(pending))
        return rec.counts()
