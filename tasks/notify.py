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
