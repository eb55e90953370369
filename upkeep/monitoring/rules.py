"""Alert rules with a duration, Prometheus-style (pure).

A rule's subject (e.g. a host) is *pending* from the first sample that breaks the condition; it
*fires* once the condition held at every evaluation for the rule's duration; one good sample
resets it. A firing alert notifies once, again every `repeat_interval` while it lasts, and once
more when it resolves.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from upkeep.config.models import AlertRule

OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
EventKind = Literal["fire", "repeat", "resolve"]


@dataclass(frozen=True)
class AlertState:
    rule: str
    subject: str
    status: Literal["ok", "pending", "firing"] = "ok"
    since: datetime | None = None  # first breaking sample of the current streak
    last_notified: datetime | None = None
    last_value: float | None = None


@dataclass(frozen=True)
class AlertEvent:
    kind: EventKind
    rule: AlertRule
    subject: str
    value: float
    since: datetime
    at: datetime

    @property
    def text(self) -> str:
        r = self.rule
        if self.kind == "resolve":
            return f"RESOLVED {r.name} on {self.subject}: {r.metric} back to {self.value:g} (since {self.since:%H:%M} UTC)"
        again = " (still)" if self.kind == "repeat" else ""
        return (f"{r.name} on {self.subject}{again}: {r.metric} {self.value:g} {r.op} {r.threshold:g} "
                f"for {self.at - self.since} (since {self.since:%H:%M} UTC); action: {r.action}")


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
        if state.last_notified is None or at - state.last_notified >= rule.repeat_interval:
            event = AlertEvent("repeat", rule, state.subject, value, since, at)
            return replace(state, last_notified=at, last_value=value), [event]
        return replace(state, last_value=value), []
    if at - since >= rule.duration:
        return (AlertState(rule.name, state.subject, "firing", since, at, value),
                [AlertEvent("fire", rule, state.subject, value, since, at)])
    return AlertState(rule.name, state.subject, "pending", since, state.last_notified, value), []
