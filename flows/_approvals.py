"""Asking a person: the run pauses for an answer in the Prefect UI (or a click in Slack, relayed by `upkeep approvals`),
judges it against the environment's approver list (upkeep.approvals), and keeps waiting after a refused attempt
until the request times out. Every answer is a line of the run's report and an event (`upkeep.approval.*`).

    answer = ask(r, "updates", ItemApproval.with_initial_data(...), key="item-approval", what="approve 2 items")
    if answer is None: ...   # timed out: nothing approved
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from pydantic import Field

from tasks.notify import request_approval, update_approval
from upkeep.approvals import Answer, Verdict, judge, verify_answer
from upkeep.config.approvals import ApprovalKind
from upkeep.slack_approvals import ActionValue

if TYPE_CHECKING:
    from flows._routine import Routine

_RELAYED = "set by `upkeep approvals` for a click in Slack: leave empty here"


class Approval(RunInput):
    """What an approver enters in the Prefect UI to let an emergency run go ahead."""

    approve: bool = True
    approver: str
    reason: str
    slack_user: str = Field("", description=_RELAYED)
    signature: str = Field("", description=_RELAYED)


class ItemApproval(RunInput):
    """Approval of listed items (e.g. major and kernel updates): the ids approved, by whom."""

    approver: str
    approved: list[str] = []
    reason: str = ""
    slack_user: str = Field("", description=_RELAYED)
    signature: str = Field("", description=_RELAYED)


A = TypeVar("A", Approval, ItemApproval)


def _run_id() -> str:
    ctx = FlowRunContext.get()
    return str(ctx.flow_run.id) if ctx and ctx.flow_run else "no-run"


def _answer(r: Routine, got: Approval | ItemApproval, pause_key: str) -> Answer:
    approve = got.approve if isinstance(got, Approval) else bool(got.approved)
    now = datetime.now(UTC)
    if not got.slack_user:
        return Answer("Prefect UI", got.approver, approve, now)
    assert r.res is not None
    items = got.approved if isinstance(got, ItemApproval) else []
    ok = verify_answer(r.res.approvals_key(), got.signature, _run_id(), pause_key, got.slack_user, approve, items)
    return Answer("Slack", got.slack_user, approve, now, verified=ok)


def _audit(r: Routine, kind: ApprovalKind, answer: Answer, verdict: Verdict, what: str) -> None:
    """The answer as an event on the run (who, via which channel, when, what, accepted or not)."""
    run_id = _run_id()
    name = ("refused-attempt" if not verdict.accepted else "approved" if answer.approve else "refused")
    emit_event(event=f"upkeep.approval.{name}",
               resource={"prefect.resource.id": f"upkeep.approval.{run_id}", "prefect.resource.name": r.name},
               related=[{"prefect.resource.id": f"prefect.flow-run.{run_id}", "prefect.resource.role": "flow-run"}],
               payload={"environment": r.environment, "routine": r.name, "kind": kind, "channel": answer.channel,
                        "who": answer.who, "approver": verdict.approver, "decision": "approve" if answer.approve
                        else "refuse", "verified": answer.verified, "what": what, "at": answer.at.isoformat()})


def ask(r: Routine, kind: ApprovalKind, wait_for: type[A], *, key: str, what: str, timeout: timedelta,
        summary: str = "", items: Sequence[str] = ()) -> tuple[A, Verdict] | None:
    """Pause until someone on the `kind` approver list answers (approve or refuse), up to `timeout` in all; a refused
    attempt is reported, notified and waited past. With Slack, the request is also a message with Approve / Refuse
    buttons (their Approve approves `items`), updated with each attempt and closed with the answer from either
    channel. None when nobody allowed answered in time."""
    title = f"{r.name} on {r.environment}: approval needed ({kind})"
    value = ActionValue(_run_id(), r.environment, kind, tuple(items)).encode()
    posted = request_approval(title, summary or what, value)
    deadline, attempt = time.monotonic() + timeout.total_seconds(), 0
    while (left := int(deadline - time.monotonic())) >= 1:
        attempt += 1
        pause_key = f"{key}-{attempt}"  # a new pause each time: Prefect skips a pause whose key it has seen
        try:
            got = pause_flow_run(wait_for_input=wait_for, timeout=left, poll_interval=1, key=pause_key)
        except FlowPauseTimeout:
            break
        answer = _answer(r, got, pause_key)
        verdict = judge(r.env.approvals, r.environment, kind, answer, what)
        r.report.notes.append(verdict.line[0].upper() + verdict.line[1:])
        _audit(r, kind, answer, verdict, what)
        r.logger.info("approval: %s", verdict.line)
        if verdict.accepted:
            if posted:
                update_approval(posted, title, verdict.line[0].upper() + verdict.line[1:])
            return got, verdict
        r.notify(verdict.line, "warning")
        if posted:
            update_approval(posted, title, verdict.line[0].upper() + verdict.line[1:], waiting=(summary or what, value))
    if posted:
        update_approval(posted, title, "No answer before the timeout: nothing was approved.")
    return None
