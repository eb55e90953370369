"""The daily log analysis: one pass over a day's log lines, compared with the summaries of the days before.

`analyse` streams the decompressed chunks through bounded batches (`reader`), reduces each batch on a worker
thread (`batch.summarise`; pyarrow and numpy release the GIL, so parsing runs on every core while the caller's
thread decompresses) and merges the partial results (`accumulate`). The `Analysis` it returns holds the day's
DataFrames and what the flow stores and shows: `summary()`, `alerts()`, `markdown()`, `tables()`, `charts()`.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from upkeep.errors import ConfigError
from upkeep.loganalysis import accumulate, report
from upkeep.loganalysis.accumulate import Accumulator, Totals, records
from upkeep.loganalysis.batch import Partial, Rules, regex_problem, summarise
from upkeep.loganalysis.reader import LogFormat, line_batches, read_table

SUMMARY_VERSION = 1
HISTORY_DAYS = 7
SUMMARY_TEMPLATES = 1000  # most frequent templates kept in a day's summary (what "new" is judged against)
SUMMARY_ROUTES = 500
SUMMARY_ADMIN_IPS = 1000
SUMMARY_SECURITY_ROWS = 50  # top sources of failed logins, bursts, probes kept for the weekly security review


@dataclass(frozen=True)
class AnalysisSettings:
    """What counts as slow, suspicious, a burst or a regression; the defaults suit the Event Manager's API."""

    slow_ms: float = 200.0  # a route whose p95 is above this is slow
    admin_prefixes: tuple[str, ...] = ("/admin",)
    suspicious_patterns: tuple[str, ...] = (r"/\.env", r"/wp-admin", r"\.php$", r"\.\./", r"/etc/passwd", r"/\.git")
    burst_threshold: int = 20  # 401/403/429 responses to one source within burst_window_s: a burst
    burst_window_s: float = 60.0
    new_template_alert_min: int = 10  # a new error pattern seen more often than this raises an alert
    p95_regression_factor: float = 2.0  # p95 at least this many times last week's raises an alert …
    regression_min_requests: int = 50  # … on a route with at least this many requests today
    top_n: int = 10  # rows in each "top" table
    login_pattern: str = r"/(?:login|signin|sign-in|auth)\b"  # a 401 on such a path is a failed login
    auth_message: str = r"authentication failed|invalid credentials|invalid password"

    def rules(self, window: tuple[int, int] | None) -> Rules:
        """The settings a batch needs; every pattern checked first (RE2 syntax: no look-around)."""
        for pattern in (*self.suspicious_patterns, self.login_pattern, self.auth_message):
            if problem := regex_problem(pattern):
                raise ConfigError(f"log analysis pattern {pattern!r} is not a valid RE2 regular expression "
                                  f"({problem}); write it without look-around or back-references")
        return Rules(window=window, admin_prefixes=self.admin_prefixes,
                     suspicious="|".join(f"(?:{p})" for p in self.suspicious_patterns) or r"$^",
                     login=self.login_pattern, auth_message=self.auth_message)


