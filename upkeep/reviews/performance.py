"""The weekly performance review's analysis: routes week over week from the daily log summaries, hosts and services
week over week from the health samples, the MongoDB cache; the findings and the report section (pure, pandas)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from upkeep import humanize
from upkeep.errors import ReviewInputError
from upkeep.reviews.cache import CacheUsage, cache_findings, cache_markdown
from upkeep.reviews.model import ReviewFinding, ordered

HOST_METRICS = ("cpu_percent", "memory_percent", "disk_percent", "net_rx_bytes_per_s", "net_tx_bytes_per_s",
                "disk_read_bytes_per_s", "disk_write_bytes_per_s")
SERVICE_METRICS = ("availability", "error_rate", "p95_ms", "p99_ms")
TOP_ROUTES = 15
WEEK = timedelta(days=7)
ROUTE_COLUMNS = ["route", "requests", "requests_before", "per_day", "per_day_before", "throughput_ratio", "failed",
                 "failed_before", "error_rate", "error_rate_before", "error_rate_change", "p95_ms", "p95_ms_before",
                 "p95_ratio", "p99_ms", "p99_ms_before", "p99_ratio"]
HOST_COLUMNS = ["host", "target", "metric", "samples", "mean", "p95", "samples_before", "mean_before", "p95_before",
                "change", "ratio"]
Summaries = Mapping[date, Mapping[str, Any]]


# -- routes, from the daily log summaries ---------------------------------------------------------
def _days(week_end: date) -> tuple[list[date], list[date]]:
    """(this week's days, last week's): the seven days before `week_end` (not itself: as in `host_weeks`, the
    end is excluded, so a review run today passes today), and the seven before those."""
    this = [week_end - timedelta(days=i) for i in range(7, 0, -1)]
    return this, [d - WEEK for d in this]


def _present(summaries: Summaries, days: Sequence[date]) -> list[Mapping[str, Any]]:
    return [s for d in days if isinstance(s := summaries.get(d), Mapping)]


def missing_days(summaries: Summaries, week_end: date) -> list[date]:
    """The days of the two weeks before `week_end` that have no summary, oldest first."""
    this, last = _days(week_end)
    return [d for d in (*last, *this) if not isinstance(summaries.get(d), Mapping)]


@dataclass(frozen=True)
class WeekTotals:
    """All requests of both weeks (the summaries' totals, not only their top routes) and the days summarised."""

    requests: int
    failed: int
    days: int
    requests_before: int
    failed_before: int
    days_before: int

    @property
    def change(self) -> float | None:
        """Requests per day against last week's, as a share (+0.08: 8 % more); None without both weeks."""
        known = self.days and self.days_before and self.requests_before
        return (self.requests / self.days) / (self.requests_before / self.days_before) - 1 if known else None

    def describe(self) -> str:
        change = "" if self.change is None else f" ({self.change * 100:+.0f} % per day week over week)"
        rate = f"{100 * self.failed / self.requests:.2f} % failed" if self.requests else "none failed"
        was = f" (was {100 * self.failed_before / self.requests_before:.2f} %)" if self.requests_before else ""
        return f"{humanize.count(self.requests, 'request')} over {humanize.count(self.days, 'day')}{change}; {rate}{was}"


def week_totals(summaries: Summaries, week_end: date) -> WeekTotals:
    """Both weeks' requests and failures from the summaries' `totals`."""
    def total(days: Sequence[date], key: str) -> int:
        return sum(int((s.get("totals") or {}).get(key) or 0) for s in _present(summaries, days))

    this, last = _days(week_end)
    return WeekTotals(total(this, "requests"), total(this, "failed"), len(_present(summaries, this)),
                      total(last, "requests"), total(last, "failed"), len(_present(summaries, last)))


def _week(rows: pd.DataFrame) -> pd.DataFrame:
    route = rows["route"]
    out = pd.DataFrame({"requests": rows["requests"].groupby(route).sum()})
    out["failed"] = rows["failed"].groupby(route).sum(min_count=1)
    known = rows["requests"].where(rows["failed"].notna()).groupby(route).sum()  # days that report failures
    out["error_rate"] = out["failed"] / known.where(known > 0)
    for p in ("p95_ms", "p99_ms"):
        weight = rows["requests"].where(rows[p].notna() & (rows["requests"] > 0))
        out[p] = (rows[p] * weight).groupby(route).sum(min_count=1) / weight.groupby(route).sum().where(lambda w: w > 0)
    return out


def route_weeks(summaries: Summaries, week_end: date) -> pd.DataFrame:
    """Per route, this week (the seven days before `week_end`) against last week: requests, requests per day
    (per day with a summary), failed and error rate (over the days that report `failed`), p95 and p99, ratios.

    The weekly p95 / p99 is the request-weighted mean of the daily p95 / p99: an approximation of the weekly
    percentile, since only daily percentiles are stored. Busiest routes first."""
    this, last = _days(week_end)
    rows, counts = [], []
    for week, days in ((0, this), (1, last)):
        present = _present(summaries, days)
        counts.append(len(present))
        for s in present:
            for route, r in (s.get("routes") or {}).items():
                if isinstance(r, Mapping):
                    rows.append((week, str(route), *(r.get(k) for k in ("requests", "failed", "p95_ms", "p99_ms"))))
    long = pd.DataFrame(rows, columns=["week", "route", "requests", "failed", "p95_ms", "p99_ms"])
    figures = ["requests", "failed", "p95_ms", "p99_ms"]  # None or not a number: not reported
    long[figures] = long[figures].apply(pd.to_numeric, errors="coerce").astype(float)
    long["requests"] = long["requests"].fillna(0)
    out = _week(long[long["week"] == 0]).join(_week(long[long["week"] == 1]).add_suffix("_before"), how="outer")
    for col, n in (("requests", counts[0]), ("requests_before", counts[1])):
        out[col] = out[col].fillna(0).astype(int)  # a route not seen in a week had no requests in it
        out[col.replace("requests", "per_day")] = out[col] / n if n else float("nan")
    out["throughput_ratio"] = out["per_day"] / out["per_day_before"].where(out["per_day_before"] > 0)
    out["error_rate_change"] = out["error_rate"] - out["error_rate_before"]
    for p in ("p95", "p99"):
        out[f"{p}_ratio"] = out[f"{p}_ms"] / out[f"{p}_ms_before"].where(out[f"{p}_ms_before"] > 0)
    out = out.rename_axis("route").reset_index().astype({"route": str})
    return out.sort_values(["requests", "route"], ascending=[False, True], ignore_index=True)[ROUTE_COLUMNS]


# -- hosts and services, from the health samples --------------------------------------------------
def _window(week_end: datetime) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(start of last week, start of this week, end): weeks are [start, end), in UTC."""
    if week_end.tzinfo is None:
        raise ReviewInputError(f"week_end {week_end.isoformat()} has no time zone while the samples' ts are UTC: pass an "
                         "aware datetime, e.g. datetime(2026, 12, 7, tzinfo=UTC)")
    end = pd.Timestamp(week_end).tz_convert("UTC")
    return end - 2 * WEEK, end - WEEK, end


def _reviewed(df: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DataFrame, pd.Series]:
    """Host metrics (target `host`) and service levels (host "") between start and end, and their UTC times."""
    hosts = (df["target"] == "host") & (df["host"] != "") & df["metric"].isin(HOST_METRICS)
    services = (df["host"] == "") & df["metric"].isin(SERVICE_METRICS)
    rows = df[hosts | services].astype({"value": float})
    ts = pd.to_datetime(rows["ts"], utc=True)
    keep = (ts >= start) & (ts < end)
    return rows[keep], ts[keep]


def _stats(rows: pd.DataFrame) -> pd.DataFrame:
    g = rows.groupby(["host", "target", "metric"])["value"]
    return pd.DataFrame({"samples": g.count(), "mean": g.mean(), "p95": g.quantile(0.95)})


def host_weeks(df: pd.DataFrame, week_end: datetime) -> pd.DataFrame:
    """Per host and metric (and per service level, host ""): samples, mean and p95 this week (the seven days
    before `week_end`) and last week; change = p95 − last week's (points for percent metrics), ratio = p95 / it."""
    start, mid, end = _window(week_end)
    rows, ts = _reviewed(df, start, end)
    out = _stats(rows[ts >= mid]).join(_stats(rows[ts < mid]).add_suffix("_before"), how="outer").reset_index()
    out[["samples", "samples_before"]] = out[["samples", "samples_before"]].fillna(0).astype(int)
    out["change"] = out["p95"] - out["p95_before"]
    out["ratio"] = out["p95"] / out["p95_before"].where(out["p95_before"] > 0)
    order = {m: i for i, m in enumerate((*HOST_METRICS, *SERVICE_METRICS))}
    out["_order"] = [(h == "", h, t, order[m]) for h, t, m in zip(out["host"], out["target"], out["metric"], strict=True)]
    return out.sort_values("_order", ignore_index=True).reindex(columns=HOST_COLUMNS)


def daily_series(df: pd.DataFrame, metric: str, week_end: datetime) -> pd.DataFrame:
    """One metric's daily mean over the two weeks before `week_end`, for a chart: index `day` (UTC midnights, every
    day, NaN where there was no sample), one column per host (per service for service levels)."""
    if metric not in (*HOST_METRICS, *SERVICE_METRICS):
        raise ReviewInputError(f"metric {metric!r} is not reviewed week over week: use one of "
                         f"{', '.join((*HOST_METRICS, *SERVICE_METRICS))}")
    start, _, end = _window(week_end)
    rows, ts = _reviewed(df, start, end)
    rows, ts = rows[rows["metric"] == metric], ts[rows["metric"] == metric]
    key = rows["host"].where(rows["host"] != "", rows["target"]).rename("host")
    table = rows["value"].groupby([ts.dt.floor("D").rename("day"), key]).mean().unstack("host")
    days = pd.date_range(start.floor("D"), (end - pd.Timedelta(1)).floor("D"), freq="D", name="day")
    return table.reindex(days)


# -- findings --------------------------------------------------------------------------------------
def _fmt(metric: str, v: Any) -> str:
    """A figure with its unit ('412 ms', '0.25 %', '72.5 %', '2.5 MB/s', count: '1,234'); '–' when not measured."""
    if v is None or pd.isna(v):
        return "–"
    return f"{float(v):,.0f}" if metric == "count" else humanize.metric(metric, float(v))


def _route_findings(routes: pd.DataFrame, factor: float, min_requests: int, rise: float) -> list[ReviewFinding]:
    out = []
    for r in routes.to_dict("records"):
        route, both = str(r["route"]), r["requests"] >= min_requests and r["requests_before"] >= min_requests
        volume = f"{r['requests']:,.0f} requests this week, {r['requests_before']:,.0f} last week"
        for p in ("p95", "p99"):
            now, before = _fmt("x_ms", r[f"{p}_ms"]), _fmt("x_ms", r[f"{p}_ms_before"])
            if both and r[f"{p}_ratio"] >= factor:
                out.append(ReviewFinding("warning", route, f"{p} latency {now}, {r[f'{p}_ratio']:.2f}× last week's {before}",
                                         f"{volume}; request-weighted mean of the daily {p} (an approximation of the "
                                         "weekly percentile)"))
        if both and r["error_rate_change"] > rise:
            now, before = _fmt("error_rate", r["error_rate"]), _fmt("error_rate", r["error_rate_before"])
            out.append(ReviewFinding("warning", route, f"Error rate {now}, up {r['error_rate_change'] * 100:.2f} points "
                                     f"from {before}",
                                     f"{r['failed']:,.0f} of {r['requests']:,.0f} requests failed this week, "
                                     f"{r['failed_before']:,.0f} of {r['requests_before']:,.0f} last week"))
        if r["requests_before"] >= min_requests and r["per_day"] <= r["per_day_before"] / 2:
            out.append(ReviewFinding("warning", route, f"Throughput {r['per_day']:,.0f} requests/day, down from "
                                     f"{r['per_day_before']:,.0f} requests/day last week", volume))
    return out


def _host_findings(hosts: pd.DataFrame, factor: float, rise: float, points: float, rate_factor: float) -> list[ReviewFinding]:
    out = []
    for r in hosts.to_dict("records"):
        m, name = str(r["metric"]), humanize.metric_name(str(r["metric"]))
        if r["host"]:  # a host metric: its weekly p95
            subject = f"{r['host']} {name}"
            title = f"{name} p95 {_fmt(m, r['p95'])} this week, was {_fmt(m, r['p95_before'])}"
            evidence = (f"weekly p95 over {r['samples']:,} samples (mean {_fmt(m, r['mean'])}) this week, "
                        f"{r['samples_before']:,} samples (mean {_fmt(m, r['mean_before'])}) last week")
            if m.endswith("_percent") and r["change"] >= points:
                out.append(ReviewFinding("warning", subject, f"{title} (+{r['change']:.0f} points)", evidence))
            elif m.endswith("_bytes_per_s") and r["ratio"] >= rate_factor:
                out.append(ReviewFinding("info", subject, f"{title} ({r['ratio']:.1f}×)", evidence))
            continue
        now, before = r["mean"], r["mean_before"]  # a service level: the mean of the rolling-period values
        if pd.isna(now) or pd.isna(before):
            continue
        worse = (now >= factor * before > 0 if m.endswith("_ms") else now - before > rise if m == "error_rate"
                 else before - now > rise)
        if worse:
            out.append(ReviewFinding("warning", f"{r['target']} {name}", f"{name} {humanize.metric(m, now)} this week, "
                                     f"was {humanize.metric(m, before)}", f"weekly mean of {r['samples']:,} service-level "
                                     f"samples this week, {r['samples_before']:,} last week"))
    return out


def findings(routes: pd.DataFrame, hosts: pd.DataFrame, cache: CacheUsage | None, *, regression_factor: float = 1.25,
             min_requests: int = 100, error_rate_rise: float = 0.005, cache_hit_min: float = 0.95,
             percent_rise: float = 20.0, rate_factor: float = 2.0, cache_fill_max: float = 0.95) -> list[ReviewFinding]:
    """What the week asks a person to look at, most severe first: routes whose p95 or p99 regressed by the factor,
    whose error rate rose by more than `error_rate_rise` (a share: 0.005 = 0.5 points) or whose throughput halved
    (with `min_requests` both weeks); hosts whose weekly p95 of a percent metric rose `percent_rise` points or of
    a rate grew `rate_factor` times; service levels that regressed; a cache missing reads or under eviction pressure."""
    out = [*_route_findings(routes, regression_factor, min_requests, error_rate_rise),
           *_host_findings(hosts, regression_factor, error_rate_rise, percent_rise, rate_factor)]
    if cache is not None:
        out += cache_findings(cache, hit_min=cache_hit_min, fill_max=cache_fill_max)
    return ordered(out)


# -- the report section ----------------------------------------------------------------------------
def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|",
            *("| " + " | ".join(r) + " |" for r in rows)]


