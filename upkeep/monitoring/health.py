"""The health check's probe and evaluate stages as plain functions over the run's Resources.

They run inside the flow, not as tasks: a health check is not a retryable unit (its retry is the
next minute's run), and each task run costs the Prefect database about 18 KB (three state events
with their resources, three states, the run), a minute, per environment (benchmarks/prefect_db.py).
What acts — notices, a cache clear, a recovery — stays a task, and runs only when there is
something to do. A healthy run thus writes the flow run, its report and its logs.
"""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from upkeep.log import run_logger
from upkeep.monitoring import probes
from upkeep.monitoring.rules import AUTO_RECOVER, AlertEvent, AlertState, evaluate_samples, unsent
from upkeep.monitoring.samples import Sample, consecutive_failures, frame, io_rates, level_samples, service_levels, split_counters
from upkeep.resources import Resources


def probe_all(res: Resources, at: datetime) -> list[Sample]:
    """Every service URL, every host and the database, at once (upkeep.monitoring.probes)."""
    with ThreadPoolExecutor(3, thread_name_prefix="probe-all") as pool:
        futures = [pool.submit(contextvars.copy_context().run, probe, res, at)
                   for probe in (probes.probe_services, probes.probe_hosts, probes.probe_database)]
        return [s for f in futures for s in f.result()]


@dataclass(frozen=True)
class Evaluation:
    """What the evaluate stage learned: the service levels of the period (one dict per service), the
    samples derived from this run's (I/O rates, service levels), the alert notices to send, those
    held back for hosts under maintenance, and the failed checks in a row of each service on a host
    that failed this time or is being recovered (the others need no auto-recovery step)."""

    levels: list[dict[str, Any]]
    derived: list[Sample]
    events: list[AlertEvent]
    suppressed: list[str]
    failures: dict[tuple[str, str], int]
    states: list[AlertState]  # to keep once the notices are sent (`keep_states`)
    before: dict[tuple[str, str], AlertState]  # as they were: kept instead for a notice that could not be sent


def evaluate_health(res: Resources, samples: list[Sample], now: datetime) -> Evaluation:
    """Store this run's samples, turn the hosts' I/O counters into rates, compute the period's service
    levels, and feed everything to the alert rules; their new states are saved by `keep_states` once the
    notices are out."""
    env = res.env
    assert env.monitoring is not None
    store = res.monitoring_store()
    store.ensure()
    probes, counters = split_counters(samples)
    rates = io_rates(store.swap_counters(res.environment, counters), counters, res.environment)
    store.add(probes + rates)
    df = frame(store.since(res.environment, now - env.monitoring.period))
    levels = service_levels(df, env.thresholds.response_time.total_seconds() * 1000)
    derived = rates + level_samples(levels, now, res.environment)
    store.add(derived[len(rates):])  # the levels too: their trend is what a capacity review reads
    states = store.states(res.environment)
    changed, events, suppressed = evaluate_samples(env.alert_rules(), states, probes + derived,
                                                   store.locked_hosts(res.environment))
    recovering = {subject for (rule, subject), state in states.items() if rule == AUTO_RECOVER and state.status != "ok"}
    failures = {(s.host, s.target): n for s in probes if s.metric == "up" and s.target in env.services
                if (n := consecutive_failures(df, s.host, s.target)) or f"{s.host}/{s.target}" in recovering}
    logger = run_logger()
    logger.info("stored %d samples (%d I/O rates); %d alert notice(s), %d held back", len(probes) + len(derived),
                len(rates), len(events), len(suppressed))
    for line in suppressed:
        logger.info(line)
    rows = [{str(k): v for k, v in row.items()} for row in levels.to_dict("records")]
    return Evaluation(rows, derived, events, suppressed, failures, changed, states)


def keep_states(res: Resources, ev: Evaluation, failed: list[AlertEvent]) -> None:
    """Save the alert states after the notices went out: a subject whose notice failed keeps its earlier
    state, so the next check sends it again (a notice is never marked sent when it was not)."""
    res.monitoring_store().save_states(res.environment, unsent(ev.states, ev.before, failed))
