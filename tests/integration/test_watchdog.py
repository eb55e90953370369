"""The watchdog fires from the Prefect server when the health-check deployment is paused and when the process serving
it is killed: its notice reaches the Slack recorder, sent by the server through the watchdog's notification block.

Not the session's `served` process (other tests use it): this module serves one health-check deployment of its own
(`health-check-watchdog-test`, environment staging) from its own process, with its own automations and a 20 s window.

Its runs are created through the API every few seconds (as the UI's Quick run does), standing in for the scheduler,
and, as the scheduler does, not while the deployment is paused. Not by the scheduler itself: the server holds the
state events of a run whose Scheduled state is less than 5 minutes older than its start (the scheduler's first runs
of a new deployment) for up to 15 minutes, waiting for a Scheduled event the scheduler never emits; a deployment
registered for a test has only such runs. In steady state the scheduler creates runs an hour or more ahead.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect.automations import SendNotification
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)

from deployments.watchdog import ensure_automation, health_check_automation, late_runs_automation, slack_block
from sandbox.procs import Proc, spawn
from sandbox.stack import Stack
from tests.helpers import deployment_exists, slack_calls, wait_for
from upkeep.config.models import Inventory
from upkeep.config.secrets import resolve_secret
from upkeep.routines import HEALTH_CHECK

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]
ENV = "watchdog-test"  # the automations' environment label; the runs probe staging
DEPLOYMENT = f"health-check-{ENV}"
WITHIN = timedelta(seconds=20)
NAMES = (f"test-watchdog-{ENV}-health-check", f"test-watchdog-{ENV}-late-runs")
SERVE = ("import sys; from prefect import serve; from prefect.flows import load_flow_from_entrypoint; "
         "f = load_flow_from_entrypoint(sys.argv[1], use_placeholder_flow=False); "
         "serve(f.to_deployment(name=sys.argv[2], parameters={'environment': 'staging'}), print_starting_message=False)")


@dataclass
class Watched:
    proc: Proc
    deployment_id: UUID
    stop: threading.Event = field(default_factory=threading.Event)


def _ticker(w: Watched) -> None:
    """A run of the deployment every 3 s, none while it is paused (what the scheduler does)."""
    with get_client(sync_client=True) as client:
        while not w.stop.wait(3):
            if not client.read_deployment(w.deployment_id).paused:
                client.create_flow_run_from_deployment(w.deployment_id)


@pytest.fixture(scope="module")
def watched(stack: Stack, inventory: Inventory) -> Iterator[Watched]:
    assert inventory.slack is not None
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_RUNNER_POLL_FREQUENCY": "2"}
    proc = spawn("serve-watchdog-test", [sys.executable, "-c", SERVE, str(ROOT / HEALTH_CHECK.entrypoint), DEPLOYMENT],
                 stack.base / "logs" / "serve-watchdog-test.log", env=env, cwd=ROOT)
    block_id: UUID | None = None
    w: Watched | None = None
    try:
        with get_client(sync_client=True) as client:
            wait_for(lambda: deployment_exists(client, f"{HEALTH_CHECK.flow}/{DEPLOYMENT}"), timeout=90, what="served deployment")
            deployment_id = client.read_deployment_by_name(f"{HEALTH_CHECK.flow}/{DEPLOYMENT}").id
            block = slack_block(inventory.slack, resolve_secret(inventory.slack.token), ENV)
            block_id = block.save(f"test-watchdog-slack-{ENV}", overwrite=True)
            action = SendNotification(block_document_id=block_id, body="-")
            for automation in (health_check_automation(ENV, DEPLOYMENT, WITHIN, action, name=NAMES[0]),
                               late_runs_automation(ENV, [DEPLOYMENT], timedelta(minutes=10), action, name=NAMES[1])):
                assert ensure_automation(client, automation) in ("created", "updated")
        w = Watched(proc, deployment_id)
        threading.Thread(target=_ticker, args=(w,), daemon=True).start()
        yield w
    finally:
        if w is not None:
            w.stop.set()
        proc.stop()
        _clean_up(block_id)


def _clean_up(block_id: UUID | None) -> None:
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for name in NAMES:
            for automation in client.read_automations_by_name(name):
                client.delete_automation(automation.id)
        if block_id is not None:
            client.delete_block_document(block_id)
        try:
            deployment = client.read_deployment_by_name(f"{HEALTH_CHECK.flow}/{DEPLOYMENT}")
        except ObjectNotFound:
            return
        runs = client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))
        for run in runs:
            client.delete_flow_run(run.id)
        client.delete_deployment(deployment.id)


def _completed_after(w: Watched, after: datetime) -> bool:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[w.deployment_id])),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(any_=["COMPLETED"]))))
    return any(r.end_time is not None and r.end_time > after for r in runs)


def _notices(stack: Stack, what: str, after: datetime) -> list[dict[str, Any]]:
    """Watchdog notices of this module's automations recorded after `after` (`what`: words of the subject)."""
    return [c for c in slack_calls(stack) if c["method"] == "chat.postMessage"
            and what in c["args"].get("text", "") and datetime.fromisoformat(c["recorded_at"]) > after]