def _both(metric: str, now: Any, before: Any) -> str:
    return "–" if pd.isna(now) and pd.isna(before) else f"{_fmt(metric, now)} ({_fmt(metric, before)})"


def _route_row(r: Mapping[Any, Any]) -> list[str]:
    ratio = "–" if pd.isna(r["p95_ratio"]) else f"{r['p95_ratio']:.2f}×"
    route = str(r["route"]).replace("|", "\\|")  # a pipe would end the cell
    pairs = [_both("count", r["requests"], r["requests_before"]), _both("count", r["per_day"], r["per_day_before"]),
             *(_both(c, r[c], r[f"{c}_before"]) for c in ("error_rate", "p95_ms", "p99_ms"))]
    return [f"`{route}`", *pairs, ratio]


def _headline(routes: pd.DataFrame, hosts: pd.DataFrame, totals: WeekTotals | None, min_requests: int) -> str:
    parts = [f"Traffic {totals.describe()}" if totals is not None  # else the top routes': a lower bound
             else f"Traffic {humanize.count(int(routes['requests'].sum()), 'request')} on the routes summarised"]
    busy = routes[routes["requests"] >= min_requests].dropna(subset=["p95_ms"])
    if len(busy):
        slow = busy.sort_values("p95_ms").iloc[-1]
        parts.append(f"p95 of the slowest route {_fmt('x_ms', slow['p95_ms'])} on {slow['route']} "
                     f"(was {_fmt('x_ms', slow['p95_ms_before'])})")
    cpu = hosts[(hosts["metric"] == "cpu_percent")].dropna(subset=["p95"])
    if len(cpu):
        top = cpu.sort_values("p95").iloc[-1]
        parts.append(f"busiest CPU {top['host']} at {_fmt('cpu_percent', top['p95'])} p95 "
                     f"(was {_fmt('cpu_percent', top['p95_before'])})")
    return "; ".join(parts) + "."


