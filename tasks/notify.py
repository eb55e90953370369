"""Tasks that touch Slack (or the log when Slack is not configured)."""

from __future__ import annotations

from prefect import get_run_logger

from tasks._base import resources, run_key, step
from upkeep.notify import Message, Severity


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
