"""The database_maintenance flow on SecantusDB and SeaweedFS: a dry run plans and changes nothing; a real run
archives then deletes exactly per rule; a wrong rule stops it before anything runs; what the server lacks is
reported as such."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pymongo
import pytest
import yaml
from prefect import flow
from prefect.flow_runs import resume_flow_run

from flows._routine import Routine
from flows.database_maintenance import _indexes, database_maintenance
from sandbox.stack import Stack
from tasks.database import compact_collection
from tests.helpers import inventory_variant, latest_flow_run, report_of, wait_for
from upkeep.dbmaint.indexes import NOT_AVAILABLE, IndexPlan, IndexUsage, UnusedIndex
from upkeep.routines import DATABASE_MAINTENANCE

pytestmark = pytest.mark.stack
DB = "upkeep_dm_test"


@pytest.fixture
def db(stack: Stack) -> Iterator[Any]:
    """120 events (every 3rd a draft), one every 5 days back from now, and 50 sessions (half expired long ago)."""
    client: Any = pymongo.MongoClient(stack.mongo_uri, tz_aware=True)
    client.drop_database(DB)
    d = client[DB]
    now = datetime.now(UTC)
    d.events.insert_many([{"name": f"event {i}", "state": "draft" if i % 3 == 0 else "done",
                           "starts": now - timedelta(days=5 * i)} for i in range(120)])
    d.events.create_index([("state", 1)], name="state_1")
    d.events.create_index([("state", 1), ("starts", -1)], name="state_1_starts_-1")
    d.sessions.insert_many([{"user": i, "expires": now - timedelta(days=60 if i % 2 else 0, hours=-1)} for i in range(50)])
    yield d
    client.drop_database(DB)
    client.close()


def config(stack: Stack, tmp_path: Path, **dm: Any) -> str:
    data = yaml.safe_load(stack.inventory_path.read_text())
    env = data["environments"]["development"]
    rules = [{"collection": "events", "date_field": "starts", "older_than": "300d", "filter": {"state": "done"}},
             {"collection": "sessions", "date_field": "expires", "older_than": "30d", "archive": False}]
    dr = {**env["dr"], "mongodb": {**env["dr"]["mongodb"], "databases": ["eventmanager_dr", f"{DB}_dr"]}}
    return inventory_variant(stack, tmp_path / "dm.yaml", "development", dr=dr,
                             mongodb={**env["mongodb"], "databases": ["eventmanager", DB]},
                             database_maintenance={**env["database_maintenance"], "database": DB, "stale_data": rules,
                                                   "backup_max_age": "30d", **dm})


def plan_rows(report: str) -> list[str]:
    """The plan stage's rows of stale data and indexes (what a run will do), as the report has them."""
    plan = report.split("## plan:", 1)[1].split("\n## ", 1)[0]
    return [line for line in plan.splitlines() if line.startswith(("| stale-data", "| unused index", "| redundant index"))]


def stale_events(db: Any) -> int:
    return int(db.events.count_documents({"state": "done", "starts": {"$lt": datetime.now(UTC) - timedelta(days=300)}}))


def test_a_dry_run_plans_and_changes_nothing(stack: Stack, db: Any, tmp_path: Path) -> None:
    events, sessions = db.events.count_documents({}), db.sessions.count_documents({})
    state = database_maintenance(environment="development", config=config(stack, tmp_path), return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == {"matching": {"events": stale_events(db), "sessions": 25}}
    assert (db.events.count_documents({}), db.sessions.count_documents({})) == (events, sessions)
    text = report_of(state.state_details.flow_run_id).data
    assert "dry run: plan published, nothing deleted or changed" in text
    assert f"events: {stale_events(db)} document(s) with starts older than 300 days" in text
    assert NOT_AVAILABLE in text and "| unused index |" not in text  # SecantusDB has no counters: nothing proposed
    assert f"| redundant index | {DB}.events.state_1 | planned |" in text and "a prefix of state_1_starts_-1" in text
    assert "free storage not available on this server" in text


def test_a_run_archives_then_deletes_exactly_per_rule(stack: Stack, db: Any, tmp_path: Path) -> None:
    stale = stale_events(db)
    assert stale > 0
    dry = database_maintenance(environment="development", config=config(stack, tmp_path), return_state=True)
    state = database_maintenance(environment="development", config=config(stack, tmp_path), dry_run=False,
                                 return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == {"deleted": {"events": stale, "sessions": 25}, "archived": {"events": stale, "sessions": 0}}
    assert stale_events(db) == 0 and db.events.count_documents({}) == 120 - stale
    assert db.sessions.count_documents({}) == 25  # the 25 expired 60 days ago went, the others stay
    s3 = stack.s3_client()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="upkeep-archive", Prefix=f"event-manager/development/{DB}/events/")
            .get("Contents", [])]
    assert any(k.endswith("manifest.json") for k in keys) and any(k.endswith(".bson.gz") for k in keys)
    text = report_of(state.state_details.flow_run_id).data
    assert plan_rows(text) == plan_rows(report_of(dry.state_details.flow_run_id).data)  # the dry run's plan, exactly
    assert f"{stale} archived to S3 and verified, {stale} deleted" in text
    assert "25 deleted (not archived: the rule says so)" in text
    assert "| validate | events | done |" in text and "valid" in text
    assert f"| statistics | {DB}.events | done |" in text and f"120 → {120 - stale} documents" in text
    again = database_maintenance(environment="development", config=config(stack, tmp_path), dry_run=False,
                                 return_state=True)
    assert again.result() == {"deleted": {"events": 0, "sessions": 0}, "archived": {"events": 0, "sessions": 0}}


