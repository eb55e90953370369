"""Tasks of the database maintenance that touch MongoDB (and, to archive, S3): rule checks, statistics
snapshots, stale data, indexes, validate, compact, slow query shapes.

A command the server does not have (SecantusDB: `compact`) is "not supported by this server", not a failure.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import get_run_logger
from pymongo.errors import OperationFailure, PyMongoError

from tasks._base import resources, step
from upkeep.dbmaint.archive import RuleResult, StaleRule, run_rule
from upkeep.dbmaint.collections import slow_shapes
from upkeep.dbmaint.snapshot import take_snapshot, unsupported
from upkeep.errors import ConfigError, DatabaseError
from upkeep.humanize import duration


def _db() -> Any:
    res = resources()
    dm, mongo = res.env.database_maintenance, res.env.mongodb
    assert dm is not None and mongo is not None
    return res.mongo[dm.database or mongo.databases[0]]


def _rule(i: int) -> StaleRule:
    dm = resources().env.database_maintenance
    assert dm is not None
    r = dm.stale_data[i]
    return StaleRule(r.collection, r.date_field, r.older_than, r.filter, r.archive)


@step("check-rules", cache=False)
def check_rules() -> list[str]:
    """Every stale-data rule against the live database, before anything runs: its collection exists, its date
    field holds dates, the server accepts its filter. A ConfigError names the rule and the fix."""
    db, dm = _db(), resources().env.database_maintenance
    assert dm is not None
    found = set(db.list_collection_names())
    out = []
    for i, r in enumerate(dm.stale_data):
        where = f"database_maintenance.stale_data[{i}] ({r.collection})"
        if r.collection not in found:
            raise ConfigError(f"{where}: no collection {r.collection!r} in {db.name} "
                              f"(it has: {', '.join(sorted(found)) or 'none'})")
        try:
            sample = db[r.collection].find_one({**r.filter, r.date_field: {"$exists": True}}, {r.date_field: 1})
            any_doc = db[r.collection].find_one({}, {"_id": 1})
        except OperationFailure as exc:
            raise ConfigError(f"{where}: the server refuses the filter {r.filter}: {exc.details or exc}") from exc
        if any_doc is not None and sample is None:
            raise ConfigError(f"{where}: no document has a field {r.date_field!r}: check date_field's spelling")
        value = sample.get(r.date_field) if sample else None
        if sample is not None and not isinstance(value, datetime):
            raise ConfigError(f"{where}: {r.date_field} is a {type(value).__name__}, not a date: the rule would "
                              "compare dates with it and match nothing")
        matching = f" and that match {json.dumps(r.filter, default=str)}" if r.filter else ""
        out.append(f"{r.collection}: documents whose {r.date_field} is older than {duration(r.older_than)}{matching}"
                   + ("" if r.archive else " (deleted, not archived)"))
    return out


@step("statistics", cache=False)
def snapshot_database(keep: bool) -> dict[str, Any]:
    """dbStats, collStats and $indexStats now; kept in the monitoring store when `keep` (usage is judged across runs)."""
    res, db = resources(), _db()
    try:
        snap = take_snapshot(db, datetime.now(UTC))
    except PyMongoError as exc:
        raise DatabaseError(f"cannot read the statistics of {db.name}: {exc}") from exc
    if keep and res.env.monitoring is not None:
        res.monitoring_store().save_db_snapshot(res.environment, snap)
    return snap


@step("snapshots", cache=False)
def stored_snapshots(days: float) -> list[dict[str, Any]]:
    """The snapshots of earlier runs (and this one) from the monitoring store, the last `days`; none without one."""
    res, db = resources(), _db()
    if res.env.monitoring is None:
        return []
    return res.monitoring_store().db_snapshots(res.environment, db.name, datetime.now(UTC) - timedelta(days=days))


@step("hidden-indexes", cache=False)
def hidden_indexes() -> dict[str, datetime]:
    """The indexes Upkeep hid on earlier runs (id → when), from the monitoring store; none without one."""
    res = resources()
    return res.monitoring_store().hidden_indexes(res.environment) if res.env.monitoring is not None else {}


@step("stale-data", run_name="stale-data[{collection}]", retries=1)
def remove_stale(rule: int, collection: str, dry_run: bool, archive_id: str) -> RuleResult:
    """One rule: finish what an earlier run left archived, then archive → verify → delete (or count, dry)."""
    res, dm = resources(), resources().env.database_maintenance
    assert dm is not None
    archive = res.data_archive()
    if archive is not None and not dry_run:
        archive.ensure_bucket()
    try:
        result = run_rule(_db()[collection], _rule(rule), archive, now=datetime.now(UTC), archive_id=archive_id,
                          dry_run=dry_run, batch=dm.batch, chunk_docs=dm.chunk_documents)
    except PyMongoError as exc:
        raise DatabaseError(f"{collection}: {exc}; nothing is deleted that was not archived and verified first") from exc
    get_run_logger().info("%s%s", "dry run: " if dry_run else "", result.describe())
    return result


@step("index", run_name="index[{index}]", cache=False)
def set_index(index: str, action: str) -> str:
    """`hide` (collMod hidden: the planner stops using it, it is still maintained), `unhide`, or `drop` one index
    (`db.collection.name`); a sentence."""
    res, db = resources(), _db()
    _database, collection, name = index.split(".", 2)
    try:
        if action == "drop":
            db[collection].drop_index(name)
        else:
            db.command("collMod", collection, index={"name": name, "hidden": action == "hide"})
            spec: dict[str, Any] = next((ix for ix in db[collection].list_indexes() if ix["name"] == name), {})
            if bool(spec.get("hidden")) != (action == "hide"):  # accepted, but the index did not change
                return f"{action}: not supported by this server (collMod accepted, the index is unchanged)"
    except OperationFailure as exc:
        if unsupported(exc):
            return f"{action}: not supported by this server"
        raise DatabaseError(f"{action} {index} failed: {exc}") from exc
    if res.env.monitoring is not None and action in ("hide", "drop", "unhide"):
        res.monitoring_store().mark_hidden(res.environment, index, datetime.now(UTC), hidden=action == "hide")
    return {"hide": "hidden (the planner no longer uses it; drop it on a later run)", "unhide": "visible again",
            "drop": "dropped"}[action]


@step("validate", run_name="validate[{collection}]", cache=False)
def validate_collection(collection: str) -> dict[str, Any]:
    """`validate` one collection: valid or not, with the server's warnings and errors."""
    try:
        out = _db().command("validate", collection)
    except OperationFailure as exc:
        if unsupported(exc):
            return {"supported": False, "valid": None, "detail": "validate: not supported by this server"}
        raise DatabaseError(f"validate {collection} failed: {exc}") from exc
    problems = "; ".join(map(str, [*out.get("errors", []), *out.get("warnings", [])]))[:200]
    detail = ("valid" if out.get("valid") else "INVALID") + (f": {problems}" if problems else "")
    return {"supported": True, "valid": bool(out.get("valid")), "records": out.get("nrecords"), "detail": detail}


