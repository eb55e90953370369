"""Alert rules with a duration, Prometheus / Alertmanager-style (pure).

A rule's subject (a host, a host's service, the database, a service over the period) is *pending*
from the first sample that breaks the condition; it *fires* once the condition held at every
evaluation for the rule's duration; one good sample resets it. A firing alert notifies once, again
every `repeat_interval` while it lasts, is escalated once when it is still firing after the rule's
`escalate_after`, and notifies once more when it resolves: one incident, one thread of notices.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from upkeep.config.models import AlertRule
from upkeep.monitoring.samples import LEVELS, Sample

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
AUTO_RECOVER = "auto-recover"  # the pseudo-rule whose state remembers an automatic recovery under way, per host/service
EventKind = Literal["fire", "repeat", "escalate", "resolve"]


@dataclass(frozen=True)
class AlertState:
    rule: str
    subject: str
    status: Literal["ok", "pending", "firing"] = "ok"
    since: datetime | None = None  # first breaking sample of the current streak
    last_notified: datetime | None = None
    last_value: float | None = None
    fired_at: datetime | None = None
    escalated: bool = False


@dataclass(frozen=True)
class AlertEvent:
    kind: EventKind
    rule: AlertRule
    subject: str
    value: float
    since: datetime
    at: datetime

    @property
    def severity(self) -> str:
        """What the notice is: `resolved`, or the rule's severity (an escalation is critical)."""
        return "resolved" if self.kind == "resolve" else "critical" if self.kind == "escalate" else self.rule.severity

    @property
    def text(self) -> str:
        r = self.rule
        lasted = _lasted(self.at - self.since)
        if r.metric == "up":
            what = "unreachable" if r.target in ("host", "database") else "down"
            if self.kind == "resolve":
                return f"RESOLVED {r.name}: {self.subject} is back (was {what} since {self.since:%H:%M} UTC, {lasted})"
            prefix = {"fire": "", "repeat": "still ", "escalate": "ESCALATED, still "}[self.kind]
            return f"{r.name}: {self.subject} {prefix}{what} since {self.since:%H:%M} UTC ({lasted})"
        if self.kind == "resolve":
            return (f"RESOLVED {r.name} on {self.subject}: {r.metric} back to {self.value:g} "
                    f"(was breaching since {self.since:%H:%M} UTC, {lasted})")
        again = {"fire": "", "repeat": " (still)", "escalate": " (ESCALATED, still)"}[self.kind]
        return (f"{r.name} on {self.subject}{again}: {r.metric} {self.value:g} {r.op} {r.threshold:g} "
                f"for {timedelta(seconds=round((self.at - self.since).total_seconds()))} (since {self.since:%H:%M} UTC); "
                f"action: {r.action}")


    @property
    def host(self) -> str:
        """The host the alert is about ('' for a service over the period, 'database' for the database)."""
        if "/" in self.subject:
            return self.subject.split("/", 1)[0]
        return "" if self.rule.metric in LEVELS else self.subject

    def labels(self, environment: str) -> dict[str, str]:
        """The Prefect event resource of this alert: its id and labels (environment, host, rule, severity)."""
        return {"prefect.resource.id": f"upkeep.alert.{environment}.{self.rule.name}.{self.subject}",
                "prefect.resource.name": f"{self.rule.name} on {self.subject}",
                "upkeep.environment": environment, "upkeep.host": self.host, "upkeep.subject": self.subject,
                "upkeep.rule": self.rule.name, "upkeep.severity": self.rule.severity}


def _lasted(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    return "just now" if minutes < 1 else f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def subject_of(host: str, target: str) -> str:
    """What an alert is about: the host for host metrics, `host/service` for a service on a host, the
    database, or the service itself for a figure over the period (no host)."""
    if not host:
        return target
    return host if target == "host" or host == target else f"{host}/{target}"


def breaks(rule: AlertRule, value: float) -> bool:
    return bool(OPS[rule.op](value, rule.threshold))


def evaluate(rule: AlertRule, state: AlertState, value: float, at: datetime) -> tuple[AlertState, list[AlertEvent]]:
    """Feed one sample; return the new state and the notifications it causes."""
    if not breaks(rule, value):
        if state.status == "firing" and state.since is not None:
            resolved = AlertEvent("resolve", rule, state.subject, value, state.since, at)
            return AlertState(rule.name, state.subject, last_value=value), [resolved]
        return AlertState(rule.name, state.subject, last_value=value), []
    since = state.since if state.status in ("pending", "firing") and state.since else at
    if state.status == "firing":
        fired = state.fired_at or since
        if rule.escalate_after is not None and not state.escalated and at - fired >= rule.escalate_after:
            event = AlertEvent("escalate", rule, state.subject, value, since, at)
            return replace(state, last_notified=at, last_value=value, escalated=True), [event]
        if state.last_notified is None or at - state.last_notified >= rule.repeat_interval:
            event = AlertEvent("repeat", rule, state.subject, value, since, at)
            return replace(state, last_notified=at, last_value=value), [event]
        return replace(state, last_value=value), []
    if at - since >= rule.duration:
        return (AlertState(rule.name, state.subject, "firing", since, at, value, fired_at=at),
                [AlertEvent("fire", rule, state.subject, value, since, at)])
    return AlertState(rule.name, state.subject, "pending", since, state.last_notified, value), []


def evaluate_samples(rules: list[AlertRule], states: dict[tuple[str, str], AlertState], samples: list[Sample],
                     locked: dict[str, str]) -> tuple[list[AlertState], list[AlertEvent], list[str]]:
    """Feed every sample to every rule that watches it: (states to keep, events to notify, one line per
    event held back because its host is under maintenance by `locked[host]`)."""
    changed: list[AlertState] = []
    events: list[AlertEvent] = []
    suppressed: list[str] = []
    for rule in rules:
        for s in samples:
            if not rule.matches(s.metric, s.target):
                continue
            subject = subject_of(s.host, s.target)
            before = states.get((rule.name, subject), AlertState(rule.name, subject))
            state, new = evaluate(rule, before, s.value, s.ts)
            held = [e for e in new if e.host in locked and e.kind != "resolve"]  # a recovery is always told
            if held:  # not notified: the state stays where it was, so the notice goes out once the lock is gone
                state = before if before.status != "ok" or held[0].kind != "fire" else AlertState(
                    rule.name, subject, "pending", held[0].since, None, s.value)
                suppressed += [f"{e.text} — suppressed: {e.host} is under maintenance ({locked[e.host]})" for e in held]
            changed.append(state)
            events += [e for e in new if e not in held]
    return changed, events, suppressed


def unsent(changed: list[AlertState], before: dict[tuple[str, str], AlertState], failed: list[AlertEvent]) -> list[AlertState]:
    """The states to keep when the notices `failed` could not be sent: those subjects stay as they were
    before this check (a fire is sent again next check, a resolve or an escalation too)."""
    lost = {(e.rule.name, e.subject) for e in failed}
    return [before.get((s.rule, s.subject), AlertState(s.rule, s.subject)) if (s.rule, s.subject) in lost else s
            for s in changed]
