"""The demo (`make run`): every deployment it serves can be run from the UI on development and ends
Completed (or Skipped, with the reason); every report it leaves reads as sentences, not Python reprs.

The session's stack is the demo's stack (same `Stack.up()`, same seeding, same `upkeep serve`); the
demo's first runs come first, as `make run` does them, then every other development deployment is
triggered the way the UI's "Quick run" does it (`POST /deployments/{id}/create_flow_run`).
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterStartTime

from deployments.demo import FIRST_RUNS
from deployments.specs import deployment_specs
from sandbox.procs import Proc
from sandbox.stack import Stack
from tests.helpers import latest_flow_run, standin

pytestmark = pytest.mark.stack
REPR = re.compile(r"""=['"]|\(\w+=|<[\w.]+ object at 0x""")  # name='x', FileEntry(key=…, <… object at 0x…>


# The routines whose runs ask a person by design (their approval is the evidence): answered here as a user of the
# demo answers it in the UI's form. Every other pause fails the test: a demo run must not wait for anyone.
ASKS = {"security-review": {"approver": "demo-user", "approved": [], "reason": "answered by the demo test"},
        "config-review": {"approver": "demo-user", "approved": [], "reason": "answered by the demo test"}}


_ANSWERING = threading.Lock()  # the two lanes of runs answer pauses one at a time


def _answer_reviews(since: datetime) -> bool:
    """Answer a paused security or configuration review started after `since` (on its own, or inside a composite)."""
    from prefect.flow_runs import resume_flow_run

    with _ANSWERING:
        for flow_name, answer in ASKS.items():
            paused = latest_flow_run(flow_name, "PAUSED", after=since)
            if paused is not None:
                try:
                    resume_flow_run(paused.id, run_input=answer)
                except Exception as exc:  # noqa: BLE001 - the other lane answered it a moment before
                    if "paused" not in str(exc).lower():
                        raise
                return True
    return False


def _run(client: Any, deployment: str, timeout: float = 300) -> Any:
    """Create a run of `deployment` with its default parameters (the UI's Quick run); its final state."""
    d = client.read_deployment_by_name(deployment)
    since = datetime.now(UTC) - timedelta(seconds=1)
    run = client.create_flow_run_from_deployment(d.id)
    deadline = time.monotonic() + timeout
    unanswered, look = 0, 0.0  # looks in a row that found this run paused with no review to answer; when to look next
    while time.monotonic() < deadline:
        state = client.read_flow_run(run.id).state
        if state is not None and state.is_final():
            return state
        if time.monotonic() >= look:  # paused reviews: looked for every second, the run's state four times as often
            look = time.monotonic() + 1
            if _answer_reviews(since):
                unanswered = 0
                continue
            # A pause the other lane answered between our two reads shows here once; one that lasts is a real wait.
            unanswered = unanswered + 1 if state is not None and state.is_paused() else 0
            if unanswered >= 5:
                pytest.fail(f"{deployment} paused for input ({state.message}): a demo run must not wait for anyone")
        time.sleep(0.25)
    pytest.fail(f"{deployment} did not finish within {timeout:g}s")


# Routines that only read (the store, S3, files over SSH) and touch no service: they run in a second lane beside the
# others (whose updates, restarts and rotations they cannot disturb), to keep the demo test's time in CI's budget.
READ_ONLY = {"performance-review", "capacity-review", "infrastructure-review", "compliance-audit", "config-review",
             "security-check", "security-audit", "security-review", "prune-runs"}


def _deployment_names() -> tuple[list[str], list[str], list[str]]:
    """Every development deployment: the demo's first runs (verification and the DR test need the backup made by one
    of them), then two lanes side by side — every other routine one at a time, and the read-only ones."""
    from prefect.flows import load_flow_from_entrypoint

    first = list(FIRST_RUNS)
    lanes: dict[bool, list[str]] = {True: [], False: []}
    for spec in sorted(deployment_specs(), key=lambda s: s.name):
        if spec.environment == "development":
            flow = load_flow_from_entrypoint(spec.routine.entrypoint, use_placeholder_flow=False)
            if f"{flow.name}/{spec.name}" not in first:
                lanes[spec.routine.id in READ_ONLY].append(f"{flow.name}/{spec.name}")
    return first, lanes[False], lanes[True]


def test_every_demo_deployment_runs_from_the_ui_and_reports_in_sentences(stack: Stack, served: Proc) -> None:
    stack.seed_hosts()  # the demo's package sources, whatever earlier tests applied
    for i in range(stack.settings.app_hosts):
        standin(stack, i, "reset")
    started = datetime.now(UTC) - timedelta(seconds=1)
    outcomes: dict[str, str] = {}
    first, serial, read_only = _deployment_names()
    unexplained: list[str] = []

    def lane(names: list[str]) -> None:
        with get_client(sync_client=True) as client:
            for name in names:
                state = _run(client, name)
                if state.name == "Skipped" and not state.message:
                    unexplained.append(name)
                outcomes[name] = f"{state.name}: {state.message or ''}"[:300]

    lane(first)
    with ThreadPoolExecutor(2, thread_name_prefix="demo-lane") as pool:
        for done in [pool.submit(contextvars.copy_context().run, lane, names) for names in (serial, read_only)]:
            done.result()
    assert not unexplained, f"skipped without saying why: {unexplained}"
    with get_client(sync_client=True) as client:
        bad = {n: o for n, o in outcomes.items() if not (o.startswith("Completed") or o.startswith("Skipped"))}
        assert not bad, "runs that did not complete:\n" + "\n".join(f"{n}: {o}" for n, o in bad.items())

        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=started)))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[r.id for r in runs])))
    reports = [a for a in artifacts if a.type == "markdown" and (a.key or "").endswith("-report")]
    assert len({a.flow_run_id for a in reports}) >= len(outcomes), "a run left no report"
    reprs = []
    for a in artifacts:
        text = a.data if isinstance(a.data, str) else json.dumps(a.data)
        if a.type == "table" and isinstance(a.data, str):
            text = "\n".join(str(v) for row in json.loads(a.data) for v in (row.values() if isinstance(row, dict) else row))
        reprs += [f"{a.key}: …{text[max(0, m.start() - 60):m.end() + 60]}…" for m in REPR.finditer(text)]
    assert not reprs, "report text that reads as a Python repr:\n" + "\n".join(reprs[:20])
