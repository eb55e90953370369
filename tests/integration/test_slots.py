"""One disruptive routine per environment at a time (the environment's slot, a Prefect global concurrency
limit), and no auto-recovery of a host a running maintenance holds — on the real Prefect server."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterExpectedStartTime,
    LogFilter,
    LogFilterFlowRunId,
)

from flows._routine import Routine
from flows.clear_cache import clear_cache
from flows.health_check import health_check
from sandbox.procs import Proc
from sandbox.stack import Stack
from tasks.hosts import service_command
from tests.helpers import inventory_variant, report_of, slack_calls, standin, wait_for
from tests.integration.test_guard import open_window
from upkeep.routines import SYSTEM_UPDATE, RoutineSpec, slot_name

pytestmark = pytest.mark.stack
SLOT = slot_name("production")
HOLDER = RoutineSpec("slot-holder", "slot-holder", "tests/integration/test_slots.py:slot_holder", disruptive=True,
                     cadence=None, description="a disruptive routine whose execute stage takes a while")
RELEASE = threading.Event()
SPAN = re.compile(r"## execute: done in [\d.]+s \((\d\d:\d\d:\d\d\.\d{3})–(\d\d:\d\d:\d\d\.\d{3}) UTC\)")


@flow(name=HOLDER.flow)
def slot_holder(environment: str, config: str, seconds: float) -> str:
    """A disruptive routine whose execute stage lasts `seconds`."""
    with Routine(HOLDER, environment, config) as r:
        if not r.guard():
            return "skipped"
        with r.stage("execute", disruptive=True):
            time.sleep(seconds)
    return "done"


@flow(name="update-stand-in")
def update_stand_in(environment: str, config: str) -> str:
    """What a running system update does to host1 (the real guard: window, slot, maintenance lock of every host):
    stops its API and keeps it stopped until the test says so (RELEASE), then starts it again."""
    with Routine(SYSTEM_UPDATE, environment, config) as r:
        assert r.guard()
        with r.stage("execute", disruptive=True):
            service_command("host1", "api", "stop")
            RELEASE.wait(60)
            service_command("host1", "api", "start")
    return "done"


def in_thread(fn: Callable[..., Any], **params: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("state", fn(return_state=True, **params)), daemon=True)
    thread.start()
    return thread, box


def execute_span(run_id: Any) -> tuple[datetime, datetime]:
    """The execute stage's start and end, from the run's report ('## execute: done in 1.23s (hh:mm:ss.mmm–… UTC)')."""
    found = SPAN.search(report_of(run_id).data)
    assert found, report_of(run_id).data
    day = datetime.now(UTC).date()
    start, end = (datetime.combine(day, datetime.strptime(t, "%H:%M:%S.%f").time(), UTC) for t in found.groups())
    return start, end


def slot_taken() -> bool:
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(SLOT).active_slots >= 1


def production(stack: Stack, path: Path, window: dict[str, Any]) -> str:
    return inventory_variant(stack, path, "production", window=window)


def test_two_disruptive_runs_never_overlap(stack: Stack, tmp_path: Path) -> None:
    config = production(stack, tmp_path / "inv.yaml", open_window(timedelta(minutes=50)))
    before = [standin(stack, i)["cache_clears"] for i in (0, 1)]
    first, box1 = in_thread(slot_holder, environment="production", config=config, seconds=4)
    second, box2 = in_thread(clear_cache, environment="production", config=config)
    first.join(120)
    second.join(120)
    states = [box1["state"], box2["state"]]
    assert all(s.is_completed() and s.name == "Completed" for s in states), states
    assert [standin(stack, i)["cache_clears"] for i in (0, 1)] == [b + 1 for b in before]
    (a_start, a_end), (b_start, b_end) = sorted(execute_span(s.state_details.flow_run_id) for s in states)
    assert a_end <= b_start, f"execute stages overlap: {a_start}–{a_end} and {b_start}–{b_end}"
    assert not slot_taken()  # both released it


def test_a_run_still_waiting_at_the_cutoff_ends_skipped(stack: Stack, tmp_path: Path) -> None:
    holder, box = in_thread(slot_holder, environment="production", seconds=16,
                            config=production(stack, tmp_path / "long.yaml", open_window(timedelta(minutes=50))))
    wait_for(slot_taken, timeout=60, what="the first run to take the slot")
    opened = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    ends = datetime.now(UTC) + timedelta(minutes=10, seconds=10)  # the cutoff (10 min) passes in 10 s
    short = {"cron": f"{opened.minute} {opened.hour} * * *", "timezone": "UTC",
             "duration": f"{int((ends - opened).total_seconds())}s", "cutoff": "10m"}
    before = [standin(stack, i)["cache_clears"] for i in (0, 1)]
    started = time.monotonic()
    state = clear_cache(environment="production", config=production(stack, tmp_path / "short.yaml", short), return_state=True)
    assert state.name == "Skipped" and state.is_completed(), state
    assert f"another disruptive routine held {SLOT} until the window's cutoff" in state.message
    assert 5 < time.monotonic() - started < 16  # it waited, and gave up at the cutoff, not when the slot came free
    assert [standin(stack, i)["cache_clears"] for i in (0, 1)] == before  # touched nothing
    assert "**Outcome:** skipped: another disruptive routine held" in report_of(state.state_details.flow_run_id).data
    assert any(f"not run: another disruptive routine held {SLOT}" in c["args"].get("text", "") for c in slack_calls(stack))
    holder.join(60)
    assert box["state"].is_completed() and box["state"].name == "Completed"


def test_no_auto_recovery_of_a_host_a_running_update_holds(stack: Stack, served: Proc, tmp_path: Path) -> None:
    data = yaml.safe_load(stack.inventory_path.read_text())
    monitoring = data["environments"]["development"]["monitoring"]
    monitoring = {**monitoring, "auto_recover": {"after_failures": 1, "action": "restart"},
                  "store": {**monitoring["store"], "databases": ["mon_slots"]}}
    config = inventory_variant(stack, tmp_path / "inv.yaml", "development", monitoring=monitoring)
    t0 = datetime.now(UTC)
    RELEASE.clear()
    update, box = in_thread(update_stand_in, environment="development", config=config)
    try:
        wait_for(lambda: "api" in standin(stack, 0)["stopped"], timeout=60, what="the update to stop host1's API")
        state = health_check(environment="development", config=config, return_state=True)
        result = state.result()
        assert "host1 api: down" in result["breaches"]
    finally:
        RELEASE.set()
        update.join(60)
    assert box["state"].is_completed(), box["state"]
    assert standin(stack, 0)["stopped"] == []  # the update started it again itself
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["emergency-recovery"])),
                                     flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=t0)))
        assert runs == [], "emergency-recovery started for a host under maintenance"

        def said_why() -> list[str]:
            logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])))
            return [log.message for log in logs if "not recovered: under maintenance by system-update run" in log.message]

        assert wait_for(said_why, timeout=30, what="the health check's log saying why it did not recover host1")
