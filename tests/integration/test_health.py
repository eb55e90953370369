"""Health checks, alerts and emergency recovery against the sandbox stand-in, sshd hosts,
SecantusDB and the real Prefect server (served deployments for the automatic recovery)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.emergency_recovery import emergency_recovery
from flows.health_check import health_check
from sandbox.procs import Proc, free_port, port_open, stop_pid
from sandbox.stack import Stack
from tests.helpers import (
    artifacts_of,
    flow_run_state,
    inventory_variant,
    latest_flow_run,
    report_of,
    settled_task_runs,
    slack_calls,
    standin,
    wait_for,
)
from tests.integration.test_ssh import silent_server  # noqa: F401 - fixture
from upkeep.monitoring.store import MonitoringStore

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def healthy_standins(stack: Stack) -> Iterator[None]:
    """Every test starts and ends with healthy stand-ins."""
    for i in (0, 1):
        standin(stack, i, "reset")
    yield
    for i in (0, 1):
        standin(stack, i, "reset")


def quiet(stack: Stack, path: Path, **changes: Any) -> str:
    """The development inventory without auto-recovery, with a monitoring database of its own
    (the rolling service levels of one test must not leak into another)."""
    data = yaml.safe_load(stack.inventory_path.read_text())
    monitoring = data["environments"]["development"]["monitoring"]
    store = {**monitoring["store"], "databases": [monitoring_db(path)]}
    monitoring = {**monitoring, "auto_recover": None, "store": store}
    return inventory_variant(stack, path, "development", monitoring=monitoring, **changes)


def monitoring_db(path: Path) -> str:
    return "mon_" + "".join(c for c in path.parent.name if c.isalnum())[-40:]


def test_all_healthy_gives_a_green_report(stack: Stack, tmp_path: Path) -> None:
    state = health_check(environment="development", config=quiet(stack, tmp_path / "i.yaml"), return_state=True)
    result = state.result()
    assert result["healthy"], result["breaches"]
    assert result["samples"] >= 2 * 2 * 2 + 5 * 4 + 2  # services × hosts × (up, latency) + hosts × 4 + database
    report = report_of(state.state_details.flow_run_id)
    assert "**Outcome:** healthy" in report.data


def test_slow_service_is_a_response_time_breach(stack: Stack, tmp_path: Path) -> None:
    standin(stack, 0, "latency", ms=400)
    result = health_check(environment="development", config=quiet(stack, tmp_path / "i.yaml"))
    assert not result["healthy"]
    assert any(b.startswith("host1 api: response time") and "> 200 ms" in b for b in result["breaches"])


def test_worker_down_is_unhealthy(stack: Stack, tmp_path: Path) -> None:
    standin(stack, 1, "crash-worker")
    result = health_check(environment="development", config=quiet(stack, tmp_path / "i.yaml"))
    assert "host2 worker: down" in result["breaches"]


@pytest.fixture
def throwaway_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Proc, str]]:
    from sandbox.procs import spawn

    port = free_port()
    proc = spawn("secantus-throwaway", [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
                                        "--storage-path", ":memory:", "--log-level", "WARNING"], tmp_path / "db.log")
    wait_for(lambda: port_open("127.0.0.1", port), timeout=30, what="throw-away SecantusDB")
    monkeypatch.setenv("UPKEEP_TEST_DB_URI", f"mongodb://127.0.0.1:{port}/")
    yield proc, f"mongodb://127.0.0.1:{port}/"
    proc.stop()


def test_stopped_database_fails_the_ping_within_the_timeout(stack: Stack, tmp_path: Path, throwaway_db) -> None:
    proc, _ = throwaway_db
    db = {"uri": "env:UPKEEP_TEST_DB_URI", "databases": ["eventmanager"], "timeout": "3s"}
    config = quiet(stack, tmp_path / "i.yaml", mongodb=db, thresholds={"probe_timeout": "3s"})
    assert health_check(environment="development", config=config)["healthy"]
    stop_pid(proc.pid)
    started = time.monotonic()
    result = health_check(environment="development", config=config)
    assert "database database: down" in result["breaches"]
    assert time.monotonic() - started < 3 + 8  # the ping's timeout, plus the run's own overhead


def test_unreachable_host_does_not_hold_back_the_other_probes(
        stack: Stack, tmp_path: Path, silent_server) -> None:  # noqa: F811 - the fixture imported above
    address, port = silent_server
    data = yaml.safe_load(stack.inventory_path.read_text())
    hosts = data["environments"]["development"]["hosts"] + [{"name": "ghost", "address": address, "port": port, "roles": ["db"]}]
    config = quiet(stack, tmp_path / "i.yaml", hosts=hosts)
    state = health_check(environment="development", config=config, return_state=True)
    result = state.result()
    assert result["breaches"] == ["ghost host: unreachable"]
    report = report_of(state.state_details.flow_run_id)
    probe_line = next(line for line in report.data.splitlines() if line.startswith("## probe"))
    seconds = float(probe_line.split(" in ")[1].rstrip("s"))
    assert seconds < 5 + 4  # the inventory's 5 s connect timeout bounds the stage, not 5 s × hosts


def test_alerts_are_suppressed_for_hosts_under_maintenance(stack: Stack, tmp_path: Path) -> None:
    rule = {"name": "always", "metric": "cpu_percent", "op": ">=", "threshold": 0, "duration": "0s"}
    config = quiet(stack, tmp_path / "i.yaml", alerts=[rule])
    import pymongo

    store = MonitoringStore(pymongo.MongoClient(stack.mongo_uri), monitoring_db(tmp_path / "i.yaml"))
    store.ensure()
    from datetime import timedelta

    store.lock("development", ["host1"], "test-run", "clear_cache", timedelta(minutes=5))
    try:
        result = health_check(environment="development", config=config)
    finally:
        store.unlock("test-run")
    fired = {a["subject"] for a in result["alerts"] if a["kind"] == "fire"}
    assert fired == {"host2", "host3", "host4", "host5"}
    assert len(result["suppressed"]) == 1 and "host1 is under maintenance (clear_cache run test-run)" in result["suppressed"][0]
    texts = [c["args"]["text"] for c in slack_calls(stack)]
    assert any("always on host2" in t for t in texts) and not any("always on host1" in t for t in texts)


def test_crashed_worker_is_detected_recovered_and_documented(stack: Stack, served: Proc) -> None:
    import pymongo

    store = MonitoringStore(pymongo.MongoClient(stack.mongo_uri), "upkeep_monitoring")
    standin(stack, 0, "crash-worker")
    earlier = latest_flow_run("emergency-recovery")
    first = health_check(environment="development")
    assert "host1 worker: down" in first["breaches"]
    assert latest_flow_run("emergency-recovery") == earlier  # not yet: it takes 2 failed checks in a row
    before = standin(stack, 0)["restarts"]
    second = health_check(environment="development")
    assert "host1 worker: down" in second["breaches"]
    run = wait_for(lambda: (r := latest_flow_run("emergency-recovery")) and r != earlier and r, timeout=30,
                   what="the emergency-recovery run")
    final = wait_for(lambda: (s := flow_run_state(run.id)) and s.is_final() and s, timeout=180, what="recovery to finish")
    assert final.is_completed(), final.message
    state = standin(stack, 0)
    assert not state["worker_crashed"] and state["restarts"] == before + 1 and state["stopped"] == []

    third = health_check(environment="development")
    assert "host1 worker: down" not in third["breaches"]
    incident = store.db.incidents.find_one({"env": "development", "service": "worker", "outcome": "resolved"},
                                           sort=[("opened_at", -1)])
    assert incident is not None and "host1" in incident["failing"] and incident["triggered_by"] == "health-check"
    postmortem = next(a for a in artifacts_of(run.id) if a.key == "postmortem-development")
    assert incident["incident_id"] in postmortem.data and "## Timeline (UTC)" in postmortem.data
    texts = [c["args"]["text"] for c in slack_calls(stack)]
    assert any("host1/worker failed 2 health checks in a row: emergency recovery (restart) started" in t for t in texts)
    assert any(f"{incident['incident_id']}: RESOLVED" in t for t in texts)


def test_a_fix_that_does_not_hold_escalates_and_leaves_nothing_stopped(stack: Stack, tmp_path: Path) -> None:
    standin(stack, 1, "crash-worker")
    standin(stack, 1, "break-restart", on=True)
    state = emergency_recovery(environment="development", service="worker", action="restart", hosts=["host2"],
                               settle_checks=2, settle_interval_s=0.2, config=quiet(stack, tmp_path / "i.yaml"),
                               return_state=True)
    assert state.is_failed() and "host2 worker unhealthy" in state.message
    after = standin(stack, 1)
    assert after["stopped"] == []  # stopped by the run, started again
    texts = [c["args"]["text"] for c in slack_calls(stack)]
    assert any("ESCALATED" in t for t in texts)
    artifacts = {a.key: a for a in artifacts_of(state.state_details.flow_run_id)}
    report = artifacts["emergency-recovery-development-report"]
    assert "## verify: failed" in report.data and "## restart: done" in report.data and "left stopped" not in report.data
    postmortem = artifacts["postmortem-development"].data
    assert "escalated" in postmortem and "- started worker on host2 again" in postmortem


def test_the_same_command_twice_in_one_run_runs_twice(stack: Stack, tmp_path: Path) -> None:
    """No side effect is served from cache: the fix's `start` and the restart stage's identical
    `start` after a failed verification are two calls on the host, and no task of a first attempt
    ends Cached (a retried run still resumes: tests/integration/test_deployments.py)."""
    standin(stack, 1, "reset")
    standin(stack, 1, "crash-worker")  # clear_cache + start does not fix a crash: verification fails
    log = stack.fleet.hosts[1].root / "event-manager.log"
    before = log.read_text().count('"/_control/start"')
    state = emergency_recovery(environment="development", service="worker", action="clear_cache", hosts=["host2"],
                               settle_checks=1, settle_interval_s=0.1, config=quiet(stack, tmp_path / "i.yaml"),
                               return_state=True)
    assert state.is_failed() and "host2 worker unhealthy" in state.message
    assert log.read_text().count('"/_control/start"') - before == 2  # the fix's start, then the restart stage's
    runs = settled_task_runs(state.state_details.flow_run_id)
    assert not [tr.name for tr in runs if tr.state.name == "Cached"]
    standin(stack, 1, "reset")
