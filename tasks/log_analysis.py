"""Tasks on the log archive for the daily analysis: the day's archives read (streamed) from S3,
analysed in bounded batches, the summary and charts kept beside them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.config.render import render
from upkeep.errors import ArchiveError, ConfigError
from upkeep.loganalysis import AnalysisSettings, Compression, analyse, decompressed_chunks
from upkeep.rotation.archive import LogArchive, path_word

HISTORY_DAYS = 7


@dataclass
class DayAnalysis:
    """What the post stage publishes: plain data (the run's persisted result)."""

    day: str
    format: str
    objects: int
    summary: dict[str, Any]
    markdown: str
    tables: dict[str, list[dict[str, Any]]]
    alerts: list[tuple[str, str]]
    charts: dict[str, str] = field(default_factory=dict)  # name → presigned URL

    def describe(self) -> str:
        totals = self.summary.get("totals", {})
        return f"{self.objects} archive(s), {totals.get('lines_in_day', 0):,} lines of {self.day}"


def _archive() -> LogArchive:
    archive = resources().log_archive()
    if archive is None:
        raise ConfigError(f"environments.{resources().environment}.s3.logs is not configured: the log analysis reads "
                          "the archived logs from there")
    return archive


def _words_by_format() -> dict[str, set[str]]:
    """path_word of every configured log file on every host, by the format it is read as."""
    res = resources()
    out: dict[str, set[str]] = {}
    for log in res.env.logs.files() if res.env.logs else []:
        if log.format == "text":
            continue
        for host in res.env.hosts:
            out.setdefault(log.format, set()).add(path_word(render(log.path, host)))
    return out


@step("day-archives", cache=False)
def day_archives(day: date) -> dict[str, list[str]]:
    """Keys of the archives that hold lines of `day`, by log format."""
    archive = _archive()
    keys = {fmt: [o["Key"] for o in archive.day_objects(day, words)] for fmt, words in _words_by_format().items()}
    get_run_logger().info("%s: %s", day, "; ".join(f"{len(v)} {fmt} archive(s)" for fmt, v in keys.items()) or "no logs")
    return keys


@step("analysis-history", cache=False)
def analysis_history(day: date, fmt: str) -> list[dict[str, Any]]:
    """The stored summaries of the `HISTORY_DAYS` days before `day` (oldest first; missing days skipped)."""
    archive = _archive()
    out = []
    for back in range(HISTORY_DAYS, 0, -1):
        data = archive.get_bytes(archive.analysis_key(day - timedelta(days=back), f"summary-{fmt}.json"))
        if data is not None:
            out.append(json.loads(data))
    return out


def _chunks(archive: LogArchive, keys: list[str]) -> Iterator[bytes]:
    for key in keys:
        compression: Compression = "gzip" if key.endswith(".gz") else "zstd" if key.endswith(".zst") else "none"
        with archive.open(key) as body:
            yield from decompressed_chunks(body, compression)


@step("analyse-logs", timeout=3600)
def analyse_day(day: date, fmt: str, keys: list[str], history: list[dict[str, Any]]) -> DayAnalysis:
    """Stream the archives through the analysis; keep its summary (tomorrow's history) and charts in S3."""
    res = resources()
    archive = _archive()
    cfg = res.env.logs.analysis if res.env.logs else None
    settings = AnalysisSettings(slow_ms=res.env.thresholds.response_time.total_seconds() * 1000)
    if cfg is not None:
        settings = replace(settings, admin_prefixes=tuple(cfg.admin_prefixes), burst_threshold=cfg.burst_threshold,
                           new_template_alert_min=cfg.new_template_alert_min, p95_regression_factor=cfg.p95_regression_factor)
    result = analyse(_chunks(archive, keys), day=day, settings=settings, history=history,
                     fmt="nginx" if fmt == "nginx" else "json")
    summary = result.summary()
    archive.put_json(archive.analysis_key(day, f"summary-{fmt}.json"), json.dumps(summary).encode())
    charts = {}
    for name, png in result.charts().items():
        key = archive.analysis_key(day, f"{fmt}-{name.removesuffix('.png')}.png")
        archive.put_json(key, png, content_type="image/png")
        charts[name.removesuffix(".png")] = archive.presigned(key)
    get_run_logger().info("analysed %d archive(s) of %s: %s", len(keys), day, result.markdown().splitlines()[2][:200]
                          if len(result.markdown().splitlines()) > 2 else "")
    return DayAnalysis(day.isoformat(), fmt, len(keys), summary, result.markdown(), result.tables(), result.alerts(), charts)


@step("daily-summaries", cache=False)
def daily_summaries(until: date, days: int) -> tuple[list[dict[str, Any]], list[str], str]:
    """(the daily summaries of the `days` days up to `until`, every format, oldest first; the days without one; why
    none could be read, if so): what the weekly reviews read of the log analysis (security events, routes)."""
    res = resources()
    wanted = [until - timedelta(days=back) for back in range(days - 1, -1, -1)]
    archive = res.log_archive()
    if archive is None or not _words_by_format():
        return [], [d.isoformat() for d in wanted], "no log archive is configured (s3.logs and logs.paths)"
    found, missing = [], []
    try:
        for day in wanted:
            present = [json.loads(b) for fmt in _words_by_format()
                       if (b := archive.get_bytes(archive.analysis_key(day, f"summary-{fmt}.json"))) is not None]
            found += present
            if not present:
                missing.append(day.isoformat())
    except ArchiveError as exc:  # no bucket yet (nothing rotated), no access: the review says so and goes on
        get_run_logger().warning("log analysis summaries not read: %s", exc)
        return [], [d.isoformat() for d in wanted], str(exc)
    get_run_logger().info("log analysis summaries: %d day(s) of %d read; none for %s", days - len(missing), days,
                          ", ".join(missing) or "no day")
    return found, missing, ""
