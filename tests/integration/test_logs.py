"""The log routines as flows on the stack: rotation of the stand-in's log (it runs as another user:
told to reopen over its control API), temp file cleanup, and the day's analysis from S3."""

from __future__ import annotations

import gzip
import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from flows.clean_temp import clean_temp
from flows.log_rotation import log_rotation
from sandbox.logsynth import Injections, compress, generate_day
from sandbox.stack import Stack
from tests.helpers import artifacts_of, report_of, slack_calls, standin
from upkeep.config.render import render
from upkeep.resources import Resources
from upkeep.rotation import LogArchive

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def archive_of(stack: Stack) -> Any:
    with Resources.from_config(str(stack.inventory_path), "development") as res:
        archive = res.log_archive()
        assert archive is not None
        yield archive, res


def test_dry_run_publishes_the_plan_and_touches_nothing(stack: Stack) -> None:
    log = stack.fleet.hosts[0].root / "event-manager.log"  # type: ignore[union-attr]
    before = sorted(p.name for p in log.parent.iterdir())
    state = log_rotation(environment="development", dry_run=True, force=True, return_state=True)
    assert state.is_completed(), state.message
    plan = state.result()
    assert set(plan) == {"host1", "host2"}
    assert "rotate" in plan["host1"] and "event-manager.log" in plan["host1"]
    assert sorted(p.name for p in log.parent.iterdir()) == before
    report = report_of(state.state_details.flow_run_id)
    assert "(dry run)" in report.data and "would ensure a 90-day lifecycle rule" in report.data


def test_rotation_of_the_standin_log_reopens_it_and_archives_the_rotated_file(stack: Stack, archive_of: Any) -> None:
    archive, res = archive_of
    host = res.hosts.get_config("host1")
    log = Path(render("{root}/event-manager.log", host))
    lines_before = len(log.read_bytes().splitlines())
    reopens = standin(stack, 0)["log_reopens"]
    state = log_rotation(environment="development", force=True, return_state=True)
    assert state.is_completed(), state.message
    assert "rotated 1 of 1 log file(s)" in state.result()["host1"]
    assert standin(stack, 0)["log_reopens"] == reopens + 1, "the stand-in was told to reopen its log"
    standin(stack, 0)  # a request after the rotation: its line goes to the new file
    assert log.exists() and b'"/_control/state"' in log.read_bytes()
    rotated = sorted(p for p in log.parent.iterdir() if p.name.startswith("event-manager.log-"))
    assert rotated and rotated[-1].name.endswith(".gz")
    stored = archive.stored("host1", str(log))
    assert rotated[-1].name in stored, "archived"
    key = next(o["Key"] for o in archive.objects(archive.folder("host1", str(log))) if o["Key"].endswith(rotated[-1].name))
    head = archive.s3.head_object(Bucket=archive.bucket, Key=key)
    meta = head["Metadata"]
    assert meta["host"] == "host1" and meta["service"] == "api" and meta["environment"] == "development"
    assert meta["period"].endswith("/" + meta["rotated-at"])  # from the generation before (or unknown) to this one
    assert int(meta["lines"]) >= lines_before and len(meta["sha256"]) == 64
    assert len(gzip.decompress(archive.s3.get_object(Bucket=archive.bucket, Key=key)["Body"].read()).splitlines()) == \
        int(meta["lines"])
    rules = archive.s3.get_bucket_lifecycle_configuration(Bucket=archive.bucket)["Rules"]
    ours = [r for r in rules if r["ID"] == "upkeep-log-retention-development"]
    assert ours and ours[0]["Expiration"]["Days"] == 90 and ours[0]["Filter"]["Prefix"] == "event-manager/development/"
    report = report_of(state.state_details.flow_run_id)
    assert "log file(s) rotated on 2 host(s)" in report.data and "archived" in report.data

    again = log_rotation(environment="development", return_state=True)  # rotated today already: nothing to do
    assert again.is_completed() and "rotated 0 of 1" in again.result()["host1"]


