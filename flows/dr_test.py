"""Quarterly disaster-recovery test (the guide's Recovery Testing): restore the latest verified
backup into the test environment, start the application on it, check it works, and measure the
recovery time (RTO) and the age of the data recovered (RPO) against their targets."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from prefect import flow

from flows._routine import Routine
from tasks.hosts import service_command
from tasks.mongo import dr_read_query, restore_into_dr
from tasks.s3 import latest_verified_backup, load_manifest
from tasks.services import verify_service
from upkeep.decisions.recovery import recovery_verdict
from upkeep.errors import RecoveryTestFailed
from upkeep.humanize import count, duration
from upkeep.routines import DR_TEST


@flow(name=DR_TEST.flow)
def dr_test(environment: str = "development", config: str | None = None, backup_id: str | None = None) -> dict[str, Any]:
    with Routine(DR_TEST, environment, config) as r:
        dr = r.env.dr
        if dr is None:
            raise RecoveryTestFailed(f"environments.{environment}.dr is not configured")
        started = time.monotonic()
        with r.stage("pre"):
            backup_id = backup_id or latest_verified_backup()
            if backup_id is None:
                raise RecoveryTestFailed("no verified backup to restore: run verify-backup first")
            manifest, problems = load_manifest(backup_id)
            if manifest is None:
                raise RecoveryTestFailed(f"backup {backup_id}: {problems[0]['message']}")
        with r.stage("execute"):
            for service in dr.services:
                service_command(dr.host, service, "stop")
            restored = restore_into_dr(backup_id)
            bad = [f for f in restored["findings"] if not f["ok"]]
            if bad:
                raise RecoveryTestFailed(f"restore into the test environment is wrong: {bad[0]['subject']}: {bad[0]['message']}")
            for service in dr.services:
                service_command(dr.host, service, "start")
        with r.stage("post"):
            for service in dr.services:
                verify_service(dr.host, service)  # retried until healthy
            rto = time.monotonic() - started  # start of the test → application healthy
            for q in dr.queries:
                dr_read_query(q.collection, q.filter, q.min_count, database=q.database)
            verdict = recovery_verdict(rto, datetime.now(UTC) - manifest.created_at, dr.rto_target, dr.rpo_target)
            r.report.facts.update({"backup": backup_id, "rto_seconds": round(rto, 1), "passed": verdict.ok,
                                   "rto_target_seconds": dr.rto_target.total_seconds(),
                                   "rpo_seconds": round(verdict.rpo_seconds, 1)})
            r.report.notes += [f"backup `{backup_id}`: {count(restored['documents'], 'document')} restored in "
                               f"{duration(restored['seconds'])}",
                               *verdict.lines]
            for line in verdict.lines:
                r.report.add("post", "recovery-objective", "done" if "PASS" in line else "failed", detail=line)
            if not verdict.ok:
                r.notify("disaster-recovery test FAILED: " + "; ".join(verdict.lines), "critical")
                raise RecoveryTestFailed("; ".join(verdict.lines))
            r.notify("disaster-recovery test passed: " + "; ".join(verdict.lines))
        return {"backup_id": backup_id, "rto_seconds": rto, "rpo_seconds": verdict.rpo_seconds, "ok": True}
