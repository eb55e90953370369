"""The support queue (pure): tickets from the helpdesk's JSON API, which are open, which are over their SLA.

Accepts the shapes helpdesks answer: a list of tickets, `{"tickets": [...]}` (Zendesk), `{"data": [...]}` (with
JSON:API `attributes` merged) or `{"results": [...]}` (Zendesk search); Zendesk's priority `urgent` is critical here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from upkeep.errors import ReviewInputError
from upkeep.humanize import count, duration
from upkeep.reviews.model import ReviewFinding

Priority = Literal["critical", "high", "normal", "low"]
PRIORITIES: tuple[Priority, ...] = ("critical", "high", "normal", "low")
_PRIORITY: dict[str, Priority] = {"critical": "critical", "urgent": "critical", "high": "high", "normal": "normal",
                                  "medium": "normal", "low": "low"}
OPEN_STATUSES = ("new", "open", "pending", "hold", "on-hold", "on_hold")
CLOSED_STATUSES = ("solved", "closed", "resolved")
DEFAULT_SLA: Mapping[str, timedelta] = MappingProxyType({"critical": timedelta(hours=4), "high": timedelta(hours=24)})
LISTED = 5  # overdue tickets named in the sentence; the table has all
ROWS = 100


@dataclass(frozen=True)
class Ticket:
    id: str
    title: str
    priority: Priority
    open: bool
    status: str  # as the helpdesk spells it
    created_at: datetime  # aware

    def age(self, now: datetime) -> timedelta:
        return now - self.created_at

    def label(self) -> str:
        """"#812 'Cannot publish event'"."""
        title = self.title if len(self.title) <= 60 else self.title[:59] + "…"
        return f"#{self.id} '{title}'"

    def describe(self, now: datetime) -> str:
        """"#812 'Cannot publish event' (critical, open 9 h)"."""
        state = f"open {duration(self.age(now))}" if self.open else self.status
        return f"{self.label()} ({self.priority}, {state})"


def _items(payload: Any) -> list[Any]:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, Mapping):
        for key in ("tickets", "data", "results"):
            if isinstance(payload.get(key), list):
                return list(payload[key])
    kind = f"an object with keys {sorted(payload)[:6]}" if isinstance(payload, Mapping) else type(payload).__name__
    raise ReviewInputError(f"the support queue answered {kind}, not a list of tickets (a list, or an object with "
                     "'tickets', 'data' or 'results'): check the support source's URL")


def _ticket(i: int, raw: Any) -> Ticket:
    where = f"ticket {i + 1} of the support queue"
    if not isinstance(raw, Mapping):
        raise ReviewInputError(f"{where} is {type(raw).__name__}, not an object: check the support source's URL")
    t = {**raw, **raw["attributes"]} if isinstance(raw.get("attributes"), Mapping) else dict(raw)
    if t.get("id") in (None, ""):
        raise ReviewInputError(f"{where} has no 'id': check the support source answers tickets")
    where = f"ticket #{t['id']} of the support queue"
    title = t.get("title") or t.get("subject")
    if not isinstance(title, str) or not title.strip():
        raise ReviewInputError(f"{where} has no 'title' or 'subject': check the support source answers tickets")
    priority = _PRIORITY.get(str(t.get("priority") or "normal").lower())  # Zendesk leaves it null: normal
    if priority is None:
        raise ReviewInputError(f"{where}: priority {t.get('priority')!r} is none of {sorted(_PRIORITY)}: map the helpdesk's "
                         "priorities to these")
    status = str(t.get("status") or "").lower()
    if status not in OPEN_STATUSES + CLOSED_STATUSES:
        raise ReviewInputError(f"{where}: status {t.get('status')!r} is none of {list(OPEN_STATUSES + CLOSED_STATUSES)}: map "
                         "the helpdesk's statuses to these")
    try:
        created = datetime.fromisoformat(str(t.get("created_at")))
    except ValueError as exc:
        raise ReviewInputError(f"{where}: created_at {t.get('created_at')!r} is not an ISO 8601 time such as "
                         "'2026-12-06T06:00:00Z': check the support source's date format") from exc
    created = created if created.tzinfo else created.replace(tzinfo=UTC)  # a time without a zone is taken as UTC
    return Ticket(str(t["id"]), " ".join(title.split()), priority, status in OPEN_STATUSES, status, created)


def parse_tickets(payload: Any) -> list[Ticket]:
    """The tickets of a helpdesk answer; ValueError naming the first bad ticket and field."""
    return [_ticket(i, raw) for i, raw in enumerate(_items(payload))]


def overdue(tickets: Sequence[Ticket], now: datetime, sla: Mapping[str, timedelta] = DEFAULT_SLA) -> list[Ticket]:
    """Open tickets older than their priority's SLA (priorities without one never are), most severe then oldest first."""
    late = [t for t in tickets if t.open and t.priority in sla and t.age(now) > sla[t.priority]]
    return sorted(late, key=lambda t: (PRIORITIES.index(t.priority), t.created_at, t.id))


