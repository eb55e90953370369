"""Tasks that touch the monitoring store: samples, alert states, maintenance locks, incidents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.monitoring.rules import AlertEvent
from upkeep.monitoring.store import MonitoringStoreError


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
    return [{"kind": e.kind, "rule": e.rule.name, "subject": e.subject, "severity": e.severity, "value": e.value,
             "since": e.since.isoformat(), "at": e.at.isoformat(), "text": e.text} for e in events]