def test_clean_temp_plans_by_default_and_removes_when_asked(stack: Stack) -> None:
    temp = stack.fleet.hosts[0].root / "tmp"  # type: ignore[union-attr]
    before = sorted(p.name for p in temp.iterdir())
    state = clean_temp(environment="development", return_state=True)
    assert state.is_completed(), state.message
    assert "3 old temp file(s) (12 KB) would be removed (dry run)" in state.result()["host1"]
    assert sorted(p.name for p in temp.iterdir()) == before
    assert "host3" not in state.result(), "the temp dir is configured for the api role only"
    done = clean_temp(environment="development", hosts=["host1"], dry_run=False, return_state=True)
    assert done.is_completed() and "removed 3 old temp file(s)" in done.result()["host1"]
    left = sorted(p.name for p in temp.iterdir())
    assert left == ["keep.pid", "render-8.tmp", "upload-outside"]  # pattern, age, and the fresh symlink stay
    assert Path("/etc/hostname").exists()
    report = report_of(done.state_details.flow_run_id)
    assert "removed 3 old temp file(s)" in report.data


# -- the day's analysis from the archive -----------------------------------------------------------------
DAY = date(2026, 11, 20)
WEEK_BEFORE = DAY - timedelta(days=7)


def archive_day(stack: Stack, env: str, day: date, data: bytes) -> str:
    """A generated day as log rotation would have archived it for host1 (gzip, in the day's folder)."""
    from upkeep.config.loader import load_inventory

    host = load_inventory(stack.inventory_path).environment(env).hosts[0]
    archive = LogArchive(stack.s3_client(), "upkeep-logs", "event-manager/", env)
    archive.ensure_bucket()
    key = archive.key(host.name, render("{root}/event-manager.log", host), day, f"event-manager.log-{day:%Y%m%d}T235959Z.gz")
    archive.s3.put_object(Bucket=archive.bucket, Key=key, Body=compress(data, "gzip"))
    return key


def test_the_days_analysis_finds_the_injected_patterns_with_exact_counts(stack: Stack) -> None:
    from flows.log_analysis import log_analysis

    env = "staging"
    baseline = generate_day(WEEK_BEFORE, 20_000, seed=3)
    archive_day(stack, env, WEEK_BEFORE, baseline.data)
    first = log_analysis(environment=env, day=WEEK_BEFORE, return_state=True)
    assert first.is_completed(), first.message
    inject = Injections(new_errors=25, slow_route="/api/events", slow_factor=6.0, burst=40, suspicious=9, new_admin=3,
                        malformed=0.01)
    today = generate_day(DAY, 20_000, seed=4, inject=inject)
    archive_day(stack, env, DAY, today.data)
    calls_before = len(slack_calls(stack))
    state = log_analysis(environment=env, day=DAY, return_state=True)
    assert state.is_completed(), state.message
    expected = today.expected
    archive = LogArchive(stack.s3_client(), "upkeep-logs", "event-manager/", env)
    summary = json.loads(archive.get_bytes(archive.analysis_key(DAY, "summary-json.json")) or b"{}")
    assert summary["totals"]["malformed"] == expected.malformed > 0
    assert summary["totals"]["lines_in_day"] == expected.in_day
    assert summary["templates"][expected.new_error_template]["count"] == expected.new_errors == 25

    artifacts = {a.key: a for a in artifacts_of(state.state_details.flow_run_id)}
    new_patterns = json.loads(artifacts["log-analysis-staging-json-new-error-patterns"].data)
    assert [(r["template"], r["count"]) for r in new_patterns] == [(expected.new_error_template, 25)]
    bursts = json.loads(artifacts["log-analysis-staging-json-bursts"].data)
    assert [(r["ip"], r["responses"]) for r in bursts] == [(expected.burst_ip, 40)]
    suspicious = json.loads(artifacts["log-analysis-staging-json-suspicious-requests"].data)
    assert sum(r["requests"] for r in suspicious) == sum(expected.suspicious.values()) == 9
    assert "log-analysis-staging-json-chart-requests-per-hour" in artifacts
    assert artifacts["log-analysis-staging-json-chart-requests-per-hour"].type == "image"
    report = artifacts["log-analysis-staging-json-analysis"].data
    assert "malformed" in report and "DataFrame" not in report and "nan" not in report.lower().split()

    texts = [c["args"].get("text", "") for c in slack_calls(stack)[calls_before:]]
    assert any("New error pattern, 25 times" in t for t in texts), texts
    assert any("/api/events: p95 latency" in t for t in texts), texts
    assert any(expected.burst_ip in t and "40 denied responses" in t for t in texts), texts
    assert any(expected.new_admin_ip in t for t in texts), texts


def test_the_daily_composite_rotates_then_analyses(stack: Stack) -> None:
    from flows.maintenance import daily_maintenance

    state = daily_maintenance(environment="development", return_state=True)
    assert state.is_completed(), state.message
    outcomes = state.result()
    assert list(outcomes)[:4] == ["disk-check", "log-rotation", "clean-temp", "log-analysis"]
