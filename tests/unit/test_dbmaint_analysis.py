"""Index health, growth, compaction and slow query shapes (pure) on outputs in the shape MongoDB documents
(`$indexStats` with `spec`, `collStats`, `system.profile`), recorded in tests/fixtures/mongodb."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bson import json_util

from upkeep.dbmaint.collections import CollectionStats, compact_candidates, fingerprint, growth, parse_coll_stats, slow_shapes
from upkeep.dbmaint.indexes import NOT_AVAILABLE, IndexSnapshot, index_plan, parse_index_stats, redundant_indexes, unused_indexes

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "mongodb"
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def load(name: str) -> object:
    return json_util.loads((FIX / name).read_text(), json_options=json_util.JSONOptions(tz_aware=True, tzinfo=UTC))


def snapshot(name: str) -> IndexSnapshot:
    data = load(name)
    assert isinstance(data, dict)
    indexes = [ix for ns, docs in data["indexStats"].items() for ix in parse_index_stats(ns, docs)]
    return IndexSnapshot(data["taken_at"], tuple(indexes))


def test_parsing_reads_the_counter_and_what_protects_an_index() -> None:
    by = snapshot("indexstats-1.json").by_id()
    assert by["eventmanager.events.status_1"].accesses == 0
    assert by["eventmanager.events.status_1"].since == datetime(2026, 11, 1, 8, 12, 40, tzinfo=UTC)
    assert by["eventmanager.users.email_1"].unique and by["eventmanager.sessions.expires_1"].ttl
    assert by["eventmanager.events.status_1_ts_-1"].key == (("status", 1), ("ts", -1))


def test_unused_over_two_snapshots_of_one_counting_period() -> None:
    verdict = unused_indexes([snapshot("indexstats-1.json"), snapshot("indexstats-2.json")], WEEK)
    assert verdict.available
    unused = {u.index.id: u for u in verdict.unused}
    assert set(unused) == {"eventmanager.events.status_1", "eventmanager.events.legacy_ref_1"}
    # never accessed: quiet since the counters started; accessed 3 times, but not since the first snapshot
    assert unused["eventmanager.events.status_1"].quiet_since == datetime(2026, 11, 1, 8, 12, 40, tzinfo=UTC)
    assert unused["eventmanager.events.legacy_ref_1"].quiet_since == datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    assert "3 in all since the counters started" in unused["eventmanager.events.legacy_ref_1"].detail
    assert verdict.kept["eventmanager.events.owner_1"] == "used in the last 7 days"  # 10 → 25
    assert verdict.kept["eventmanager.events._id_"] == "the _id index"
    assert verdict.kept["eventmanager.users.email_1"].startswith("unique")
    assert verdict.kept["eventmanager.sessions.expires_1"].startswith("TTL")


def test_a_counter_reset_between_snapshots_restarts_the_quiet_time() -> None:
    snaps = [snapshot("indexstats-1.json"), snapshot("indexstats-2.json"), snapshot("indexstats-3-after-restart.json")]
    verdict = unused_indexes(snaps, WEEK)
    assert verdict.unused == []  # the restart on 12-02 lost whatever happened before it: 4 days of counting only
    assert verdict.kept["eventmanager.events.status_1"] == "counting only since 2026-12-02 10:00 UTC (< 7 days)"
    assert verdict.kept["eventmanager.events.legacy_ref_1"].startswith("counting only since 2026-12-02")
    week_on = replace(snaps[-1], taken_at=datetime(2026, 12, 9, 10, 0, 5, tzinfo=UTC))  # a week after the restart, unchanged
    later = unused_indexes([*snaps, week_on], WEEK)
    assert {u.index.name for u in later.unused} == {"status_1", "legacy_ref_1"}


def test_protected_indexes_are_never_proposed() -> None:
    snaps = [snapshot("indexstats-1.json"), snapshot("indexstats-2.json")]
    verdict = unused_indexes(snaps, WEEK, protected=["eventmanager.events.status_1", "events.legacy_ref_1"])
    assert verdict.unused == []
    kept = verdict.kept
    assert kept["eventmanager.events.status_1"] == kept["eventmanager.events.legacy_ref_1"] == "listed as protected"


def test_a_server_without_counters_gets_not_available_and_no_proposal() -> None:
    secantus = [{"name": "_id_", "key": {"_id": 1}, "accesses": {"ops": 0}},  # what SecantusDB answers: no since
                {"name": "status_1", "key": {"status": 1}, "accesses": {"ops": 0}}]
    snaps = [IndexSnapshot(NOW - timedelta(days=30), tuple(parse_index_stats("em.events", secantus))),
             IndexSnapshot(NOW, tuple(parse_index_stats("em.events", secantus)))]
    verdict = unused_indexes(snaps, WEEK)
    assert not verdict.available and verdict.unused == [] and verdict.note == NOT_AVAILABLE
    assert not unused_indexes([], WEEK).available
    # the latest snapshot is "now": a counter that moved just before it is used, however old the snapshot
    assert "eventmanager.events.status_1_ts_-1" not in {u.index.id for u in unused_indexes(
        [snapshot("indexstats-1.json"), snapshot("indexstats-2.json")], WEEK).unused}


def test_prefix_redundant_indexes() -> None:
    assert redundant_indexes(snapshot("indexstats-1.json").indexes) == {"eventmanager.events.status_1": "status_1_ts_-1"}


def test_collection_stats_growth_and_compaction() -> None:
    stats = load("collstats-events.json")
    assert isinstance(stats, dict)
    events = parse_coll_stats("eventmanager.events", stats)
    assert (events.count, events.free_storage, events.indexes) == (1_200_000, 209_715_200, 5)
    verdicts = {v.ns: v for v in compact_candidates([events, CollectionStats("em.x", 10, 10, 4096, None, 1, 4096)],
                                                       min_share=0.5, min_bytes=100 * 2**20)}
    events_verdict = verdicts["eventmanager.events"]
    assert events_verdict.compact and "200.0 MiB free of 300.0 MiB (67%)" in events_verdict.detail
    assert not verdicts["em.x"].compact and "not available" in verdicts["em.x"].detail
    small = compact_candidates([events], min_share=0.5, min_bytes=2**30)[0]
    assert not small.compact and "under 50% or 1024.0 MiB" in small.detail
    week_ago = CollectionStats("eventmanager.events", 1_100_000, 500_000_000, 0, None, 5, 0)
    users = CollectionStats("eventmanager.users", 10, 1000, 0, None, 2, 0)
    g = growth([(NOW, [events, users]), (NOW - WEEK, [week_ago, users])])
    assert g[0].ns == "eventmanager.events" and round(g[0].docs_per_day) == 14286 and g[0].days == 7
    assert growth([(NOW, [events])]) == []


def test_slow_query_shapes_from_the_profiler() -> None:
    profile = load("profile.json")
    assert isinstance(profile, list)
    assert fingerprint(profile[0]) == fingerprint(profile[1]) == \
        'query eventmanager.events {"status": "?", "ts": {"$gt": "?"}}'
    df = slow_shapes(profile)
    first = df.iloc[0]
    assert first["shape"].startswith("query eventmanager.events") and first["count"] == 5
    assert first["p50_ms"] == 140 and first["p95_ms"] > 700 and first["examined"] == 1_200_000
    assert "pipeline ['$match', '$group']" in df.iloc[1]["shape"]
    assert list(df["shape"])[-1].startswith("query eventmanager.users")
    assert slow_shapes([]).empty


def test_an_unused_index_is_hidden_first_and_dropped_on_a_later_run() -> None:
    verdict = unused_indexes([snapshot("indexstats-1.json"), snapshot("indexstats-2.json")], WEEK)
    existing = [ix.id for ix in snapshot("indexstats-2.json").indexes]
    first = index_plan(verdict, {}, existing, NOW, "approve")
    assert {u.index.name for u in first.hide} == {"status_1", "legacy_ref_1"} and first.drop == []
    hidden = {"eventmanager.events.status_1": NOW - WEEK, "eventmanager.events.gone_1": NOW - WEEK}
    later = index_plan(verdict, hidden, existing, NOW, "approve")
    assert [u.index.name for u in later.drop] == ["status_1"] and [u.index.name for u in later.hide] == ["legacy_ref_1"]
    assert later.forget == ["eventmanager.events.gone_1"]  # dropped by hand meanwhile
    never = index_plan(verdict, hidden, existing, NOW, "never")
    assert never.hide == never.drop == []
    secantus = unused_indexes([], WEEK)
    assert index_plan(secantus, {}, existing, NOW, "auto").hide == []  # no counters: never anything