def markdown(routes: pd.DataFrame, hosts: pd.DataFrame, cache: CacheUsage | None, missing: Sequence[date], *,
             totals: WeekTotals | None = None, min_requests: int = 100) -> str:
    """The report's performance section: a headline sentence, missing days, the busiest routes with both weeks,
    one row per host and per service (last week in brackets), the MongoDB cache."""
    out = ["## Performance, week over week", "", _headline(routes, hosts, totals, min_requests), ""]
    if missing:
        out += [f"No log summary for {humanize.count(len(missing), 'day')}: {', '.join(d.isoformat() for d in missing)} "
                "(their requests are not counted; requests per day are over the days with a summary).", ""]
    out += [f"### Routes (top {TOP_ROUTES} by requests; last week in brackets)", ""]
    if routes.empty:
        out += ["No route requests in the summaries of either week."]
    else:
        out += _table(["route", "requests", "per day", "error rate", "p95", "p99", "p95 change"],
                      [_route_row(r) for r in routes.head(TOP_ROUTES).to_dict("records")])
    for title, subset, key, metrics in (("Hosts (weekly p95", hosts[hosts["host"] != ""], "host", HOST_METRICS),
                                        ("Services (weekly mean", hosts[hosts["host"] == ""], "target", SERVICE_METRICS)):
        stat = "p95" if key == "host" else "mean"
        shown = [m for m in metrics if m in set(subset["metric"])]
        out += ["", f"### {title}; last week in brackets)", ""]
        if subset.empty:
            out += [f"No {'host' if key == 'host' else 'service-level'} samples in either week."]
            continue
        cells = {(r[key], r["metric"]): _both(r["metric"], r[stat], r[f"{stat}_before"]) for r in subset.to_dict("records")}
        out += _table([key if key == "host" else "service", *(humanize.metric_name(m) for m in shown)],
                      [[str(k), *(cells.get((k, m), "–") for m in shown)] for k in dict.fromkeys(subset[key])])
    out += ["", cache_markdown(cache).rstrip() if cache is not None else "### MongoDB cache\n\nNot measured this week."]
    return "\n".join(out) + "\n"
