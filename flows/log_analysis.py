"""The day's logs analysed (the guide's Log Analysis): error patterns, performance, security events
and usage, from the archives log rotation stored in S3 — tables, a report and charts in the run's page."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from prefect import flow

from flows._routine import Routine
from tasks.log_analysis import analyse_day, analysis_history, day_archives
from tasks.reports import publish_analysis
from upkeep.routines import LOG_ANALYSIS


@flow(name=LOG_ANALYSIS.flow)
def log_analysis(environment: str = "development", config: str | None = None, day: date | None = None) -> dict[str, str]:
    """pre: the archives holding the day's lines, and the week before's summaries · execute: the
    analysis, streamed · post: report, tables and charts published; alerts on new error patterns,
    doubled latency and bursts. `day`: UTC, default yesterday."""
    day = day or (datetime.now(UTC) - timedelta(days=1)).date()
    with Routine(LOG_ANALYSIS, environment, config) as r:
        with r.stage("pre"):
            keys = day_archives(day)
            history = {fmt: analysis_history(day, fmt) for fmt in keys}
        with r.stage("execute"):
            results = [analyse_day(day, fmt, k, history[fmt]) for fmt, k in keys.items()]
        with r.stage("post"):
            for result in results:
                publish_analysis(r.report, result.format, result.markdown, result.tables, result.charts)
                for severity, text in result.alerts:
                    r.notify(text, "critical" if severity == "critical" else "warning")
        r.report.notes += [f"{res.format} logs of {day}: {res.describe()}" for res in results] or [f"no archived logs for {day}"]
        return {res.format: res.describe() for res in results}
