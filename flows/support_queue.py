"""The support queue (the Event Editor guide's User Support: "monitor support tickets, address critical issues"),
daily in daily-maintenance: the helpdesk's open tickets, and the critical ones waiting longer than their SLA.

execute: the tickets read from `reviews.support.url` (HTTP JSON; a bearer token from a secret)
post: the counts in the daily report (the run's message: daily-maintenance's report shows it) · open tickets over their
priority's SLA are findings, and notify
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import State, flow
from prefect.states import Completed

from flows._review import publish
from flows._routine import Routine
from tasks.services import support_tickets
from upkeep.errors import ConfigError, ReviewInputError
from upkeep.reviews import support
from upkeep.routines import SUPPORT_QUEUE


@flow(name=SUPPORT_QUEUE.flow)
def support_queue(environment: str = "development", config: str | None = None) -> State[dict[str, Any]]:
    with Routine(SUPPORT_QUEUE, environment, config) as r:
        cfg = r.env.reviews.support
        if cfg is None:
            r.report.notes.append("No support queue is configured: set reviews.support.url (and its token) to have "
                                  "open critical tickets over their SLA reported here every day.")
            return Completed(message="No support queue is configured (reviews.support.url).", data={"tickets": 0})
        with r.stage("execute"):
            payload = support_tickets(cfg.url, cfg.token, cfg.timeout.total_seconds())
        with r.stage("post"):
            now, sla = datetime.now(UTC), {str(k): v for k, v in cfg.sla.items()}
            try:
                tickets = support.parse_tickets(payload)
            except ReviewInputError as exc:
                raise ConfigError(f"reviews.support.url {cfg.url} answered tickets Upkeep cannot read: {exc}") from exc
            late, said = support.overdue(tickets, now, sla), support.summary(tickets, now, sla)
            publish(r, support.markdown(tickets, now, sla), support.findings(tickets, now, sla), summary=said,
                    tables={"overdue": [{"ticket": t.id, "title": t.title, "priority": t.priority, "status": t.status,
                                         "opened": t.created_at.isoformat(timespec="minutes")} for t in late]})
        return Completed(message=said, data={"tickets": sum(t.open for t in tickets), "overdue": len(late)})
