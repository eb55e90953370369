"""The system update routine on sandbox sshd hosts (sandbox package driver), real Prefect server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.flow_runs import resume_flow_run
from prefect.states import Scheduled

from flows.system_update import system_update
from sandbox.procs import Proc
from sandbox.stack import Stack
from tests.helpers import (
    flow_run_state,
    inventory_variant,
    latest_flow_run,
    report_of,
    settled_task_runs,
    slack_calls,
    standin,
    task_runs_of,
    wait_for,
)
from tests.integration.test_guard import closed_window
from upkeep.hosts import HostPool
from upkeep.packages import SandboxDriver, seed, set_fault
from upkeep.runrecords import record_key

pytestmark = pytest.mark.stack
INSTALLED = {"event-manager": "2.3.1", "express": "4.17.1", "openssl": "3.0.14-1", "linux-image-amd64": "6.1.115-1"}
AVAILABLE = {
    "event-manager": {"version": "2.4.0", "kind": "minor"},
    "express": {"version": "5.0.1", "kind": "major"},            # needs approval
    "openssl": {"version": "3.0.15-1", "kind": "security"},
    "linux-image-amd64": {"version": "6.1.119-1", "kind": "kernel"},  # needs approval
}
HOSTS = ["host1", "host2", "host4", "host5"]


@pytest.fixture
def fleet(stack: Stack, inventory) -> Iterator[HostPool]:
    """Every sandbox host seeded with the same installed and available versions."""
    yield from seeded_fleet(stack, inventory)


def seeded_fleet(stack: Stack, inventory) -> Iterator[HostPool]:
    """The `fleet` fixture's body (other modules' fixtures reuse it): seeded hosts, faults cleared at the end."""
    pool = HostPool(inventory.environment("development"), inventory.ssh)
    stack.seed_apt()  # every host's apt root back to the first versions
    for name in HOSTS:
        seed(pool.get(name), pool.get_config(name).vars["root"], INSTALLED, AVAILABLE)
    for i in (0, 1):
        standin(stack, i, "reset")
    yield pool
    for name in HOSTS:
        set_fault(pool.get(name), pool.get_config(name).vars["root"], enabled=False)
    pool.close()


def history(pool: HostPool, host: str) -> list[dict[str, Any]]:
    return SandboxDriver(pool.get(host), pool.get_config(host).vars["root"]).history()


def installed(pool: HostPool, host: str) -> dict[str, str]:
    return SandboxDriver(pool.get(host), pool.get_config(host).vars["root"]).installed()


def config(stack: Stack, tmp_path: Path, **changes: Any) -> str:
    """Development without the backup step, unattended: items that need approval are held back."""
    data = yaml.safe_load(stack.inventory_path.read_text())
    updates = {**data["environments"]["development"]["updates"], "backup_first": False, "approvals": "hold",
               **changes.pop("updates", {})}
    return inventory_variant(stack, tmp_path / "inv.yaml", "development", updates=updates, **changes)


def test_happy_path_with_one_major_item_approved(stack: Stack, fleet: HostPool, tmp_path: Path) -> None:
    cfg = config(stack, tmp_path, updates={"backup_first": True, "approvals": "ask"}, approval_timeout="5m")
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.setdefault("state", system_update(
        environment="development", config=cfg, hosts=["host1", "host2", "host4"], return_state=True)), daemon=True)
    thread.start()
    paused = wait_for(lambda: latest_flow_run("system-update", "PAUSED"), timeout=120, what="the approval pause")
    for h in ("host1", "host2", "host4"):
        assert installed(fleet, h) == INSTALLED  # nothing applied before the approval
    resume_flow_run(paused.id, run_input={"approver": "bob", "approved": ["sandbox:express"], "reason": "tested in staging"})
    thread.join(180)
    state = box["state"]
    assert state.is_completed(), state.message
    expected = {**INSTALLED, "event-manager": "2.4.0", "express": "5.0.1", "openssl": "3.0.15-1"}  # kernel held back
    for h in ("host1", "host2", "host4"):
        assert installed(fleet, h) == expected
    assert installed(fleet, "host5") == INSTALLED  # not in the run
    report = report_of(paused.id).data
    assert "| express | host1 | done | " in report and "sandbox: 4.17.1 → 5.0.1" in report
    assert "| sandbox | host1 | skipped |" in report and "linux-image-amd64" in report and "needs approval" in report
    assert "approved by **bob**: sandbox:express" in report
    assert "backup" in {tr.name.split(":")[0] for tr in task_runs_of(paused.id)} or "## pre: done" in report


def test_failed_post_verification_rolls_back_that_host_only(stack: Stack, fleet: HostPool, tmp_path: Path) -> None:
    # the new openssl breaks the application on host2 (its API answers 500 while that version is installed)
    standin(stack, 1, "break-version", package="openssl", version="3.0.15-1")
    cfg = config(stack, tmp_path, max_concurrency=1, max_errors=1)
    state = system_update(environment="development", config=cfg, hosts=["host1", "host2"], return_state=True)
    assert state.is_failed() and "host2: post-update checks failed" in state.message and "rolled back" in state.message
    assert installed(fleet, "host2") == INSTALLED  # exactly the previous versions, and verified healthy again
    assert installed(fleet, "host1")["openssl"] == "3.0.15-1"  # kept
    report = report_of(state.state_details.flow_run_id).data
    assert "| openssl | host2 | rolled back |" in report and "| openssl | host1 | done |" in report
    notices = [c["args"]["text"] for c in slack_calls(stack) if "update FAILED on 1 host(s): host2" in c["args"].get("text", "")]
    assert notices and "rolled back and verified: host2" in notices[-1] and "1 updated" in notices[-1]


def test_error_budget_leaves_remaining_hosts_untouched(stack: Stack, fleet: HostPool, tmp_path: Path) -> None:
    for h in ("host2", "host4"):
        set_fault(fleet.get(h), fleet.get_config(h).vars["root"])
    cfg = config(stack, tmp_path, max_concurrency=1, max_errors=1)
    state = system_update(environment="development", config=cfg, hosts=["host1", "host2", "host4", "host5"], return_state=True)
    assert state.is_failed()
    assert installed(fleet, "host1")["openssl"] == "3.0.15-1"
    assert installed(fleet, "host2") == INSTALLED and installed(fleet, "host4") == INSTALLED
    assert installed(fleet, "host5") == INSTALLED  # never touched: 2 failures > max_errors 1
    report = report_of(state.state_details.flow_run_id).data
    assert "| update | host5 | skipped |" in report and "not started: 2 failed > max_errors 1" in report


def test_unreachable_host_stops_before_any_change(stack: Stack, fleet: HostPool, tmp_path: Path) -> None:
    data = yaml.safe_load(stack.inventory_path.read_text())
    hosts = data["environments"]["development"]["hosts"] + [{"name": "ghost", "address": "127.0.0.254", "port": 22}]
    cfg = config(stack, tmp_path, hosts=hosts)
    state = system_update(environment="development", config=cfg, hosts=["host1", "ghost"], return_state=True)
    assert state.is_failed() and "ghost" in state.message
    assert installed(fleet, "host1") == INSTALLED
    skip = config(stack, tmp_path, hosts=hosts, updates={"on_unreachable": "skip"})
    state = system_update(environment="development", config=skip, hosts=["host1", "ghost"], return_state=True)
    assert state.is_completed() and installed(fleet, "host1")["openssl"] == "3.0.15-1"
    assert "left out (unreachable): ghost" in report_of(state.state_details.flow_run_id).data


def test_outside_the_window_nothing_is_touched_and_emergency_asks(stack: Stack, fleet: HostPool, tmp_path: Path) -> None:
    cfg = inventory_variant(stack, tmp_path / "p.yaml", "production", window=closed_window(),
                            updates={"sources": [{"manager": "sandbox", "root": "{root}"}], "backup_first": False})
    state = system_update(environment="production", config=cfg, hosts=["host1"], return_state=True)
    assert state.name == "Skipped" and installed(fleet, "host1") == INSTALLED
    thread = threading.Thread(target=lambda: system_update(environment="production", config=cfg, hosts=["host1"],
                                                           emergency=True, return_state=True), daemon=True)
    thread.start()
    paused = wait_for(lambda: latest_flow_run("system-update", "PAUSED"), timeout=60, what="the emergency approval")
    assert installed(fleet, "host1") == INSTALLED
    resume_flow_run(paused.id, run_input={"approve": False, "approver": "carol", "reason": "not now"})
    thread.join(60)
    assert installed(fleet, "host1") == INSTALLED


def test_dry_run_publishes_the_plan_and_changes_nothing(stack: Stack, fleet: HostPool, tmp_path: Path) -> None:
    result = system_update(environment="development", config=config(stack, tmp_path), hosts=["host1"], dry_run=True)
    assert any("express 4.17.1 → 5.0.1" in line or "express" in line for line in result["plan"]["host1"])
    assert installed(fleet, "host1") == INSTALLED


def test_rerun_resumes_at_the_failed_host(stack: Stack, fleet: HostPool, served: Proc) -> None:
    set_fault(fleet.get("host2"), fleet.get_config("host2").vars["root"])
    run = run_deployment("system-update/system-update-development", timeout=240,
                         parameters={"hosts": ["host1", "host2"], "scope": "security"})
    assert run.state is not None and run.state.is_failed()
    set_fault(fleet.get("host2"), fleet.get_config("host2").vars["root"], enabled=False)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Scheduled(name="AwaitingRetry"), force=True)
    final = wait_for(lambda: (s := flow_run_state(run.id)) and s.is_final() and s, timeout=240, what="the retried run")
    assert final.is_completed(), final.message
    assert installed(fleet, "host1")["openssl"] == "3.0.15-1" and installed(fleet, "host2")["openssl"] == "3.0.15-1"
    # host1 was updated exactly once over both attempts (its package manager's history); host2's failed
    # apply was rolled back in the first attempt (it may have changed packages part-way), applied on the retry
    assert [h["action"] for h in history(fleet, "host1")] == ["apply"]
    assert [h["action"] for h in history(fleet, "host2")] == ["rollback", "apply"]
    states: dict[str, list[str]] = {}
    for tr in settled_task_runs(run.id):
        states.setdefault(tr.name, []).append(tr.state.name)
    assert sorted(states["execute:rolling-update"]) == ["Completed", "Failed"], states
    assert "Failed" not in states["plan:updates"], states
    report = report_of(run.id).data
    assert "| update | host1 | done |  | done in an earlier attempt of this run |" in report, report
    assert "| openssl | host2 | done | " in report and "sandbox: 3.0.14-1 → 3.0.15-1" in report


def test_production_applies_only_what_staging_proved_two_days_earlier(stack: Stack, fleet: HostPool, tmp_path: Path) -> None:
    """The promotion gate reads staging's real run record: fresh, every version is held with the date it becomes
    eligible; the same record two days older (time passing, simulated by its end time), they are applied."""
    import json

    from upkeep.resources import Resources

    data = yaml.safe_load(stack.inventory_path.read_text())
    updates = {**data["environments"]["development"]["updates"], "backup_first": False, "approvals": "hold"}
    for env in ("staging", "production"):
        data["environments"][env].update(window={"always": True}, updates=updates)
    data["environments"]["production"]["updates"] = {**updates, "promotion": {"from_environment": "staging", "min_age": "2d"}}
    cfg = tmp_path / "promotion.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))

    staged = system_update(environment="staging", config=str(cfg), hosts=["host4"], return_state=True)
    assert staged.is_completed(), staged.message
    # express (major) and the kernel were held; apt's em-tool came from the security suite
    proven = {"sandbox:event-manager=2.4.0", "sandbox:openssl=3.0.15-1", "apt:em-tool=1.2"}
    with Resources.from_config(str(cfg), "staging") as res:
        store = res.run_records()
        assert store is not None
        run_id = str(staged.state_details.flow_run_id)
        record = next(r for r in store.list("staging", "system-update") if r["flow_run_id"] == run_id)
        assert set(record["facts"]["applied"]) == proven

        held = system_update(environment="production", config=str(cfg), hosts=["host5"], return_state=True)
        assert held.is_completed(), held.message
        assert installed(fleet, "host5") == INSTALLED  # nothing proven two days ago yet
        report = report_of(held.state_details.flow_run_id).data
        assert "applied in staging on" in report and "eligible from" in report and "held by the promotion gate" in report

        older = {**record, "ended_at": (datetime.fromisoformat(record["ended_at"]) - timedelta(days=3)).isoformat()}
        key = record_key(store.prefix, record)
        store.s3.put_object(Bucket=store.bucket, Key=key, Body=json.dumps(older).encode())
    promoted = system_update(environment="production", config=str(cfg), hosts=["host5"], return_state=True)
    assert promoted.is_completed(), promoted.message
    assert installed(fleet, "host5") == {**INSTALLED, "event-manager": "2.4.0", "openssl": "3.0.15-1"}
