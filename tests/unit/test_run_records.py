"""Run records (pure): what a record says of a run, and where it is kept."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from upkeep.report import RoutineReport
from upkeep.runrecords import record_key, run_record


def test_a_record_says_what_happened_and_checks_the_report() -> None:
    report = RoutineReport("dr-test", "production")
    report.started_at = datetime(2026, 12, 6, 2, 0, 5, tzinfo=UTC)
    report.add("execute", "restore", "done", detail="restored 3 databases")
    report.outcome = "completed"
    record = run_record(report, "1f0c", ended_at=datetime(2026, 12, 6, 2, 9, tzinfo=UTC))
    assert record["status"] == "completed" and record["steps"] == {"done": 1}
    assert record["started_at"] == "2026-12-06T02:00:05+00:00" and record["ended_at"] == "2026-12-06T02:09:00+00:00"
    assert record["report_sha256"] == hashlib.sha256(report.markdown().encode()).hexdigest()
    assert record_key("audit/", record) == "audit/production/dr-test/2026/12/06/20261206T020005Z-1f0c.json"
    report.outcome = "skipped: outside maintenance window"
    assert run_record(report, "x")["status"] == "skipped"
    report.outcome = "failed: restore refused"
    assert run_record(report, "x")["status"] == "failed"
    report.outcome = "stopped before execute: past cutoff"
    assert run_record(report, "x", failed=True)["status"] == "failed"  # ended by an exception
