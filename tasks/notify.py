"""Tasks that touch Slack (or the log when Slack is not configured)."""

from __future__ import annotations

from functools import partial
from typing import cast

from prefect import get_run_logger

from tasks._base import resources, retry_delay_factor, run_key, step
from upkeep.errors import NotifyError
from upkeep.monitoring.rules import AlertEvent
from upkeep.notify import Message, Severity
from upkeep.packages.rolling import with_retries


def run_url() -> str | None:
    """The Prefect UI link of the current flow run, when a UI URL is known."""
    from prefect.settings import PREFECT_UI_URL

    base = PREFECT_UI_URL.value()
    return f"{base.rstrip('/')}/runs/flow-run/{run_key()}" if base else None


@step("notify", retries=2)
def notify(routine: str, text: str, severity: Severity = "info") -> None:
    """Send one message naming the environment, the routine and the run (sent once per run)."""
    res = resources()
    res.notifier.send(Message(res.environment, routine, text, severity, run_url()))
    get_run_logger().info("notified (%s): %s", severity, text)


@step("alert-notices", retries=0, cache=False)
def notify_alerts(routine: str, events: list[AlertEvent]) -> list[int]:
    """Send each alert notice to its route (by severity; an escalation to the escalation route) and
    emit it as a Prefect event (`upkeep.alert.firing` / `upkeep.alert.resolved`) for automations.
    Each send is retried; the indexes of those that still failed are returned (their alert states are
    not advanced: the next check sends them again). Once Slack is unreachable the rest are not tried."""
    from prefect.events import emit_event

    res = resources()
    logger = get_run_logger()
    url, failed = run_url(), list[int]()
    for i, e in enumerate(events):
        message = Message(res.environment, routine, e.text, cast("Severity", e.severity), url, escalate=e.kind == "escalate")
        if failed and i > failed[-1]:  # Slack refused or is unreachable: do not spend the minute on the rest
            failed.append(i)
            continue
        try:
            with_retries(partial(res.notifier.send, message), attempts=3, base_delay=retry_delay_factor() / 2)
        except NotifyError as exc:
            logger.error("alert notice not sent (%s): %s", exc, e.text)
            failed.append(i)
        emit_event(event=f"upkeep.alert.{'resolved' if e.kind == 'resolve' else 'firing'}", resource=e.labels(res.environment),
                   payload={"kind": e.kind, "text": e.text, "value": e.value, "since": e.since.isoformat(),
                            "metric": e.rule.metric, "threshold": e.rule.threshold})
        logger.log(30 if e.kind != "resolve" else 20, "alert (%s, %s): %s", e.kind, e.severity, e.text)
    return failed


@step("approval-request", retries=0, cache=False)
def request_approval(title: str, summary: str, value: str) -> dict[str, str] | None:
    """Post the approval request with its Approve / Refuse buttons (`value`: upkeep.slack_approvals.ActionValue,
    encoded); where it went, or None when the environment asks in the Prefect UI only or Slack refused (logged)."""
    from upkeep.slack_approvals import ActionValue

    requests = resources().approval_requests()
    if requests is None:
        return None
    try:
        posted = requests.ask(title, summary, ActionValue.decode(value), run_url())
    except NotifyError as exc:
        get_run_logger().warning("approval request not posted to Slack (%s): the Prefect UI is the only channel", exc)
        return None
    return {"channel": posted.channel, "ts": posted.ts}


@step("approval-update", retries=1, cache=False)
def update_approval(posted: dict[str, str], title: str, line: str, *, waiting: tuple[str, str] | None = None) -> None:
    """Mark the Slack request: `waiting` (summary, encoded value) keeps its buttons with `line` under them (a refused
    attempt); without it the buttons give way to `line` (answered here or in the UI, or timed out)."""
    from upkeep.slack_approvals import ActionValue, Posted

    requests = resources().approval_requests()
    if requests is None:
        return
    where = Posted(posted["channel"], posted["ts"])
    try:
        if waiting is not None:
            requests.note(where, title, waiting[0], ActionValue.decode(waiting[1]), run_url(), line)
        else:
            requests.close(where, title, line)
    except NotifyError as exc:
        get_run_logger().warning("approval request in Slack not updated (%s): %s", exc, line)
