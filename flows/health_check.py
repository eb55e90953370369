"""Health check, every minute (the guide's Health Checks and Automated Monitoring): probe the
services, the database and every host concurrently within the 5 s timeout, store the samples,
evaluate the alert rules with their durations (outages, service levels, resources), send their
notices (routed by severity, escalated, as Prefect events too), clear a cache when a rule asks it
(with the environment's slot: never during a maintenance), and start emergency recovery for a
service that failed N checks in a row (never on a host a running maintenance holds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow

from flows._routine import Routine
from tasks.hosts import service_command
from tasks.monitoring import event_dicts
from tasks.notify import notify_alerts
from tasks.recovery import trigger_recovery
from upkeep.monitoring.health import evaluate_health, keep_states, probe_all
from upkeep.monitoring.report import clear_cache_targets, report_levels, report_probes
from upkeep.monitoring.samples import breaches, level_breaches
from upkeep.routines import HEALTH_CHECK

SLOT_WAIT = timedelta(seconds=20)  # a minute run waits this long at most for a running maintenance


@flow(name=HEALTH_CHECK.flow)
def health_check(environment: str = "development", config: str | None = None) -> dict[str, Any]:
    with Routine(HEALTH_CHECK, environment, config) as r:
        now = datetime.now(UTC)
        t = r.env.thresholds
        with r.stage("probe"):
            samples = probe_all(r.resources, now)  # in the flow, not a task: upkeep/monitoring/health.py says why
            limit_ms = t.response_time.total_seconds() * 1000
            problems = breaches(samples, limit_ms)
            report_probes(r.report, samples, limit_ms)
        ev = None
        with r.stage("evaluate"):
            if r.env.monitoring is not None:
                ev = evaluate_health(r.resources, samples, now)
                problems += level_breaches(ev.levels, t.availability, t.error_rate)
                report_levels(r.report, ev.levels, ev.derived, r.env.monitoring.period)
                r.report.notes += [f"suppressed: {line}" for line in ev.suppressed]
        with r.stage("act"):
            if ev is not None:
                failed = [ev.events[i] for i in notify_alerts(r.name, ev.events)] if ev.events else []
                keep_states(r.resources, ev, failed)  # a notice that failed is sent again next check
                if failed:
                    r.report.notes.append(f"{len(failed)} alert notice(s) not sent (Slack): they go out with the next check")
                targets = clear_cache_targets(r.env, ev.events)
                if targets:  # disruptive: only with the environment's slot (no maintenance running)
                    with r.disruptive_slot(SLOT_WAIT) as held:
                        for host, service in targets if held else []:
                            service_command(host, service, "clear_cache", purpose="high-memory alert")
                auto = r.env.monitoring.auto_recover if r.env.monitoring else None
                if auto is not None:
                    for (host, service), failures in ev.failures.items():
                        outcome = trigger_recovery(host, service, auto.action, failures, auto.after_failures)
                        if outcome.startswith("not recovered"):
                            r.report.notes.append(f"{host}/{service}: {outcome}")
        r.report.notes += [f"breach: {p}" for p in problems]
        r.report.outcome = "healthy" if not problems else f"{len(problems)} breach(es): " + "; ".join(problems[:5])
        return {"healthy": not problems, "breaches": problems, "alerts": event_dicts(ev.events if ev else []),
                "suppressed": ev.suppressed if ev else [], "samples": len(samples)}
