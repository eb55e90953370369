"""Tasks that touch the monitoring store: samples, alert states, maintenance locks, incidents."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.monitoring.rules import AlertEvent, AlertState, evaluate
from upkeep.monitoring.samples import Sample
from upkeep.monitoring.store import MonitoringStoreError


@step("store-samples", retries=1, cache=False)
def store_samples(samples: list[Sample]) -> int:
    store = resources().monitoring_store()
    store.ensure()
    n = store.add(samples)
    get_run_logger().info("stored %d samples", n)
    return n


@step("history", cache=False)
def history(period: timedelta, now: datetime) -> list[dict[str, Any]]:
    """The stored samples of the rolling period (for availability and error rate)."""
    res = resources()
    return res.monitoring_store().since(res.environment, now - period)


@step("alert-rules", retries=1, cache=False)
def evaluate_alerts(samples: list[Sample]) -> dict[str, Any]:
    """Feed this run's samples to every rule; persist the states; return the events to act on
    and those suppressed because their host is under maintenance."""
    res = resources()
    store = res.monitoring_store()
    states = store.states(res.environment)
    locked = store.locked_hosts(res.environment)
    events: list[AlertEvent] = []
    suppressed: list[str] = []
    changed: list[AlertState] = []
    for rule in res.env.alerts:
        for s in (s for s in samples if s.metric == rule.metric):
            key = (rule.name, s.host)
            state, new = evaluate(rule, states.get(key, AlertState(rule.name, s.host)), s.value, s.ts)
            changed.append(state)
            for e in new:
                if s.host in locked:
                    suppressed.append(f"{e.text} — suppressed: {s.host} is under maintenance ({locked[s.host]})")
                else:
                    events.append(e)
    store.save_states(res.environment, changed)
    for line in suppressed:
        get_run_logger().info(line)
    return {"events": events, "suppressed": suppressed}


@step("maintenance-lock", retries=1, cache=False)
def maintenance_lock(hosts: list[str], run: str, routine: str, ttl: timedelta, release: bool = False) -> bool:
    """Mark hosts as under maintenance (health alerts for them are suppressed), or release them."""
    res = resources()
    if res.env.monitoring is None:
        return False
    try:
        store = res.monitoring_store()
        if release:
            store.unlock(run)
        else:
            store.lock(res.environment, hosts, run, routine, ttl)
    except MonitoringStoreError as exc:
        get_run_logger().warning("maintenance lock not %s: %s", "released" if release else "taken", exc)
        return False
    get_run_logger().info("maintenance lock %s for %s", "released" if release else "taken", ", ".join(hosts))
    return True


@step("incident", retries=1, cache=False)
def record_incident(incident_id: str, changes: dict[str, Any], new: bool = False) -> None:
    res = resources()
    store = res.monitoring_store()
    store.ensure()
    if new:
        store.open_incident(res.environment, {"incident_id": incident_id, **changes})
    else:
        store.update_incident(incident_id, changes)


def event_dicts(events: list[AlertEvent]) -> list[dict[str, Any]]:
    return [{**asdict(e), "rule": e.rule.name, "text": e.text} for e in events]
