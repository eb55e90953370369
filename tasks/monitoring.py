"""Tasks that touch the monitoring store: samples, alert states, maintenance locks, incidents, security findings
and approved baselines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.errors import ConfigError
from upkeep.monitoring.rules import AlertEvent
from upkeep.monitoring.samples import frame
from upkeep.monitoring.store import MonitoringStoreError
from upkeep.security.findings import Finding, Reconciliation, reconcile
from upkeep.security.store import Baseline


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


@step("findings", retries=1, cache=False)
def keep_findings(scope: str, findings: list[Finding], hosts: list[str] | None = None,
                  unreached: list[str] | None = None) -> Reconciliation:
    """This run's findings against the ones the last `scope` run kept (new / persisting / fixed), the inventory's
    waivers applied; kept for the next run. Without a monitoring store every finding is new. `hosts`: the hosts this
    run covers (default: all); `unreached`: hosts it could not read, whose open findings are carried over unchanged
    (not called fixed because nobody could look)."""
    res = resources()
    store = res.security_store()
    previous = store.findings(res.environment, scope) if store is not None else []
    if hosts is not None:
        previous = [r for r in previous if r.finding.host in hosts]
    gone = set(unreached or ())
    findings = findings + [r.finding for r in previous if r.finding.host in gone and r.status != "fixed"]
    rec = reconcile(previous, findings, datetime.now(UTC), res.env.security.waivers_list())
    if store is not None:
        store.save_findings(res.environment, scope, rec.records(), hosts=hosts)
    get_run_logger().info("%s findings: %d new, %d persisting, %d fixed, %d waived%s", scope, len(rec.new),
                          len(rec.persisting), len(rec.fixed), len(rec.waived), "" if store else " (no store: not kept)")
    return rec


@step("baselines", retries=1, cache=False)
def approved_baselines(kind: str, hosts: list[str]) -> dict[str, Baseline | None]:
    """The last approved baseline of `kind` (permissions, firewall, access) per host (None: none approved yet)."""
    res = resources()
    store = res.security_store()
    return {h: store.baseline(res.environment, kind, h) if store is not None else None for h in hosts}


@step("approve-baselines", retries=1, cache=False)
def approve_baselines(kind: str, items: dict[str, list[str]], approver: str, reason: str = "") -> list[str]:
    """Keep each host's current `items` as its approved `kind` baseline, by `approver`, now (the evidence the
    compliance audit cites)."""
    res = resources()
    store = res.security_store()
    if store is None:
        raise ConfigError(f"environments.{res.environment}.monitoring is not configured: approved baselines are kept in "
                          "its store")
    now = datetime.now(UTC)
    for host, host_items in items.items():
        store.approve(res.environment, Baseline(kind, host, tuple(host_items), approver, now, reason))
    get_run_logger().info("%s baseline approved by %s for %s", kind, approver, ", ".join(sorted(items)))
    return sorted(items)


@step("stored-samples", retries=1, cache=False)
def stored_samples(days: float, metrics: list[str]) -> pd.DataFrame:
    """The health samples of `metrics` over the last `days` days as a frame (ts, host, target, metric, value); empty
    without a monitoring store (the review says so)."""
    res = resources()
    if res.env.monitoring is None:
        get_run_logger().warning("no monitoring store is configured (environments.%s.monitoring): no samples to review",
                                 res.environment)
        return frame([])
    docs = res.monitoring_store().history(res.environment, datetime.now(UTC) - timedelta(days=days), metrics)
    get_run_logger().info("read %d stored samples of %d metric(s) over %g days", len(docs), len(metrics), days)
    return frame(docs)


@step("open-findings", retries=1, cache=False)
def open_findings(scopes: list[str]) -> list[dict[str, Any]]:
    """The security findings the given routines keep, open or waived (fixed ones left out), each with its scope."""
    res = resources()
    store = res.security_store()
    out: list[dict[str, Any]] = []
    if store is None:
        return out
    for scope in scopes:
        out += [{**r.document(), "scope": scope} for r in store.findings(res.environment, scope) if r.status != "fixed"]
    return out


@step("baselines-of", retries=1, cache=False)
def baselines_of(kind: str, hosts: list[str]) -> list[dict[str, Any]]:
    """The approved `kind` baselines of these hosts as plain records (kind, host, approved_by, approved_at, items)."""
    res = resources()
    store = res.security_store()
    found = [store.baseline(res.environment, kind, h) for h in hosts] if store is not None else []
    return [{"kind": b.kind, "host": b.host, "approved_by": b.approved_by, "approved_at": b.approved_at,
             "items": list(b.items), "reason": b.reason} for b in found if b is not None]
