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


def quiet(stack: Stack, path: Path, *, probe_agent: str | None = "", **changes: Any) -> str:
    """The development inventory without auto-recovery, with a monitoring database of its own
    (the rolling service levels of one test must not leak into another); `probe_agent=None`: cold probes."""
    data = yaml.safe_load(stack.inventory_path.read_text())
    monitoring = data["environments"]["development"]["monitoring"]
    store = {**monitoring["store"], "databases": [monitoring_db(path)]}
    monitoring = {**monitoring, "auto_recover": None, "store": store,
                  **({} if probe_agent == "" else {"probe_agent": probe_agent})}
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
    seconds = float(probe_line.split(" in ")[1].split("s")[0])  # "## probe: done in 5.07s (06:28:01.559–… UTC)"
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
    texts = [c["args"].get("text", "") for c in slack_calls(stack)]
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
    texts = [c["args"].get("text", "") for c in slack_calls(stack)]
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
    texts = [c["args"].get("text", "") for c in slack_calls(stack)]
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
    before = log.read_text().count('"path": "/_control/start"')
    state = emergency_recovery(environment="development", service="worker", action="clear_cache", hosts=["host2"],
                               settle_checks=1, settle_interval_s=0.1, config=quiet(stack, tmp_path / "i.yaml"),
                               return_state=True)
    assert state.is_failed() and "host2 worker unhealthy" in state.message
    assert log.read_text().count('"path": "/_control/start"') - before == 2  # the fix's start, then the restart stage's
    runs = settled_task_runs(state.state_details.flow_run_id)
    assert not [tr.name for tr in runs if tr.state.name == "Cached"]
    standin(stack, 1, "reset")


# -- outage alerts ------------------------------------------------------------------------------------
# The built-in rules fire after a minute down (two checks a minute apart); here the same rules, by
# name, with a 1 s duration, so that the second failed check of a test (a few seconds later) fires.
FAST = [{"name": name, "metric": "up", "target": target, "op": "<", "threshold": 1, "duration": "1s",
         "severity": "critical", "repeat_interval": "1h"}
        for name, target in (("service_down", "service"), ("database_unreachable", "database"),
                             ("host_unreachable", "host"))]


def notices(stack: Stack, since: int, needle: str) -> list[dict[str, Any]]:
    """The Slack calls after the first `since` whose text contains `needle`."""
    return [c["args"] for c in slack_calls(stack)[since:] if needle in c["args"].get("text", "")]