def test_a_wrong_rule_stops_the_run_before_anything(stack: Stack, db: Any, tmp_path: Path) -> None:
    sessions = db.sessions.count_documents({})
    for rules, says in (
        ([{"collection": "sesions", "date_field": "expires", "older_than": "30d", "archive": False}], "no collection 'sesions'"),
        ([{"collection": "sessions", "date_field": "expiry", "older_than": "30d", "archive": False}],
         "no document has a field 'expiry'"),
        ([{"collection": "events", "date_field": "name", "older_than": "30d", "archive": False}], "name is a str, not a date"),
    ):
        state = database_maintenance(environment="development", config=config(stack, tmp_path, stale_data=rules),
                                     dry_run=False, return_state=True)
        assert state.is_failed() and says in state.message, state.message
    assert db.sessions.count_documents({}) == sessions and db.events.count_documents({}) == 120


@flow(name="index-actions-test")
def index_actions(config: str, hide: list[str], drop: list[str], policy: str) -> None:
    """The execute stage's index step alone, with a given plan (SecantusDB gives no usage counters, so the
    routine itself never proposes an index there)."""
    with Routine(DATABASE_MAINTENANCE, "development", config, dry_run=False) as r, r.stage("execute"):
        usage = {ix: UnusedIndex(IndexUsage(f"{DB}.events", ix.rsplit(".", 1)[1], (), 0, None), datetime.now(UTC),
                                 "no access for 8 days") for ix in {*hide, *drop}}
        _indexes(r, IndexPlan(hide=[usage[i] for i in hide], drop=[usage[i] for i in drop]), policy)
        r.report.add("execute", "compact", "done", host="events", detail=compact_collection("events"))


def _answer(cfg: str, drop: str, approved: list[str]) -> Any:
    """Run the index step with `drop` proposed, answer its approval request in the UI's place; the final state."""
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(state=index_actions(cfg, hide=[f"{DB}.events.state_1"], drop=[drop],
                                                                             policy="approve", return_state=True)), daemon=True)
    thread.start()
    paused = wait_for(lambda: latest_flow_run("index-actions-test", "PAUSED"), timeout=60, what="a paused run")
    resume_flow_run(paused.id, run_input={"approver": "dba-alice", "approved": approved})
    thread.join(90)
    return box["state"]


def test_indexes_are_dropped_only_once_approved_and_hiding_says_what_the_server_did(stack: Stack, db: Any,
                                                                                       tmp_path: Path) -> None:
    cfg, target = config(stack, tmp_path), f"{DB}.events.state_1_starts_-1"
    names = lambda: {ix["name"] for ix in db.events.list_indexes()}  # noqa: E731
    state = _answer(cfg, target, approved=[])  # the DBA approves nothing
    assert state.is_completed(), state.message
    text = report_of(state.state_details.flow_run_id).data
    assert "state_1_starts_-1 | skipped |  | hidden, still unused: not approved" in text
    assert "hide: not supported by this server (collMod accepted, the index is unchanged)" in text  # SecantusDB
    assert "| compact | events | done |  | compact: not supported by this server |" in text  # CommandNotFound
    assert {"state_1", "state_1_starts_-1"} <= names()  # nothing dropped without an approval
    state = _answer(cfg, target, approved=[target])
    assert state.is_completed(), state.message
    assert "state_1_starts_-1" not in names() and "state_1" in names()  # dropped for real, only that one
    text = report_of(state.state_details.flow_run_id).data
    assert f"| drop index | {target} | done |  | dropped |" in text and "approved by **dba-alice**" in text
