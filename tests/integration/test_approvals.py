"""Approvals from Slack, end to end on the stack: the run's request is a Slack message with Approve / Refuse buttons;
the Slack recorder plays Slack's side of Socket Mode (`apps.connections.open`, the websocket, the click's
`block_actions` envelope); `upkeep approvals`, started by the session's `upkeep serve`, relays the click to the
waiting run; the run checks the clicker's Slack user id against production's approver list.

The runs are emergency cache clears in production outside its window (emergency: approval), as in test_guard."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any
from urllib.request import Request, urlopen

import pytest
from prefect.flow_runs import resume_flow_run

from flows.clear_cache import clear_cache
from sandbox.procs import Proc
from sandbox.stack import Stack
from tests.helpers import flow_run_state, inventory_variant, latest_flow_run, report_of, slack_calls, wait_for
from tests.integration.test_guard import app_state, approval_events, closed_window

pytestmark = pytest.mark.stack


def click(stack: Stack, ts: str, action: str, user: str, username: str) -> dict[str, Any]:
    """A person clicks a button of the message `ts` in Slack (the recorder sends the envelope to the connected app)."""
    body = json.dumps({"ts": ts, "action_id": action, "user": user, "username": username}).encode()
    request = Request(stack.slack_url.replace("/api/", "/_click"), data=body, method="POST",
                      headers={"Content-Type": "application/json"})
    with urlopen(request, timeout=15) as resp:  # noqa: S310 - the stack's loopback recorder
        return dict(json.load(resp))


def request_of(stack: Stack, run_id: Any) -> dict[str, Any]:
    """The approval request the run posted: the chat.postMessage whose buttons name it."""
    posts = [c for c in slack_calls(stack) if c["method"] == "chat.postMessage" and str(run_id) in json.dumps(
        c["args"].get("blocks", ""))]
    assert len(posts) == 1, posts
    return posts[0]


def updates_of(stack: Stack, ts: str) -> list[dict[str, Any]]:
    return [c["args"] for c in slack_calls(stack) if c["method"] == "chat.update" and c["args"].get("ts") == ts]


@pytest.fixture
def emergency(stack: Stack, served: Proc, tmp_path: Path) -> Any:
    """An emergency cache clear in production, waiting for its approval (its thread, its box, its paused run), once
    `upkeep approvals` (started by `served`) holds its Socket Mode connection."""
    wait_for(lambda: any(c["method"] == "apps.connections.open" and c["response"].get("ok") for c in slack_calls(stack)),
             timeout=60, what="upkeep approvals to open its Socket Mode connection")
    config = inventory_variant(stack, tmp_path / "inv.yaml", "production", window=closed_window())
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(state=clear_cache(environment="production", config=config,
                                                                          emergency=True, return_state=True)),
                              daemon=True)
    before = app_state(stack)
    thread.start()
    paused = wait_for(lambda: latest_flow_run("clear-cache", "PAUSED"), timeout=60, what="a paused clear-cache run")
    yield thread, box, paused, before
    thread.join(5)


def test_a_slack_click_by_an_approver_resumes_the_run_with_their_verified_identity(stack: Stack, emergency: Any) -> None:
    thread, box, paused, before = emergency
    asked = request_of(stack, paused.id)
    blocks = asked["args"]["blocks"]
    assert "Approve" in json.dumps(blocks) and "Refuse" in json.dumps(blocks) and "outside" in json.dumps(blocks)
    sent = click(stack, asked["response"]["ts"], "upkeep-approve", "U0ALICE01", "alice")
    assert sent["ok"] and sent["acked"], sent  # the relay acknowledged the envelope
    thread.join(90)
    state = box["state"]
    assert state.is_completed() and state.name == "Completed", state.message
    assert [s["cache_clears"] for s in app_state(stack)] == [s["cache_clears"] + 1 for s in before]
    report = report_of(paused.id).data
    assert "Approved by **alice** via Slack (Slack user U0ALICE01, verified by Slack) at " in report, report
    closed = wait_for(lambda: updates_of(stack, asked["response"]["ts"]), timeout=30, what="the request marked answered")
    assert "Approved by **alice** via Slack" in closed[-1]["text"] and "upkeep-approve" not in json.dumps(closed[-1])
    events = wait_for(lambda: approval_events(paused.id), timeout=30, what="the approval event")
    assert [(e["payload"]["channel"], e["payload"]["who"], e["payload"]["verified"]) for e in events] == [
        ("Slack", "U0ALICE01", True)]


def test_a_click_by_someone_else_is_refused_and_recorded_and_the_ui_answer_wins(stack: Stack, emergency: Any) -> None:
    thread, box, paused, before = emergency
    ts = request_of(stack, paused.id)["response"]["ts"]
    assert click(stack, ts, "upkeep-approve", "U0EVE0001", "eve")["acked"]  # not on production's list
    wait_for(lambda: (s := flow_run_state(paused.id)).is_paused() and s.state_details.pause_key == "emergency-approval-2",
             timeout=60, what="the run to wait again after the refused click")
    noted = wait_for(lambda: updates_of(stack, ts), timeout=30, what="the refused click noted under the request")
    assert "Refused attempt: Slack user U0EVE0001 approved at " in noted[-1]["text"]
    assert "upkeep-approve" in json.dumps(noted[-1]["blocks"])  # the buttons stay: still waiting
    # an answer through the UI pretending to be a Slack click (no valid relay signature) is refused too
    resume_flow_run(paused.id, run_input={"approver": "alice", "reason": "forged", "slack_user": "U0ALICE01",
                                          "signature": "0" * 64})
    wait_for(lambda: flow_run_state(paused.id).state_details.pause_key == "emergency-approval-3", timeout=60,
             what="the run to wait again after the forged answer")
    assert [s["cache_clears"] for s in app_state(stack)] == [s["cache_clears"] for s in before]  # nothing touched
    resume_flow_run(paused.id, run_input={"approver": "alice", "reason": "incident 77"})  # the UI, first valid answer
    thread.join(90)
    assert box["state"].is_completed() and box["state"].name == "Completed"
    report = report_of(paused.id).data
    assert "Refused attempt: Slack user U0EVE0001 approved at " in report and "carried no valid signature" in report
    assert "Approved by **alice** via Prefect UI (name typed in the Prefect UI)" in report
    closed = wait_for(lambda: [u for u in updates_of(stack, ts) if "Prefect UI" in u["text"]], timeout=30,
                      what="the Slack request shown as answered in the UI")
    assert "Approved by **alice** via Prefect UI" in closed[-1]["text"] and "upkeep-approve" not in json.dumps(closed[-1])
    # a late click on the answered request: the clicker is told, the run is not touched again
    assert click(stack, ts, "upkeep-refuse", "U0ALICE01", "alice")["acked"]
    told = wait_for(lambda: [c["args"] for c in slack_calls(stack) if c["method"] == "chat.postEphemeral"
                             and c["args"].get("user") == "U0ALICE01"], timeout=30, what="the late clicker told")
    assert "already answered or timed out" in told[-1]["text"]
    events = approval_events(paused.id)
    assert [(e["event"].rsplit(".", 1)[-1], e["payload"]["channel"], e["payload"]["who"]) for e in events] == [
        ("refused-attempt", "Slack", "U0EVE0001"), ("refused-attempt", "Slack", "U0ALICE01"),
        ("approved", "Prefect UI", "alice")]