HEALTH = f"no health check completed in {ENV}"
LATE = f"a scheduled run in {ENV} did not start"


def test_watchdog_fires_when_the_health_check_deployment_is_paused(stack: Stack, watched: Watched) -> None:
    start = datetime.now(UTC)
    wait_for(lambda: _completed_after(watched, start), timeout=90, interval=1, what="a completed health check")
    time.sleep(5)  # a few more completed runs: the healthy stretch says nothing
    assert not _notices(stack, HEALTH, start), "the watchdog fired while health checks were completing"
    paused_at = datetime.now(UTC)
    with get_client(sync_client=True) as client:
        client.pause_deployment(watched.deployment_id)
    try:
        (notice, *more) = wait_for(lambda: _notices(stack, HEALTH, paused_at), timeout=WITHIN.total_seconds() + 45,
                                   interval=1, what="the watchdog's notice after pausing")
    finally:
        with get_client(sync_client=True) as client:
            client.resume_deployment(watched.deployment_id)
    text = notice["args"]["text"]
    assert notice["token_present"] and notice["args"]["channel"] == "#ops"
    assert f"No run of `{DEPLOYMENT}` has completed since" in text and "20s without one" in text
    assert f"The deployment `{DEPLOYMENT}` is *paused*: resume it" in text
    assert f"Deployment: http://127.0.0.1:{stack.ports['prefect']}/deployments/deployment/{watched.deployment_id}" in text
    assert "Last completed run: http" in text
    assert not more, "one notice per outage"


def test_watchdog_fires_when_the_serving_process_is_killed(stack: Stack, watched: Watched) -> None:
    start = datetime.now(UTC)
    wait_for(lambda: _completed_after(watched, start), timeout=90, interval=1, what="a completed health check after resuming")
    killed_at = datetime.now(UTC)
    os.killpg(watched.proc.pid, signal.SIGKILL)  # no graceful shutdown: nothing pauses or reports anything
    health = wait_for(lambda: _notices(stack, HEALTH, killed_at), timeout=WITHIN.total_seconds() + 45, interval=1,
                      what="the watchdog's notice after killing the serving process")
    text = health[0]["args"]["text"]
    assert "`upkeep serve` (or the worker of its work pool) may be stopped or stuck" in text and "paused" not in text
    late = wait_for(lambda: _notices(stack, LATE, killed_at), timeout=45, interval=1, what="the late-run notice")
    assert f"of `{DEPLOYMENT}` in {ENV} was due at" in late[0]["args"]["text"] and "has not started" in late[0]["args"]["text"]
    time.sleep(3)
    assert len(_notices(stack, LATE, killed_at)) == 1, "one late-run notice per deployment per late_repeat"
    assert len(_notices(stack, HEALTH, killed_at)) == 1


def test_serve_creates_every_environments_watchdog_once(stack: Stack, inventory: Inventory) -> None:
    """What `upkeep serve --paused` (the session's `served`) does: the automations of every environment, disabled,
    each notifying Slack through its environment's block; a second pass changes nothing."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    from deployments.watchdog import automation_name, block_name, ensure_watchdog

    ensure_watchdog(inventory, enabled=False)
    again = ensure_watchdog(inventory, enabled=False)
    assert again == [f"{automation_name(env, what)}: unchanged (notifies Slack{'' if what == 'crashed-runs' else '; disabled'})"
                     for env in inventory.environments for what in ("health-check", "late-runs", "crashed-runs")]
    with get_client(sync_client=True) as client:
        for env in inventory.environments:
            (automation,) = client.read_automations_by_name(automation_name(env, "health-check"))
            assert not automation.enabled and automation.trigger.within == timedelta(minutes=10)  # type: ignore[union-attr]
            (action,) = automation.actions
            assert isinstance(action, SendNotification)
            block = CustomWebhookNotificationBlock.load(block_name(env))
            assert block.url == f"{stack.slack_url}chat.postMessage"
            assert block._block_document_id == action.block_document_id
