"""The quarterly infrastructure review (the Event Manager guide's schedule: infrastructure_review): what the fleet is
now, what changed since last quarter, and which operating systems are at or near their end of life. Read-only.

pre: the last review's snapshot (S3, beside the run records)
execute: every host's OS release, kernel and architecture (one constant script over SSH) · every service's version
(its health answer) · the certificate inventory (observed)
post: this snapshot kept (next quarter's baseline) · drift since the last one and within the fleet · end of life from
Debian's distro-info-data · the report; an unreachable host is kept as it was, named, and fails the run after the report
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow

from flows._findings import fail_if_unreached, unreached
from flows._review import publish
from flows._routine import Routine
from tasks.hosts import host_facts
from tasks.review_store import keep_snapshot, last_snapshot
from tasks.security import check_certificates
from tasks.services import service_versions
from upkeep.errors import ReviewInputError
from upkeep.reviews import infrastructure as infra
from upkeep.reviews.eol import EolStatus, default_file, eol_status, read_distro_info
from upkeep.routines import INFRASTRUCTURE_REVIEW


@flow(name=INFRASTRUCTURE_REVIEW.flow)
def infrastructure_review(environment: str = "development", config: str | None = None) -> dict[str, Any]:
    with Routine(INFRASTRUCTURE_REVIEW, environment, config) as r:
        hosts = r.select_hosts()
        with r.stage("pre"):
            before = last_snapshot(r.spec.id)
            previous = infra.Snapshot.from_json(before) if before else None
        with r.stage("execute"):
            result = r.group(host_facts, hosts, label="facts")
            facts: dict[str, Any] = {**result.returned(), **unreached(result)}
            versions = service_versions()
            names = [c.name for c in r.env.security.certificates]
            certs = r.group(check_certificates, names, label="certificate").returned() if names else {}
        with r.stage("post"):
            now = datetime.now(UTC)
            cfg = {h.name: (h.address, list(h.roles)) for h in r.env.hosts if h.name in hosts}
            current = infra.snapshot(r.environment, now, cfg, facts, versions, {
                c.name: {"target": c.target, "not_after": c.facts.not_after.isoformat(), "fingerprint": c.facts.fingerprint,
                         "issuer": c.facts.subject} for c in certs.values() if c.facts is not None})
            keep_snapshot(r.spec.id, current.to_json())
            eol = _eol(r, current, now)
            changes, within = infra.drift(previous, current), infra.drift_within(current)
            publish(r, infra.markdown(current, previous, changes, within, eol), infra.findings(changes, within, eol),
                    summary=infra.summary(current, previous, changes, eol),
                    tables={"hosts": [{"host": h, **{k: ", ".join(map(str, v)) if isinstance(v, list) else str(v)
                                                      for k, v in d.items()}} for h, d in current.hosts.items()],
                            "changes": [{"kind": c.kind, "subject": c.subject, "before": c.before, "after": c.after}
                                        for c in changes]})
            fail_if_unreached(unreached(result))
        return {"hosts": len(current.hosts), "changes": len(changes), "drift": len(within)}


def _eol(r: Routine, current: infra.Snapshot, now: datetime) -> dict[str, EolStatus]:
    """End of life per reachable host, from the configured distro-info file or the one for its OS."""
    cfg, out = r.env.reviews.infrastructure, {}
    files: dict[str, Any] = {}
    for host, d in current.hosts.items():
        if not current.reachable(host):
            continue
        os_id = str(d.get("os_id", "unknown"))
        try:
            path = cfg.distro_info or default_file(os_id)
            releases = files[path] if path in files else files.setdefault(path, read_distro_info(path))
        except ReviewInputError as exc:
            r.report.notes.append(f"End of life of {host} not known: {exc}")
            continue
        out[host] = eol_status(os_id, str(d.get("version_id", "")), str(d.get("codename", "")), releases, now.date(),
                               cfg.eol_warn)
    return out
