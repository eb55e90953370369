"""The weekly performance review (the Event Manager guide's Performance Maintenance and weekly
analyze_performance_metrics; the Event Editor's Weekly Performance Review: metrics, resource usage, memory leaks, CPU,
disk). Read-only: what changed week over week, and what a person should look at.

execute: two weeks of the log analysis' daily summaries (routes: requests, failures, p95 / p99) · two weeks of the
stored health samples (hosts' CPU, memory, disk, network; service levels; each service's memory and uptime; the
database cache's counters)
post: routes and hosts week over week · memory-leak suspicion per service (runs between restarts; Theil–Sen and
Mann–Kendall on the memory floor) · the database cache's fill and hit rate (counter deltas, restart-safe) · findings
with their evidence, charts and tables on the run's page
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from prefect import flow

from flows._review import publish
from flows._routine import Routine
from tasks.log_analysis import daily_summaries
from tasks.monitoring import stored_samples
from upkeep.reviews import charts, leaks, performance
from upkeep.reviews.cache import cache_usage
from upkeep.routines import PERFORMANCE_REVIEW

METRICS = [*performance.HOST_METRICS, *performance.SERVICE_METRICS, "memory_rss_bytes", "uptime_s", "wt_cache_bytes",
           "wt_cache_max_bytes", "wt_pages_read", "wt_pages_requested", "wt_dirty_bytes", "wt_evicted_unmodified",
           "wt_evicted_modified"]


@flow(name=PERFORMANCE_REVIEW.flow)
def performance_review(environment: str = "development", config: str | None = None) -> dict[str, Any]:
    with Routine(PERFORMANCE_REVIEW, environment, config) as r:
        cfg = r.env.reviews.performance
        now = datetime.now(UTC)
        week_end = now.date()  # the review covers the 7 days before today, against the 7 before those
        with r.stage("execute"):
            found, _missing, unread = daily_summaries(week_end - timedelta(days=1), 14)
            samples = stored_samples(14, METRICS)
        with r.stage("post"):
            summaries = _by_day(found)
            routes = performance.route_weeks(summaries, week_end)
            hosts = performance.host_weeks(samples, now)
            cache = cache_usage(samples[samples["ts"] >= now - timedelta(days=7)])
            suspects = leaks.leak_suspicions(samples, alpha=cfg.leak_alpha, min_growth_bytes_per_hour=cfg.leak_min_growth)
            missing = performance.missing_days(summaries, week_end)
            if unread:
                r.report.notes.append(f"Routes not reviewed: {unread}.")
            found_items = performance.findings(routes, hosts, cache, regression_factor=cfg.regression_factor,
                                               min_requests=cfg.min_requests, cache_hit_min=cfg.cache_hit_min)
            found_items += leaks.findings(suspects)
            text = (performance.markdown(routes, hosts, cache, missing, totals=performance.week_totals(summaries, week_end),
                                         min_requests=cfg.min_requests) + "\n" + leaks.markdown(suspects))
            publish(r, text, found_items, summary=text.split("\n\n", 2)[1].strip() if "\n\n" in text else "",
                    tables={"routes": _rows(routes), "hosts": _rows(hosts)},
                    charts={"cpu": charts.daily_lines("CPU use per host, daily mean", performance.daily_series(
                                samples, "cpu_percent", now), "CPU (%)"),
                            "memory": charts.daily_lines("Memory use per host, daily mean", performance.daily_series(
                                samples, "memory_percent", now), "memory (%)"),
                            "route-p95": charts.route_p95(summaries),
                            "service-memory": charts.memory(samples)})
        return {"routes": len(routes), "hosts": int(hosts["host"].nunique()) if len(hosts) else 0,
                "leaks": sum(x.verdict == "leak suspected" for x in suspects)}


def _by_day(found: list[dict[str, Any]]) -> dict[date, dict[str, Any]]:
    """The daily summaries by day (one log format per day: the first found, the formats are analysed apart)."""
    out: dict[date, dict[str, Any]] = {}
    for s in found:
        if s.get("day"):
            out.setdefault(date.fromisoformat(str(s["day"])), s)
    return out


def _rows(frame: Any) -> list[dict[str, Any]]:
    """A frame as artifact rows: numbers rounded, missing values empty."""
    return [{str(k): ("" if v != v else round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
            for row in frame.to_dict("records")]
