"""Database maintenance (the Event Manager guide's Database Maintenance and Performance Optimization; the
Event Editor's weekly `optimize_database` and `clean_old_sessions`), weekly in the window.

pre: window guard · server reachable · the rules checked against the live database · a verified backup younger
than `backup_max_age` (else the backup routine runs first) · statistics snapshot, kept across runs
plan (pure, over the snapshots): unused and redundant indexes, fastest-growing collections, what to compact,
slow query shapes; stale documents counted per rule. `dry_run` (the default) stops here: the plan is the report
execute: per rule, archive → verify → delete (or delete alone); unused indexes hidden, those hidden on an earlier
run and still unused dropped once approved (or `drop_unused: auto`); validate; compact where worth it
post: statistics again; before → after per collection; notify
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from prefect import State, flow

from flows._routine import Routine
from flows.backup import backup
from tasks.database import (
    check_rules,
    compact_collection,
    hidden_indexes,
    remove_stale,
    set_index,
    slow_query_shapes,
    snapshot_database,
    stored_snapshots,
    validate_collection,
)
from tasks.mongo import ping_database
from tasks.s3 import latest_verified_backup
from upkeep.backup.manifest import backup_time
from upkeep.dbmaint.collections import CollectionStats, compact_candidates, growth
from upkeep.dbmaint.indexes import index_plan, redundant_indexes, unused_indexes
from upkeep.dbmaint.snapshot import collection_history, index_snapshots
from upkeep.errors import UpkeepError
from upkeep.humanize import duration, size
from upkeep.routines import DATABASE_MAINTENANCE


@flow(name=DATABASE_MAINTENANCE.flow)
def database_maintenance(environment: str = "development", config: str | None = None,
                         dry_run: bool = True) -> dict[str, Any] | State:
    """`dry_run` (default) plans and reports, deleting and changing nothing; start a run with it false to act."""
    with Routine(DATABASE_MAINTENANCE, environment, config, dry_run=dry_run) as r:
        if not r.guard():
            return r.skipped()
        dm = r.env.database_maintenance
        if dm is None:
            r.report.outcome = "not configured: add database_maintenance to this environment"
            return {}
        with r.stage("pre"):
            ping_database()
            r.report.notes += [f"rule: {line}" for line in check_rules()]
            if not dry_run and dm.stale_data:
                _backup_first(r, environment, config)
            before = snapshot_database(keep=True)
            history = stored_snapshots(days=max(dm.unused_index_age.total_seconds() / 86400 * 4, 30))
        with r.stage("plan"):
            snaps = index_snapshots(history or [before])
            usage = unused_indexes(snaps, dm.unused_index_age, dm.protected_indexes)
            hidden = hidden_indexes()
            plan = index_plan(usage, hidden, [ix["ns"] + "." + ix["name"] for ix in before["indexes"]], datetime.now(UTC),
                              dm.drop_unused)
            _report_plan(r, before, usage, plan, collection_history(history or [before]), dm)
            stale = [remove_stale(i, rule.collection, dry_run=True, archive_id="plan") for i, rule in enumerate(dm.stale_data)]
            for result in stale:
                r.report.add("plan", "stale-data", "planned", host=result.rule.collection, detail=result.describe(planned=True))
            if dm.profile_slow_ms:
                for q in slow_query_shapes(dm.profile_slow_ms):
                    r.report.add("plan", "slow query", "planned", detail=f"{q['shape']}: {q['count']} runs, p50 "
                                 f"{q['p50_ms']:.0f} ms, p95 {q['p95_ms']:.0f} ms, {q['examined']:,.0f} examined / "
                                 f"{q['returned']:,.0f} returned per run")
            if dry_run:
                r.report.outcome = "dry run: plan published, nothing deleted or changed"
                return {"matching": {s.rule.collection: s.matching for s in stale}}
        archive_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        with r.stage("execute", disruptive=True):
            done = {}
            for i, rule in enumerate(dm.stale_data):
                started = time.monotonic()
                done[rule.collection] = result = remove_stale(i, rule.collection, dry_run=False, archive_id=archive_id)
                r.report.add("execute", "stale-data", "done", host=rule.collection, detail=result.describe(),
                             seconds=time.monotonic() - started)
            _indexes(r, plan, dm.drop_unused)
            _validate_and_compact(r, before, dm)
        with r.stage("post"):
            after = snapshot_database(keep=False)
            _report_before_after(r, before, after)
            archived = sum(x.archived for x in done.values())
            deleted = sum(x.deleted + x.resumed for x in done.values())
            r.notify(f"database maintenance: {deleted} stale document(s) removed ({archived} archived first), "
                     f"{len(plan.hide)} index(es) hidden, {len(plan.drop)} proposed for dropping")
        return {"deleted": {k: v.deleted for k, v in done.items()}, "archived": {k: v.archived for k, v in done.items()}}


def _backup_first(r: Routine, environment: str, config: str | None) -> None:
    """A verified backup younger than `backup_max_age`, or the backup routine runs now (and must verify)."""
    dm = r.env.database_maintenance
    assert dm is not None
    latest = latest_verified_backup()
    age = datetime.now(UTC) - backup_time(latest) if latest else None
    if age is not None and age <= dm.backup_max_age:
        r.report.notes.append(f"verified backup {latest} ({duration(age)} old): nothing is deleted without it")
        return
    r.report.notes.append(f"no verified backup younger than {duration(dm.backup_max_age)}: the backup routine runs first")
    backup(environment=environment, config=config)
    latest = latest_verified_backup()
    if latest is None or datetime.now(UTC) - backup_time(latest) > dm.backup_max_age:
        raise UpkeepError("no verified backup after the backup routine ran: nothing is deleted; see the backup run's report")


def _report_plan(r: Routine, snap: dict[str, Any], usage: Any, plan: Any, history: Any, dm: Any) -> None:
    if not usage.available:
        r.report.notes.append(usage.note)
    for u in usage.unused:
        r.report.add("plan", "unused index", "planned", host=u.index.id, detail=u.detail)
    for ix, by in redundant_indexes(index_snapshots([snap])[0].indexes).items():
        r.report.add("plan", "redundant index", "planned", host=ix,
                     detail=f"a prefix of {by}: review it (never dropped automatically)")
    for g in growth(history):
        sign = "+" if g.bytes_per_day >= 0 else "-"
        r.report.add("plan", "growth", "done", host=g.ns, detail=f"{sign}{size(abs(g.bytes_per_day))}/day, "
                     f"{g.docs_per_day:+,.0f} documents/day over {g.days:.1f} days")
    for c in compact_candidates([CollectionStats(**c) for c in snap["collections"]], dm.compact.min_free_share,
                                dm.compact.min_free_bytes):
        r.report.add("plan", "compact", "planned" if c.compact else "skipped", host=c.ns, detail=c.detail)


def _indexes(r: Routine, plan: Any, policy: str) -> None:
    """Hide the newly unused indexes; drop those hidden on an earlier run that are still unused: approved in the
    UI, or `auto`."""
    for u in plan.hide:
        r.report.add("execute", "hide index", "done", host=u.index.id, detail=f"{set_index(u.index.id, 'hide')}: {u.detail}")
    items = {u.index.id: u.detail for u in plan.drop}
    approved = list(items) if policy == "auto" else r.approve_items(items, "indexes")
    for u in plan.drop:
        if u.index.id in approved:
            r.report.add("execute", "drop index", "done", host=u.index.id, detail=set_index(u.index.id, "drop"))
        else:
            r.report.add("execute", "drop index", "skipped", host=u.index.id, detail="hidden, still unused: not approved")


def _validate_and_compact(r: Routine, before: dict[str, Any], dm: Any) -> None:
    """`validate` every collection (when configured); `compact` those whose free storage makes it worth it."""
    for c in before["collections"]:
        name = c["ns"].split(".", 1)[1]
        if dm.validate_collections:
            started = time.monotonic()
            v = validate_collection(name)
            r.report.add("execute", "validate", "failed" if v["valid"] is False else "done", host=name, detail=v["detail"],
                         seconds=time.monotonic() - started)
    stats = [CollectionStats(**c) for c in before["collections"]]
    for verdict in compact_candidates(stats, dm.compact.min_free_share, dm.compact.min_free_bytes):
        if verdict.compact:
            name = verdict.ns.split(".", 1)[1]
            started = time.monotonic()
            said = compact_collection(name)
            r.report.add("execute", "compact", "done", host=name, detail=f"{verdict.detail}: {said}",
                         seconds=time.monotonic() - started)


def _report_before_after(r: Routine, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Per collection: documents, data size and indexes before → after."""
    was = {c["ns"]: c for c in before["collections"]}
    for c in after["collections"]:
        b = was.get(c["ns"], {"count": 0, "size": 0, "indexes": 0})
        r.report.add("post", "statistics", "done", host=c["ns"],
                     detail=f"{b['count']:,} → {c['count']:,} documents; {size(b['size'])} → {size(c['size'])} of data; "
                            f"{b['indexes']} → {c['indexes']} indexes")