@step("compact", run_name="compact[{collection}]", retries=0, cache=False)
def compact_collection(collection: str) -> str:
    """`compact` (force: the node may be a primary; it blocks no reads or writes on 4.4+); a sentence."""
    try:
        out = _db().command("compact", collection, force=True)
    except OperationFailure as exc:
        if unsupported(exc):
            return "compact: not supported by this server"
        raise DatabaseError(f"compact {collection} failed: {exc}") from exc
    freed = out.get("bytesFreed")
    return f"compacted ({freed / 2**20:.1f} MiB freed)" if isinstance(freed, int | float) else "compacted"


@step("slow-queries", cache=False)
def slow_query_shapes(slow_ms: int, limit: int = 10_000) -> list[dict[str, Any]]:
    """The slowest query shapes in system.profile (entries at least `slow_ms`); none when profiling is off."""
    db = _db()
    try:
        entries = list(db["system.profile"].find({"millis": {"$gte": slow_ms}}, sort=[("ts", -1)], limit=limit))
    except OperationFailure as exc:
        if unsupported(exc):
            return []
        raise DatabaseError(f"reading system.profile failed: {exc}") from exc
    rows: list[dict[str, Any]] = [{str(k): v for k, v in row.items()} for row in slow_shapes(entries).to_dict("records")]
    return [{"shape": str(x["shape"]), "count": int(x["count"]), "p50_ms": float(x["p50_ms"]), "p95_ms": float(x["p95_ms"]),
             "examined": float(x["examined"]), "returned": float(x["returned"])} for x in rows]