@dataclass
class Analysis:
    """One day's findings. Every frame is sorted (most important first) and made of plain columns."""

    day: date | None
    settings: AnalysisSettings
    totals: Totals
    errors: pd.DataFrame  # template, count, first_seen, last_seen, example, new
    routes: pd.DataFrame  # route, requests, failed, p50_ms, p95_ms, p99_ms, slow, p95_week_ago_ms, p95_ratio
    route_hours: pd.DataFrame  # route, hour, requests, p50_ms, p95_ms, p99_ms
    hourly: pd.DataFrame  # hour, lines, requests, failed, error_lines, error_rate
    auth_failures: pd.DataFrame  # ip, failures
    bursts: pd.DataFrame  # ip, start, end, responses, peak, statuses
    suspicious: pd.DataFrame  # path, ip, requests
    admin_ips: pd.DataFrame  # ip, requests, new
    clients: pd.DataFrame  # client, kind (user / ip), requests
    history_days: int = 0  # summaries compared with
    baseline_day: str | None = None  # the summary the p95 ratios are against
    notes: list[str] = field(default_factory=list)

    @property
    def new_errors(self) -> pd.DataFrame:
        return self.errors[self.errors["new"]] if self.history_days else self.errors.iloc[0:0]

    @property
    def earlier(self) -> str:
        """'the previous day' / 'the previous 7 days': what the history covers, in words."""
        return "the previous day" if self.history_days == 1 else f"the previous {self.history_days} days"

    @property
    def slow_routes(self) -> pd.DataFrame:
        return self.routes[self.routes["slow"]]

    def summary(self) -> dict[str, Any]:
        """What is stored for the day and passed back as `history` on the following days (JSON, small)."""
        t = self.totals
        top = self.errors.head(SUMMARY_TEMPLATES)
        routes = self.routes.sort_values("requests", ascending=False).head(SUMMARY_ROUTES)
        return {
            "version": SUMMARY_VERSION,
            "day": self.day.isoformat() if self.day else None,
            "totals": {"lines_read": t.lines, "malformed": t.malformed, "lines_in_day": t.in_day, "requests": t.requests,
                       "failed": t.failed, "error_lines": t.error_lines,
                       "first": _iso(t.first), "last": _iso(t.last)},
            "templates": {str(r["template"]): {"count": int(r["count"]), "first_seen": _iso(r["first_seen"])}
                          for r in records(top)},
            "routes": {str(r["route"]): {"requests": int(r["requests"]), "failed": int(r["failed"]), "p95_ms": _num(r["p95_ms"]),
                                         "p99_ms": _num(r["p99_ms"])}
                       for r in records(routes)},
            "admin_ips": sorted(self.admin_ips["ip"].astype(str))[:SUMMARY_ADMIN_IPS],
            "security": self.security_summary(),
        }

    def security_summary(self) -> dict[str, Any]:
        """The day's security events, small (read by the weekly security review): failed logins per source, bursts
        of denied responses, probes of suspicious paths, requests per source on admin paths (new ones flagged)."""
        n = SUMMARY_SECURITY_ROWS
        return {
            "auth_failures": {str(r["ip"]): int(r["failures"]) for r in records(self.auth_failures.head(n))},
            "bursts": [{"ip": str(r["ip"]), "responses": int(r["responses"]), "start": _iso(r["start"]),
                        "end": _iso(r["end"]), "statuses": str(r["statuses"])} for r in records(self.bursts.head(n))],
            "suspicious": [{"path": str(r["path"]), "ip": str(r["ip"]), "requests": int(r["requests"])}
                           for r in records(self.suspicious.head(n))],
            "admin_new": {str(r["ip"]): int(r["requests"]) for r in records(self.admin_ips[self.admin_ips["new"]].head(n))}
            if self.history_days else {},
        }

    def alerts(self) -> list[tuple[str, str]]:
        """(severity, sentence): new error patterns seen often, routes whose p95 regressed, bursts of denied
        responses, new sources on admin paths. New patterns and sources need history: none on a first day."""
        s = self.settings
        out: list[tuple[str, str]] = []
        for r in records(self.new_errors):
            if r["count"] > s.new_template_alert_min:
                severity = "critical" if r["count"] > 10 * s.new_template_alert_min else "warning"
                out.append((severity, f"New error pattern, {r['count']:,} times today (first at {_hm(r['first_seen'])}): "
                                      f"“{_short(r['template'])}”; not seen in {self.earlier}."))
        for r in records(self.routes):
            if (not pd.isna(r["p95_ratio"]) and r["p95_ratio"] >= s.p95_regression_factor
                    and r["requests"] >= s.regression_min_requests):
                out.append(("warning", f"{r['route']}: p95 latency {_ms(r['p95_ms'])}, {r['p95_ratio']:.1f}× the "
                                       f"{_ms(r['p95_week_ago_ms'])} of {self.baseline_day} ({r['requests']:,} requests today)."))
        for r in records(self.bursts):
            out.append(("critical", f"{r['ip']} got {r['responses']:,} denied responses ({r['statuses']}) between "
                                    f"{_hm(r['start'], True)} and {_hm(r['end'], True)} (up to {r['peak']:,} in "
                                    f"{s.burst_window_s:g} s): brute force or a misbehaving client."))
        if self.history_days:
            for r in records(self.admin_ips[self.admin_ips["new"]]):
                out.append(("warning", f"New source {r['ip']} on admin paths: {r['requests']:,} requests, not seen "
                                       f"in {self.earlier}."))
        return out

    def markdown(self) -> str:
        """The report for the run's page: sentences with units first, then the top rows of each section."""
        return report.markdown(self)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Rows for table artifacts (plain JSON types)."""
        return report.tables(self)

    def charts(self) -> dict[str, bytes]:
        """PNG charts by file name (matplotlib is imported here, not by the analysis)."""
        return report.charts(self)


def _iso(ts: Any) -> str | None:
    return None if ts is None or pd.isna(ts) else pd.Timestamp(ts).isoformat().replace("+00:00", "Z")


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else round(float(v), 2)


def _hm(ts: Any, seconds: bool = False) -> str:
    return "?" if ts is None or pd.isna(ts) else pd.Timestamp(ts).strftime("%H:%M:%S UTC" if seconds else "%H:%M UTC")


def _ms(v: Any) -> str:
    return "?" if v is None or pd.isna(v) else (f"{v:,.0f} ms" if v >= 10 else f"{v:.1f} ms")


def _short(text: str, n: int = 120) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# -- the pass over the lines ----------------------------------------------------------------------
def analyse(chunks: Iterable[bytes], *, day: date | None, settings: AnalysisSettings = AnalysisSettings(),
            history: Sequence[Mapping[str, Any]] = (), fmt: LogFormat = "json", workers: int | None = None,
            max_batch_bytes: int = 16 << 20) -> Analysis:
    """Analyse the lines of decompressed `chunks` (split anywhere). `day`: only lines dated on that UTC day
    count (None: every line). `history`: earlier days' `Analysis.summary()`, newest last (the last 7 count).
    `workers`: threads that parse and reduce batches (default: the CPUs, at most 4)."""
    if fmt not in ("json", "nginx"):
        raise ConfigError(f"log format {fmt!r} is not supported: use 'json' (JSON lines) or 'nginx' (combined)")
    start = None if day is None else int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000
    rules = settings.rules(None if start is None else (start, start + 86_400_000_000))
    acc = Accumulator()
    for part in _partials(line_batches(chunks, max_bytes=max_batch_bytes), fmt, rules,
                          workers or min(4, os.cpu_count() or 1)):
        acc.add(part)
    return _finish(acc, day, start, settings, history)


def _partials(batches: Iterator[bytes], fmt: LogFormat, rules: Rules, workers: int) -> Iterator[Partial]:
    """Each batch parsed and reduced on a worker; results in submission order, at most workers + 1 batches in
    flight (memory stays bounded however fast the input comes)."""
    def work(batch: bytes) -> Partial:
        table, bad = read_table(batch, fmt)
        return summarise(table, bad, rules)

    if workers <= 1:
        for batch in batches:
            yield work(batch)
        return
    pending: deque[Future[Partial]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="loganalysis") as pool:
        try:
            for batch in batches:
                pending.append(pool.submit(work, batch))
                if len(pending) > workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def _finish(acc: Accumulator, day: date | None, start: int | None, settings: AnalysisSettings,
            history: Sequence[Mapping[str, Any]]) -> Analysis:
    previous = [h for h in history if isinstance(h, Mapping)][-HISTORY_DAYS:]
    baseline = _baseline(previous, day)
    hours = acc.hour_range(start)
    routes, route_hours = acc.latencies(hours)
    routes["slow"] = routes["p95_ms"] > settings.slow_ms
    before = {str(k): v.get("p95_ms") for k, v in (baseline or {}).get("routes", {}).items() if isinstance(v, Mapping)}
    routes["p95_week_ago_ms"] = [_float(before.get(r)) for r in routes["route"]]
    ratio = routes["p95_ms"] / routes["p95_week_ago_ms"].where(routes["p95_week_ago_ms"] > 0)
    routes["p95_ratio"] = ratio.round(2)
    routes = routes.sort_values(["p95_ms", "route"], ascending=[False, True], na_position="last", ignore_index=True)

    known = set().union(*(set(h.get("templates") or {}) for h in previous)) if previous else set()
    errors = acc.template_frame()
    errors["new"] = ~errors["template"].isin(known)
    admin_known = set().union(*(set(h.get("admin_ips") or []) for h in previous)) if previous else set()
    admin = pd.DataFrame(_by_count(acc.admin), columns=["ip", "requests"])
    admin["new"] = ~admin["ip"].isin(admin_known)
    clients = acc.top_clients(settings.top_n)
    auth = pd.DataFrame(_by_count(acc.auth), columns=["ip", "failures"])
    suspicious = pd.DataFrame([(p, ip, n) for (p, ip), n in _by_count(acc.suspicious)], columns=["path", "ip", "requests"])
    notes = []
    if not previous:
        notes.append("No summaries of earlier days yet: new patterns, new admin sources and latency changes "
                     "are judged from the next day on.")
    return Analysis(
        day=day, settings=settings, totals=acc.totals(), errors=errors, routes=routes, route_hours=route_hours,
        hourly=acc.hourly(hours), auth_failures=auth,
        bursts=accumulate.bursts(acc.denied_frame(), settings.burst_threshold, settings.burst_window_s),
        suspicious=suspicious, admin_ips=admin, clients=clients, history_days=len(previous),
        baseline_day=(baseline or {}).get("day") or ("the oldest summary" if baseline else None), notes=notes)


def _by_count(counts: Mapping[Any, int]) -> list[tuple[Any, int]]:
    """Items by count, highest first, then by key (a stable order for equal counts)."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _float(v: Any) -> float:
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _baseline(previous: Sequence[Mapping[str, Any]], day: date | None) -> Mapping[str, Any] | None:
    """The summary of the same weekday a week before `day`, or else the oldest one given."""
    if not previous:
        return None
    if day is not None:
        week_ago = (day - timedelta(days=7)).isoformat()
        for h in previous:
            if h.get("day") == week_ago:
                return h
    return previous[0]
