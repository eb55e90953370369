"""The window guard, emergency approval in the UI, stages and retries — on the real Prefect server."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.flow_runs import resume_flow_run

from flows._routine import Routine
from flows.clear_cache import clear_cache
from sandbox.stack import Stack
from tasks._base import step
from tests.helpers import (
    artifacts_of,
    flow_run_state,
    inventory_variant,
    latest_flow_run,
    report_of,
    slack_calls,
    standin,
    wait_for,
)
from upkeep.errors import HostKeyError
from upkeep.routines import RoutineSpec

pytestmark = pytest.mark.stack


def closed_window() -> dict[str, Any]:
    """A daily window that opens 12 hours from now: certainly closed during the test."""
    opens = datetime.now(UTC) + timedelta(hours=12)
    return {"cron": f"{opens.minute} {opens.hour} * * *", "timezone": "UTC", "duration": "1h", "cutoff": "10m"}


def open_window(left: timedelta) -> dict[str, Any]:
    """A daily window that opened a little while ago and closes in `left`."""
    opened = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    duration = int((datetime.now(UTC) + left - opened).total_seconds() // 60)
    return {"cron": f"{opened.minute} {opened.hour} * * *", "timezone": "UTC", "duration": f"{duration}m", "cutoff": "10m"}


def app_state(stack: Stack) -> list[dict[str, Any]]:
    return [standin(stack, i) for i in (0, 1)]


def test_outside_the_window_touches_nothing(stack: Stack, tmp_path: Path) -> None:
    config = inventory_variant(stack, tmp_path / "inv.yaml", "production", window=closed_window())
    before = app_state(stack)
    state = clear_cache(environment="production", config=config, return_state=True)
    assert state.name == "Skipped" and state.is_completed()
    assert "outside maintenance window: next opens" in state.message
    after = app_state(stack)
    assert [s["cache_clears"] for s in after] == [s["cache_clears"] for s in before]
    # not even a health probe: the only request since `before` is our own state read
    assert [a["requests"] - b["requests"] for a, b in zip(after, before, strict=True)] == [1, 1]
    assert any("not run: outside maintenance window" in c["args"].get("text", "") for c in slack_calls(stack))


def test_past_the_cutoff_touches_nothing(stack: Stack, tmp_path: Path) -> None:
    config = inventory_variant(stack, tmp_path / "inv.yaml", "production", window=open_window(timedelta(minutes=5)))
    before = app_state(stack)
    state = clear_cache(environment="production", config=config, return_state=True)
    assert state.name == "Skipped" and "past cutoff" in state.message
    assert [s["cache_clears"] for s in app_state(stack)] == [s["cache_clears"] for s in before]


def test_inside_the_window_runs_all_stages(stack: Stack, tmp_path: Path) -> None:
    config = inventory_variant(stack, tmp_path / "inv.yaml", "production", window=open_window(timedelta(minutes=50)))
    before = app_state(stack)
    state = clear_cache(environment="production", config=config, return_state=True)
    assert state.is_completed() and state.name == "Completed"
    assert [s["cache_clears"] for s in app_state(stack)] == [s["cache_clears"] + 1 for s in before]
    report = report_of(state.state_details.flow_run_id)
    for stage in ("## pre: done", "## execute: done", "## post: done"):
        assert stage in report.data
    table = next(a for a in artifacts_of(state.state_details.flow_run_id) if a.type == "table")
    assert "host1" in str(table.data) and "host2" in str(table.data)


def _run_in_thread(**params: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}

    def target() -> None:
        box["state"] = clear_cache(return_state=True, **params)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, box


def test_emergency_in_production_pauses_for_approval(stack: Stack, tmp_path: Path) -> None:
    config = inventory_variant(stack, tmp_path / "inv.yaml", "production", window=closed_window())
    before = app_state(stack)
    thread, box = _run_in_thread(environment="production", config=config, emergency=True)
    paused = wait_for(lambda: latest_flow_run("clear-cache", "PAUSED"), timeout=60, what="a paused clear-cache run")
    assert [s["cache_clears"] for s in app_state(stack)] == [s["cache_clears"] for s in before]  # nothing yet
    with pytest.raises(Exception):  # noqa: B017 - the server checks the input against the Approval schema; any error will do
        resume_flow_run(paused.id, run_input={"approve": "perhaps"})
    # someone not on production's approver list: refused, recorded, and the run waits again (a new pause)
    resume_flow_run(paused.id, run_input={"approver": "mallory", "reason": "trust me"})
    wait_for(lambda: (s := flow_run_state(paused.id)).is_paused() and s.state_details.pause_key == "emergency-approval-2",
             timeout=60, what="the run to wait again after a refused attempt")
    assert [s["cache_clears"] for s in app_state(stack)] == [s["cache_clears"] for s in before]  # still nothing
    resume_flow_run(paused.id, run_input={"approver": "alice", "reason": "stale cache, incident 42"})
    thread.join(90)
    state = box["state"]
    assert state.is_completed() and state.name == "Completed"
    assert [s["cache_clears"] for s in app_state(stack)] == [s["cache_clears"] + 1 for s in before]
    report = report_of(paused.id)
    assert "approved by **alice**" in report.data and "stale cache, incident 42" in report.data
    assert "Refused attempt: 'mallory' (typed in the Prefect UI) approved at " in report.data, report.data
    assert "is not on production's `emergency` approver list" in report.data
    assert "Approved by **alice** via Prefect UI (name typed in the Prefect UI) at " in report.data
    events = wait_for(lambda: len(e := approval_events(paused.id)) >= 2 and e, timeout=30, what="the approval events")
    assert [(e["event"], e["payload"]["who"], e["payload"]["channel"]) for e in events] == [
        ("upkeep.approval.refused-attempt", "mallory", "Prefect UI"), ("upkeep.approval.approved", "alice", "Prefect UI")]
    override = next(a for a in artifacts_of(paused.id) if a.key == "clear-cache-production-override")
    assert "| alice | stale cache, incident 42 |" in override.data


def approval_events(run_id: Any) -> list[dict[str, Any]]:
    """The `upkeep.approval.*` events of a run, oldest first (the server's events API, as the UI's event feed)."""
    import httpx
    from prefect.settings import PREFECT_API_URL

    body = {"filter": {"event": {"prefix": ["upkeep.approval."]}, "any_resource": {"id": [f"upkeep.approval.{run_id}"]},
                       "order": "ASC"}, "limit": 50}
    answer = httpx.post(f"{PREFECT_API_URL.value()}/events/filter", json=body, timeout=30)
    answer.raise_for_status()
    return list(answer.json()["events"])


def test_unanswered_approval_ends_safely(stack: Stack, tmp_path: Path) -> None:
    config = inventory_variant(stack, tmp_path / "inv.yaml", "production", window=closed_window(), approval_timeout="3s")
    before = app_state(stack)
    state = clear_cache(environment="production", config=config, emergency=True, return_state=True)
    # Either our Skipped state lands, or Prefect's server has already closed the expired pause as
    # Failed ("never resumed") — a race inside Prefect. Either way the run touched nothing and says why.
    assert (state.name == "Skipped" and "approval timed out" in state.message) or (
        state.is_failed() and "never resumed" in state.message)
    assert [s["cache_clears"] for s in app_state(stack)] == [s["cache_clears"] for s in before]
    report = report_of(state.state_details.flow_run_id)
    assert "emergency approval timed out; nothing was touched" in report.data
    assert any("emergency approval timed out" in c["args"].get("text", "") for c in slack_calls(stack))


def test_staging_emergency_notifies_and_proceeds(stack: Stack, tmp_path: Path) -> None:
    config = inventory_variant(stack, tmp_path / "inv.yaml", "staging", window=closed_window())
    before = app_state(stack)
    state = clear_cache(environment="staging", config=config, emergency=True, return_state=True)
    assert state.is_completed() and state.name == "Completed"
    assert [s["cache_clears"] for s in app_state(stack)] == [s["cache_clears"] + 1 for s in before]
    assert any("[staging] clear-cache*: emergency run" in c["args"].get("text", "") for c in slack_calls(stack))


ATTEMPTS: list[str] = []
ROLLBACKS: list[str] = []


@step("host-key-check", retries=3)
def permanent_failure() -> None:
    ATTEMPTS.append("permanent")
    raise HostKeyError("host9", "host key changed")


@step("flaky", retries=3)
def flaky() -> str:
    ATTEMPTS.append("flaky")
    if ATTEMPTS.count("flaky") < 3:
        raise ConnectionError("transient")
    return "ok"


STAGED = RoutineSpec("staged", "staged", "tests/integration/test_guard.py:staged", disruptive=False, cadence=None,
                     description="stages, retries and rollback under test")


@flow(name=STAGED.flow)
def staged(fail_in: str) -> str:
    with Routine(STAGED, "development") as r:
        with r.stage("pre"):
            flaky()
        with r.stage("execute", rollback=lambda: ROLLBACKS.append("undo")):
            if fail_in == "execute":
                permanent_failure()
        with r.stage("post"):
            pass
    return "done"


def test_transient_errors_retry_permanent_do_not_and_rollback_runs(stack: Stack) -> None:
    ATTEMPTS.clear()
    ROLLBACKS.clear()
    state = staged("execute", return_state=True)
    assert state.is_failed()
    assert ATTEMPTS.count("flaky") == 3  # retried until it worked
    assert ATTEMPTS.count("permanent") == 1  # a HostKeyError is never retried
    assert ROLLBACKS == ["undo"]
    report = report_of(state.state_details.flow_run_id)
    assert "## execute: failed" in report.data and "## rollback: done" in report.data
