"""The health check's report rows, in sentences with units (pure: a RoutineReport and plain data)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from upkeep.config.models import EnvironmentConfig
from upkeep.humanize import duration, metric, metric_name
from upkeep.monitoring.rules import AlertEvent
from upkeep.monitoring.samples import Sample
from upkeep.report import RoutineReport

SHOWN = ("up", "response_time_ms", "db_ping_ms", "cpu_percent", "memory_percent", "disk_percent")
IO = ("disk_read_bytes_per_s", "disk_write_bytes_per_s", "net_rx_bytes_per_s", "net_tx_bytes_per_s")


def report_probes(report: RoutineReport, samples: list[Sample], response_time_ms: float) -> None:
    """One row per host (the database is one): what answered and how fast, resource use; a row is
    failed when something on it is down or slower than `response_time_ms`, and names that first."""
    by_host: dict[str, dict[tuple[str, str], float]] = {}
    for s in samples:
        if s.metric in SHOWN:
            by_host.setdefault(s.host, {})[(s.target, s.metric)] = s.value
    for host, values in by_host.items():
        bad: list[str] = []
        good: list[str] = []
        for target in dict.fromkeys(t for t, _ in values):
            up = values.get((target, "up"))
            latency = values.get((target, "response_time_ms"), values.get((target, "db_ping_ms")))
            if up is not None and up < 1:
                bad.append(f"{target} {'unreachable' if target == 'host' else 'down'}")
                continue
            if latency is not None:
                (bad if latency > response_time_ms and target != "database" else good).append(
                    f"{target} up in {metric('response_time_ms', latency)}")
            usage = [f"{metric_name(m)} {metric(m, values[(target, m)])}" for m in SHOWN[3:] if (target, m) in values]
            good += usage
        report.add("probe", "health", "failed" if bad else "done", host=host, detail="; ".join([*bad, *good]))


def report_levels(report: RoutineReport, levels: list[dict[str, Any]], derived: list[Sample], period: timedelta) -> None:
    """Per service: availability, error rate, p95 and p99 over the period; per host: disk and network I/O rates."""
    over = duration(period)
    for row in levels:
        p95 = f"{row['p95_ms']:,.0f} ms" if row.get("p95_ms") == row.get("p95_ms") else "n/a"  # NaN: no response times
        p99 = f"{row['p99_ms']:,.0f} ms" if row.get("p99_ms") == row.get("p99_ms") else "n/a"
        report.add("evaluate", f"{row['target']} service level", "done",
                   detail=f"over {over}: availability {metric('availability', row['availability'])}, error rate "
                          f"{metric('error_rate', row['error_rate'])}, p95 {p95}, p99 {p99} ({int(row['probes']):,} probes)")
    rates: dict[str, dict[str, float]] = {}
    for s in derived:
        if s.metric in IO:
            rates.setdefault(s.host, {})[s.metric] = s.value
    for host, r in sorted(rates.items()):
        parts = [f"{metric_name(m)} {metric(m, r[m])}" for m in IO if m in r]
        report.add("evaluate", "I/O rates", "done", host=host, detail=", ".join(parts) + " since the previous check")


def clear_cache_targets(env: EnvironmentConfig, events: list[AlertEvent]) -> list[tuple[str, str]]:
    """(host, service) whose cache a newly fired `clear_cache` alert asks to clear: each service with a
    clear_cache command that runs on the alert's host."""
    out = []
    for e in events:
        if e.kind != "fire" or e.rule.action != "clear_cache":
            continue
        out += [(e.host, name) for name, svc in env.services.items()
                if svc.clear_cache and e.host in {h.name for h in env.service_hosts(name)}]
    return out
