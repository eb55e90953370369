"""Prune runs (daily): delete the Prefect flow runs of the environment's health checks older than
`monitoring.health_runs_kept` (default 7 days), a batch at a time — only those: DR tests, audits,
updates and their approvals stay for the compliance audit (Prefect's own flow-run vacuum would take
them too), and every run's outcome is kept in S3 anyway (upkeep.runrecords).

plan: the old runs, oldest first (at most `batch`) · execute: delete them (dry run by default; the
scheduled deployment passes dry_run=false). Idempotent: a run already gone counts as deleted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow

from flows._routine import Routine
from tasks.prefect_runs import delete_runs, old_runs
from upkeep.humanize import count, duration
from upkeep.routines import HEALTH_CHECK, PRUNE_RUNS


@flow(name=PRUNE_RUNS.flow)
def prune_runs(environment: str = "development", config: str | None = None, dry_run: bool = True,
               batch: int = 2000) -> dict[str, Any]:
    with Routine(PRUNE_RUNS, environment, config, dry_run=dry_run) as r:
        keep = r.env.monitoring.health_runs_kept if r.env.monitoring else timedelta(days=7)
        deployment = HEALTH_CHECK.deployment_path(environment)
        with r.stage("plan"):
            ids = old_runs(deployment, datetime.now(UTC) - keep, batch)
            r.report.add("plan", "old runs", "planned" if ids else "done",
                         detail=f"{count(len(ids), 'run')} of {deployment} ended over {duration(keep)} ago"
                                + (f" (the oldest {batch}; the next run takes the rest)" if len(ids) == batch else ""))
        with r.stage("execute"):
            deleted = delete_runs(ids, dry_run=dry_run)
            r.report.add("execute", "delete", "skipped" if dry_run else "done",
                         detail="dry run: nothing deleted" if dry_run else f"{count(deleted, 'flow run')} deleted")
        r.report.outcome = (f"dry run: {count(len(ids), 'run')} would be deleted" if dry_run
                            else f"{count(deleted, 'old health-check run')} deleted")
        return {"planned": len(ids), "deleted": deleted}