def alert_events(rule: str, subject: str) -> list[Any]:
    """The Prefect events Upkeep emitted about one alert (upkeep.alert.firing / resolved)."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    flt = EventFilter(event=EventNameFilter(prefix=["upkeep.alert."]),
                      resource=EventResourceFilter(labels={"upkeep.rule": [rule], "upkeep.subject": [subject]}))
    with get_client(sync_client=True) as client:
        return list(client.read_events(filter=flt, limit=50).events)


def test_a_stopped_api_pages_once_and_resolves_once(stack: Stack, tmp_path: Path) -> None:
    slack = {"channel": "#ops", "token": "env:UPKEEP_SANDBOX_SLACK_TOKEN", "base_url": stack.slack_url,
             "routes": {"critical": "#oncall"}}
    config = quiet(stack, tmp_path / "i.yaml", alerts=FAST, slack=slack)
    start = len(slack_calls(stack))
    assert health_check(environment="development", config=config)["healthy"]
    standin(stack, 0, "stop", component="api")
    pending = health_check(environment="development", config=config)  # the first failed check: pending
    assert "host1 api: down" in pending["breaches"] and notices(stack, start, "service_down") == []
    fired = health_check(environment="development", config=config)  # the second: one page
    assert [a["kind"] for a in fired["alerts"] if a["rule"] == "service_down"] == ["fire"]
    health_check(environment="development", config=config)  # still down: no second page
    pages = notices(stack, start, "service_down: host1/api")
    assert len(pages) == 1 and "host1/api down since" in pages[0]["text"] and pages[0]["channel"] == "#oncall"
    standin(stack, 0, "start", component="api")
    back = health_check(environment="development", config=config)
    assert "host1 api: down" not in back["breaches"]
    resolved = notices(stack, start, "RESOLVED service_down: host1/api is back")
    assert len(resolved) == 1 and resolved[0]["channel"] == "#ops"  # resolved notices go to the default route
    assert len(notices(stack, start, "service_down: host1/api")) == 2  # the page and the resolution, nothing else
    # the service level of the period fell below the SLO (2 of 8 api probes failed): a warning, not a page
    assert notices(stack, start, "availability_below_slo on api") and not notices(stack, start, "host2/api")
    kinds = wait_for(lambda: (k := sorted(e.event for e in alert_events("service_down", "host1/api"))) and len(k) >= 2 and k,
                     timeout=30, what="the alert's Prefect events")
    assert kinds == ["upkeep.alert.firing", "upkeep.alert.resolved"]


def test_an_unreachable_database_and_host_page_once_each_and_resolve(
        stack: Stack, tmp_path: Path, throwaway_db: tuple[Proc, str]) -> None:
    from sandbox.procs import spawn
    from sandbox.sshd import SSHD

    proc, uri = throwaway_db
    port = int(uri.rstrip("/").rsplit(":", 1)[1])
    db = {"uri": "env:UPKEEP_TEST_DB_URI", "databases": ["eventmanager"], "timeout": "2s"}
    # cold probes: the session's probe agent keeps an SSH session open, which outlives the stopped sshd listener
    # (a host that is really down takes its sessions with it: paramiko's keepalive notices)
    config = quiet(stack, tmp_path / "i.yaml", alerts=FAST, mongodb=db, probe_agent=None)
    assert stack.fleet is not None
    victim = stack.fleet.hosts[-1]
    assert victim.proc is not None
    start = len(slack_calls(stack))
    assert health_check(environment="development", config=config)["healthy"]
    stop_pid(proc.pid)
    stop_pid(victim.proc.pid, timeout=5)
    victim.proc = None
    try:
        for _ in range(3):  # pending, firing, still firing
            result = health_check(environment="development", config=config)
        assert "database database: down" in result["breaches"] and f"{victim.name} host: unreachable" in result["breaches"]
        assert len(notices(stack, start, "database_unreachable: database unreachable since")) == 1
        assert len(notices(stack, start, f"host_unreachable: {victim.name} unreachable since")) == 1
    finally:
        conf = stack.fleet.base / "keys" / f"{victim.name}.conf"
        victim.proc = spawn(f"sshd-{victim.name}", [str(SSHD), "-D", "-e", "-f", str(conf)],
                            stack.base / "logs" / f"sshd-{victim.name}-again.log")
        wait_for(lambda: port_open(victim.address, victim.port), timeout=15, what=f"sshd {victim.name} again")
    again = spawn("secantus-throwaway-again", [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
                                               "--storage-path", ":memory:", "--log-level", "WARNING"], tmp_path / "db2.log")
    try:
        wait_for(lambda: port_open("127.0.0.1", port), timeout=30, what="the database back")
        back = health_check(environment="development", config=config)["breaches"]
        assert "database database: down" not in back and f"{victim.name} host: unreachable" not in back
        assert len(notices(stack, start, "RESOLVED database_unreachable: database is back")) == 1
        assert len(notices(stack, start, f"RESOLVED host_unreachable: {victim.name} is back")) == 1
    finally:
        again.stop()


def test_alerts_test_sends_a_notice_to_every_route(stack: Stack, tmp_path: Path) -> None:
    from deployments.cli import main

    slack = {"channel": "#ops", "token": "env:UPKEEP_SANDBOX_SLACK_TOKEN", "base_url": stack.slack_url,
             "routes": {"critical": "#oncall"}, "escalation": {"channel": "#bridge", "mention": "@here"}}
    config = quiet(stack, tmp_path / "i.yaml", slack=slack)
    start = len(slack_calls(stack))
    assert main(["--config", config, "alerts", "test", "--env", "development"]) == 0
    sent = {c["args"]["channel"]: c["args"]["text"] for c in slack_calls(stack)[start:] if c["method"] == "chat.postMessage"}
    assert set(sent) == {"#ops", "#oncall", "#bridge"}
    assert "#oncall receives critical notices of development" in sent["#oncall"]
    assert sent["#bridge"].startswith("<!here> :rotating_light: *[development] alerts*: test notice")
    assert main(["--config", config, "alerts", "test", "--env", "nowhere"]) == 1  # named, one line (stderr)