def summary(tickets: Sequence[Ticket], now: datetime, sla: Mapping[str, timedelta] = DEFAULT_SLA) -> str:
    """"Support queue: 14 open tickets, 2 critical; 1 critical ticket over its 4 h SLA: #812 'Cannot publish event'
    (open 9 h).\""""
    open_ = [t for t in tickets if t.open]
    if not open_:
        return f"Support queue: no open tickets ({count(len(tickets), 'ticket')} read, all solved or closed)."
    critical = sum(t.priority == "critical" for t in open_)
    text = f"Support queue: {count(len(open_), 'open ticket')}, {critical or 'none'} critical; "
    late = overdue(tickets, now, sla)
    if not late:
        return text + "none over its SLA."
    parts = []
    for p in PRIORITIES:
        mine = [t for t in late if t.priority == p]
        if mine:
            its = "its" if len(mine) == 1 else "their"
            names = ", ".join(f"{t.label()} (open {duration(t.age(now))})" for t in mine[:LISTED])
            more = f" and {len(mine) - LISTED} more" if len(mine) > LISTED else ""
            parts.append(f"{count(len(mine), p + ' ticket')} over {its} {duration(sla[p])} SLA: {names}{more}")
    return text + "; ".join(parts) + "."


def findings(tickets: Sequence[Ticket], now: datetime, sla: Mapping[str, timedelta] = DEFAULT_SLA) -> list[ReviewFinding]:
    """Critical per critical ticket over its SLA, a warning per other one over its SLA, an info per open critical one
    still within it."""
    late = overdue(tickets, now, sla)
    out = [ReviewFinding("critical" if t.priority == "critical" else "warning", f"ticket #{t.id}",
                         f"{t.describe(now)} is over its {duration(sla[t.priority])} SLA",
                         f"opened {t.created_at:%Y-%m-%d %H:%M} UTC, status {t.status}") for t in late]
    within = f" is within its {duration(sla['critical'])} SLA" if "critical" in sla else " is open"
    out += [ReviewFinding("info", f"ticket #{t.id}", t.describe(now) + within,
                          f"opened {t.created_at:%Y-%m-%d %H:%M} UTC, status {t.status}")
            for t in tickets if t.open and t.priority == "critical" and t not in late]
    return out


def markdown(tickets: Sequence[Ticket], now: datetime, sla: Mapping[str, timedelta] = DEFAULT_SLA) -> str:
    """The support section: the sentence, open tickets per priority, then every ticket over its SLA."""
    out = ["## Support queue\n", summary(tickets, now, sla), ""]
    open_ = [t for t in tickets if t.open]
    if not open_:
        return "\n".join(out).rstrip() + "\n"
    late = overdue(tickets, now, sla)
    out += ["| priority | open | over SLA | SLA | oldest open for |", "|---|---:|---:|---:|---:|"]
    for p in PRIORITIES:
        mine = [t for t in open_ if t.priority == p]
        if mine:
            oldest = max(t.age(now) for t in mine)
            out.append(f"| {p} | {len(mine):,} | {sum(t.priority == p for t in late):,} | "
                       f"{duration(sla[p]) if p in sla else '—'} | {duration(oldest)} |")
    if late:
        out += ["", "### Over their SLA\n", "| ticket | title | priority | status | open for | SLA |",
                "|---|---|---|---|---:|---:|"]
        out += [f"| #{t.id} | {t.title.replace('|', '/')[:100]} | {t.priority} | {t.status} | {duration(t.age(now))} | "
                f"{duration(sla[t.priority])} |" for t in late[:ROWS]]
        out += [f"\n…and {len(late) - ROWS} more."] if len(late) > ROWS else []
    return "\n".join(out).rstrip() + "\n"
