"""Duration semantics of alert rules, with synthetic samples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from upkeep.config.models import AlertRule
from upkeep.monitoring.rules import AlertState, evaluate

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CPU = AlertRule(name="high_cpu", metric="cpu_percent", threshold=80, duration=timedelta(minutes=5),
                repeat_interval=timedelta(minutes=30))


def feed(values: list[float], rule: AlertRule = CPU, start: AlertState | None = None) -> tuple[AlertState, list[tuple[int, str]]]:
    """One sample a minute; returns the final state and (minute, event kind) pairs."""
    state = start or AlertState(rule.name, "web-1")
    events = []
    for minute, value in enumerate(values):
        state, new = evaluate(rule, state, value, T0 + timedelta(minutes=minute))
        events += [(minute, e.kind) for e in new]
    return state, events


def test_fires_after_exactly_the_duration() -> None:
    state, events = feed([90] * 5)  # minutes 0..4: 4 minutes of breach
    assert events == [] and state.status == "pending"
    state, events = feed([90] * 6)  # minute 5: held for 5 minutes
    assert events == [(5, "fire")] and state.status == "firing"


def test_one_good_sample_resets_the_streak() -> None:
    _, events = feed([90, 90, 90, 90, 50, 90, 90, 90, 90, 90])
    assert events == []  # the streak restarted at minute 5: only 4 minutes by minute 9
    _, events = feed([90, 90, 90, 90, 50, 90, 90, 90, 90, 90, 90])
    assert events == [(10, "fire")]


def test_one_notification_per_incident_then_repeat_interval() -> None:
    _, events = feed([90] * 40)
    assert events == [(5, "fire"), (35, "repeat")]  # not every minute


def test_resolved_notice_once() -> None:
    state, events = feed([90] * 7 + [40, 40, 40])
    assert events == [(5, "fire"), (7, "resolve")]
    assert state.status == "ok"


def test_no_resolve_without_firing_and_operator() -> None:
    _, events = feed([90, 90, 10])
    assert events == []
    low = AlertRule(name="low_disk", metric="disk_percent", op="<", threshold=10, duration=timedelta(0))
    _, events = feed([5, 20], rule=low)
    assert events == [(0, "fire"), (1, "resolve")]


def test_event_text_names_rule_subject_and_action() -> None:
    state, _ = feed([90] * 5)
    _, events = evaluate(CPU, state, 95, T0 + timedelta(minutes=5))
    assert "high_cpu on web-1: cpu_percent 95 > 80 for 0:05:00" in events[0].text and "notify_team" in events[0].text
