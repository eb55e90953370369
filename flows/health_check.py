"""Health check, every minute (the guide's Health Checks and Automated Monitoring): probe the
services, the database and every host concurrently within the 5 s timeout, store the samples,
evaluate the alert rules with their durations, act on alerts, and start emergency recovery for
a service that failed N checks in a row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.utilities.annotations import opaque

from flows._routine import Routine
from tasks.hosts import probe_hosts, service_command
from tasks.mongo import probe_database
from tasks.monitoring import evaluate_alerts, event_dicts, history, store_samples
from tasks.recovery import trigger_recovery
from tasks.services import probe_services
from upkeep.humanize import metric, metric_name
from upkeep.monitoring.samples import breaches, consecutive_failures, frame, level_breaches, service_levels
from upkeep.notify import Severity
from upkeep.routines import HEALTH_CHECK


@flow(name=HEALTH_CHECK.flow)
def health_check(environment: str = "development", config: str | None = None) -> dict[str, Any]:
    with Routine(HEALTH_CHECK, environment, config) as r:
        now = datetime.now(UTC)
        t = r.env.thresholds
        with r.stage("probe"):
            futures = [probe_services.submit(now), probe_hosts.submit(now), probe_database.submit(now)]
            samples = [s for f in futures for s in f.result()]
            problems = breaches(samples, t.response_time.total_seconds() * 1000)
            for s in samples:
                if s.metric in ("up", "response_time_ms", "db_ping_ms", "cpu_percent", "memory_percent", "disk_percent"):
                    r.report.add("probe", f"{s.target} {metric_name(s.metric)}",
                                 "failed" if s.metric == "up" and s.value < 1 else "done",
                                 host=s.host, detail=metric(s.metric, s.value))
        alerts: dict[str, Any] = {"events": [], "suppressed": []}
        with r.stage("evaluate"):
            if r.env.monitoring is not None:
                # opaque: plain data, Prefect need not walk 400+ samples; the task gets the list inside
                store_samples(opaque(samples))  # type: ignore[call-overload]  # Prefect unwraps opaque() for the task
                df = frame(history(r.env.monitoring.period, now))
                levels = service_levels(df, t.response_time.total_seconds() * 1000)
                problems += level_breaches(levels, t.availability, t.error_rate)
                alerts = evaluate_alerts(opaque(samples))  # type: ignore[call-overload]  # Prefect unwraps opaque() for the task
                r.report.notes += [f"suppressed: {line}" for line in alerts["suppressed"]]
        with r.stage("act"):
            for event in alerts["events"]:
                severity: Severity = "resolved" if event.kind == "resolve" else "warning"
                if event.kind == "fire" and event.rule.action == "clear_cache":
                    for name, svc in r.env.services.items():
                        if svc.clear_cache and event.subject in [h.name for h in r.env.service_hosts(name)]:
                            service_command(event.subject, name, "clear_cache")
                r.notify(event.text, severity)
            auto = r.env.monitoring.auto_recover if r.env.monitoring else None
            if auto is not None:
                for s in samples:
                    if s.metric == "up" and s.target in r.env.services:
                        failures = consecutive_failures(df, s.host, s.target)
                        trigger_recovery(s.host, s.target, auto.action, failures, auto.after_failures)
        r.report.notes += [f"breach: {p}" for p in problems]
        r.report.outcome = "healthy" if not problems else f"{len(problems)} breach(es): " + "; ".join(problems[:5])
        return {"healthy": not problems, "breaches": problems, "alerts": event_dicts(alerts["events"]),
                "suppressed": alerts["suppressed"], "samples": len(samples)}
