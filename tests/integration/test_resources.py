"""Injected resources (upkeep.resources): a flow runs on the hosts and notifier a test gives it, and a
routine called by another uses its caller's clients instead of loading the inventory again.

Only the Prefect server, S3 and MongoDB of the session's stack are used: the hosts are fakes (no SSH),
the notifier records (no Slack)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flows.disk_check import disk_check
from flows.maintenance import daily_maintenance
from sandbox.stack import Stack
from tests.fakes import FakeHost, RecordingNotifier
from tests.helpers import report_of, slack_calls
from upkeep.config.loader import load_inventory
from upkeep.hosts.local import LocalHost
from upkeep.resources import Resources, use_resources

pytestmark = pytest.mark.stack


def _fakes(stack: Stack, low: str) -> dict[str, Any]:
    env = load_inventory(str(stack.inventory_path)).environment("development")
    return {h.name: FakeHost(h.name, 3.0 if h.name == low else 60.0) for h in env.hosts}


def test_a_flow_runs_on_injected_hosts_and_notifier(stack: Stack) -> None:
    inventory = load_inventory(str(stack.inventory_path))
    hosts: dict[str, Any] = _fakes(stack, low="host2")
    hosts["host1"] = LocalHost("host1")  # this machine, through psutil
    notifier = RecordingNotifier()
    before = len(slack_calls(stack))
    with Resources(inventory, "development", hosts=hosts, notifier=notifier) as res, use_resources(res):
        state = disk_check(environment="development", return_state=True)
        assert res.hosts.get("host2") is hosts["host2"]  # the pool still holds the given hosts
    assert state.is_completed(), state.message
    report = report_of(state.state_details.flow_run_id).data
    assert "| disk-space | host2 | done |" in report and "/: 3.0% free (3.0 GiB)" in report
    assert [m.severity for m in notifier.messages] == ["warning"] and "host2" in notifier.messages[0].text
    assert notifier.messages[0].routine == "disk-check"
    # The inventory's Slack was never built: nothing about this run reached the recorder. (Other calls may:
    # the worker's stack also serves earlier modules' deployments and approval relay.)
    run_id = str(state.state_details.flow_run_id)
    leaked = [c for c in slack_calls(stack)[before:] if run_id in json.dumps(c) or "on host2" in json.dumps(c)]
    assert not leaked, leaked
    assert not any(h.closed for h in hosts.values() if isinstance(h, FakeHost))  # given: the test's to close


def test_a_routine_called_by_another_uses_its_callers_resources(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    import upkeep.resources

    inventory = load_inventory(str(stack.inventory_path))
    loads: list[str | None] = []

    def counted(path: str | None = None) -> Any:
        loads.append(path)
        return load_inventory(path)

    monkeypatch.setattr(upkeep.resources, "load_inventory", counted)
    hosts, notifier = _fakes(stack, low="host3"), RecordingNotifier()
    with Resources(inventory, "development", hosts=hosts, notifier=notifier) as res, use_resources(res):
        outcomes = daily_maintenance(environment="development")  # disk-check, logs, backup → verify-backup
        assert res.mongo.admin.command("ping")["ok"]  # the subflows left the caller's connection open
    assert outcomes.pop("support-queue").startswith("Completed: Support queue: ")  # its figures, in the daily summary
    assert outcomes == {"disk-check": "Completed", "log-rotation": "Completed", "clean-temp": "Completed",
                        "log-analysis": "Completed", "backup": "Completed"}
    assert loads == []  # no subflow loaded the inventory again
    routines = [m.routine for m in notifier.messages]
    assert "disk-check" in routines and "backup" in routines  # every subflow notified through the given notifier
    assert any("written and verified" in t for t in notifier.texts("backup"))
    assert not any(h.closed for h in hosts.values())
