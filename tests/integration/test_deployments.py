"""Deployments: prefect.yaml agrees with the windows and the flows; served runs can be retried
from the UI and only the failed steps run again."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.flows import load_flow_from_entrypoint
from prefect.states import Scheduled

from deployments.cli import main as upkeep
from deployments.specs import ROUTINES, deployment_specs, example_inventory
from sandbox.procs import Proc
from sandbox.stack import Stack
from tests.helpers import deployment_exists, flow_run_state, settled_task_runs, standin, wait_for
from upkeep.config.loader import load_inventory
from upkeep.routines import own_cadence

ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_agrees_with_specs_windows_and_flows(capsys: pytest.CaptureFixture[str]) -> None:
    assert upkeep(["deployments"]) == 0, "prefect.yaml is stale: run `upkeep deployments --write`"
    data = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in data["deployments"]}
    environments = example_inventory().environments  # the windows the guard uses, the one source of the schedules
    assert list(environments) == ["production", "staging", "development"]
    assert set(deployments) == {r.deployment_name(e) for r in ROUTINES for e in environments}
    scheduled = 0
    for spec in deployment_specs():
        d = deployments[spec.name]
        window = environments[spec.environment].window.to_window()
        if own_cadence(spec.routine) is None:
            assert d["schedules"] == []  # on demand, or a scheduled composite runs it
        else:
            (schedule,) = d["schedules"]
            scheduled += 1
        if own_cadence(spec.routine) and spec.routine.disruptive and not window.always:
            # disruptive routines start when their window opens (same minute, hour and timezone)
            assert schedule["cron"].split()[:2] == window.cron.split()[:2]
            assert schedule["timezone"] == window.timezone
            assert schedule["cron"].split()[4] in ("0", window.cron.split()[4])
            if own_cadence(spec.routine) == "monthly":  # the month's first opening of the window
                weekly = window.cron.split()[4] != "*"
                assert schedule["cron"].split()[2] == ("1-7" if weekly else "1")
                assert schedule["day_or"] is (not weekly)
        flow = load_flow_from_entrypoint(str(ROOT / d["entrypoint"]), use_placeholder_flow=False)
        flow.validate_parameters(d["parameters"])  # raises on a parameter the flow does not take
        assert set(d["parameters"]) <= set(inspect.signature(flow.fn).parameters)
    # dependency-updates, health-check, verify-backup (sampled, midday), prune-runs, security-check and the four
    # composites (everything else runs inside one of them: upkeep/routines.py COMPOSITES)
    assert scheduled == 9 * len(environments)


def test_served_schedules_are_the_windows_of_the_inventory_served(stack: Stack, served: Proc) -> None:
    """`upkeep serve` schedules from the inventory it runs against (the sandbox's, whose windows are the
    example's): the schedules on the server open with the windows its guard enforces."""
    inv = load_inventory(stack.inventory_path)
    specs = deployment_specs(inv)
    assert len(specs) == len(deployment_specs())  # the sandbox has the example's environments
    with get_client(sync_client=True) as client:
        for spec in specs:  # `served` waits for one deployment; `serve` registers the others one by one
            path = spec.routine.deployment_path(spec.environment)
            wait_for(lambda: deployment_exists(client, path), timeout=60, what=f"served deployment {path}")  # noqa: B023 - called within this iteration
            d = client.read_deployment_by_name(path)
            got = [(s.schedule.cron, s.schedule.timezone, s.schedule.day_or) for s in d.schedules]
            assert got == ([(spec.cron, spec.timezone, spec.day_or)] if spec.cron else []), spec.name
        weekly = client.read_deployment_by_name("weekly-maintenance/weekly-maintenance-production")
        window = inv.environment("production").window
        assert [(s.schedule.cron, s.schedule.timezone) for s in weekly.schedules] == [(window.cron, window.timezone)]


def test_retry_from_the_ui_reruns_only_the_failed_steps(stack: Stack, served: Proc) -> None:
    before = [standin(stack, i)["cache_clears"] for i in (0, 1)]
    fault = ["sandbox", "fail", "--base", str(stack.base), "--host", "host2", "--step", "clear-cache"]
    assert upkeep(fault) == 0  # host2's cache clear keeps failing (the README tour's command)
    try:
        run = run_deployment("clear-cache/clear-cache-development", timeout=180)
        assert run.state is not None and run.state.is_failed(), run.state
    finally:
        assert upkeep([*fault, "--times", "0"]) == 0  # the fault is fixed
    after_fail = [standin(stack, i)["cache_clears"] for i in (0, 1)]
    assert after_fail == [before[0] + 1, before[1]]  # host1 cleared, host2 failed

    # what the UI's Retry button does
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run.id, Scheduled(name="AwaitingRetry"), force=True)
    final = wait_for(lambda: (s := flow_run_state(run.id)) and s.is_final() and s, timeout=180, what="the retried run")
    assert final.is_completed(), final
    after_retry = [standin(stack, i)["cache_clears"] for i in (0, 1)]
    assert after_retry == [before[0] + 1, before[1] + 1]  # host1 not cleared again; host2 now cleared

    by_name: dict[str, list[str]] = {}
    for tr in settled_task_runs(run.id):
        by_name.setdefault(tr.name, []).append(tr.state.name)
    host1_clear = [n for name, states in by_name.items() if "clear_cache-api[host1]" in name for n in states]
    assert "Cached" in host1_clear, by_name  # the completed step came back from its persisted result
