"""The weekly performance review: routes week over week, host and service trends, the MongoDB cache (pure)."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from upkeep.monitoring.samples import Sample, frame
from upkeep.reviews.cache import NOT_AVAILABLE, cache_counters, cache_findings, cache_markdown, cache_usage
from upkeep.reviews.performance import daily_series, findings, host_weeks, markdown, missing_days, route_weeks, week_totals

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mongodb"
WEEK_END = date(2026, 12, 7)  # a Monday, excluded: this week is 11-30 … 12-06, last week 11-23 … 11-29
WEEK_END_TS = datetime(2026, 12, 7, tzinfo=UTC)


def _summaries(*, slow_route_factor: float = 2.0, skip: tuple[date, ...] = ()) -> dict[date, dict[str, Any]]:
    """Two weeks of daily summaries: three steady routes, and GET /api/search whose p95 grows by the factor."""
    out: dict[date, dict[str, Any]] = {}
    for i in range(14):
        day = WEEK_END - timedelta(days=14 - i)
        if day in skip:
            continue
        this_week = i >= 7
        routes = {
            "GET /api/events": {"requests": 5000 + 10 * i, "p95_ms": 120.0 + (i % 3), "p99_ms": 300.0, "failed": 10},
            "POST /api/events": {"requests": 800, "p95_ms": 90.0, "p99_ms": 180.0, "failed": 2},
            "GET /health": {"requests": 1440, "p95_ms": 2.0},  # an older summary's shape: no p99, no failed
            "GET /api/search": {"requests": 400, "p95_ms": 200.0 * (slow_route_factor if this_week else 1.0),
                                "p99_ms": 450.0, "failed": 1},
        }
        total = sum(int(r["requests"]) for r in routes.values())
        out[day] = {"version": 1, "day": day.isoformat(), "totals": {"requests": total, "failed": 13}, "routes": routes}
    return out


def test_a_seeded_p95_regression_is_found_and_steady_routes_are_not() -> None:
    routes = route_weeks(_summaries(), WEEK_END)
    assert list(routes["route"]) == ["GET /api/events", "GET /health", "POST /api/events", "GET /api/search"]
    search = routes.set_index("route").loc["GET /api/search"]
    assert search["p95_ms"] == pytest.approx(400.0) and search["p95_ms_before"] == pytest.approx(200.0)
    assert search["p95_ratio"] == pytest.approx(2.0) and search["per_day"] == pytest.approx(400.0)
    found = findings(routes, host_weeks(frame([]), WEEK_END_TS), None)
    assert [(f.level, f.subject) for f in found] == [("warning", "GET /api/search")]
    assert "p95 latency 400 ms, 2.00× last week's 200 ms" in found[0].title
    assert "2,800 requests this week, 2,800 last week" in found[0].evidence
    assert findings(route_weeks(_summaries(slow_route_factor=1.1), WEEK_END), host_weeks(frame([]), WEEK_END_TS), None) == []


def test_weekly_percentiles_are_request_weighted_and_older_summaries_lack_p99_and_failed() -> None:
    days = {WEEK_END - timedelta(days=1): {"routes": {"GET /a": {"requests": 100, "p95_ms": 100.0, "failed": 5}}},
            WEEK_END - timedelta(days=2): {"routes": {"GET /a": {"requests": 300, "p95_ms": 200.0}}},
            WEEK_END: {"routes": {"GET /a": {"requests": 9999, "p95_ms": 9999.0}}}}  # the end day is not in the week
    a = route_weeks(days, WEEK_END).iloc[0]
    assert a["p95_ms"] == pytest.approx(175.0)  # (100×100 + 300×200) / 400
    assert a["error_rate"] == pytest.approx(0.05)  # over the day that reports failures only
    assert math.isnan(a["p99_ms"]) and math.isnan(a["p95_ms_before"]) and a["requests_before"] == 0
    health = route_weeks(_summaries(), WEEK_END).set_index("route").loc["GET /health"]
    assert math.isnan(health["error_rate"]) and math.isnan(health["p99_ms"])


def test_error_rate_rise_and_halved_throughput_are_found() -> None:
    days = _summaries(slow_route_factor=1.0)
    for day, s in days.items():
        if day >= WEEK_END - timedelta(days=7):
            s["routes"]["POST /api/events"]["failed"] = 40  # 5 % of 800, was 0.25 %
            s["routes"]["GET /api/events"]["requests"] = 2000  # from ~5,050 a day
    found = findings(route_weeks(days, WEEK_END), host_weeks(frame([]), WEEK_END_TS), None)
    assert {(f.subject, f.title.split()[0]) for f in found} == {("POST /api/events", "Error"), ("GET /api/events", "Throughput")}
    assert found[1].title == "Error rate 5 %, up 4.75 points from 0.25 %"


def test_a_missing_day_is_named_and_throughput_is_per_day_with_a_summary() -> None:
    gap = date(2026, 12, 2)
    days = _summaries(skip=(gap,))
    assert missing_days(days, WEEK_END) == [gap]
    routes = route_weeks(days, WEEK_END)
    post = routes.set_index("route").loc["POST /api/events"]
    assert post["requests"] == 6 * 800 and post["per_day"] == pytest.approx(800.0) and post["throughput_ratio"] == 1.0
    totals = week_totals(days, WEEK_END)
    assert (totals.days, totals.days_before) == (6, 7)
    text = markdown(routes, host_weeks(frame([]), WEEK_END_TS), None, missing_days(days, WEEK_END), totals=totals)
    assert "No log summary for 1 day: 2026-12-02" in text


def _host_samples() -> pd.DataFrame:
    """Two weeks every 6 hours: web-1's CPU climbs from ~40 % to ~75 %, web-2 steady; web-1's network out
    doubles; the api's p95 service level doubles."""
    rng = np.random.default_rng(7)
    out = []
    for k in range(14 * 4):
        ts = WEEK_END_TS - timedelta(days=14) + timedelta(hours=6 * k)
        this = k >= 28
        out += [Sample(ts, "prod", "web-1", "host", "cpu_percent", (75.0 if this else 40.0) + rng.normal(0, 2)),
                Sample(ts, "prod", "web-2", "host", "cpu_percent", 35.0 + rng.normal(0, 2)),
                Sample(ts, "prod", "web-1", "host", "memory_percent", 60.0 + rng.normal(0, 1)),
                Sample(ts, "prod", "web-1", "host", "net_tx_bytes_per_s", (2.4e6 if this else 1.0e6) * (1 + rng.normal(0, 0.02))),
                Sample(ts, "prod", "", "api", "p95_ms", 240.0 if this else 120.0),
                Sample(ts, "prod", "", "api", "availability", 1.0),
                Sample(ts, "prod", "web-1", "api", "up", 1.0)]  # a probe, not a weekly figure
    out.append(Sample(WEEK_END_TS - timedelta(days=20), "prod", "web-2", "host", "cpu_percent", 99.0))  # before both weeks
    return frame(out)


def test_host_trends_find_the_rising_cpu_only() -> None:
    hosts = host_weeks(_host_samples(), WEEK_END_TS)
    assert set(hosts["metric"]) == {"cpu_percent", "memory_percent", "net_tx_bytes_per_s", "p95_ms", "availability"}
    cpu = hosts[hosts["metric"] == "cpu_percent"].set_index("host")
    assert cpu.loc["web-1", "change"] > 30 and abs(cpu.loc["web-2", "change"]) < 5
    assert cpu.loc["web-2", "samples_before"] == 28  # the sample 20 days back is outside both weeks
    found = findings(route_weeks({}, WEEK_END), hosts, None)
    assert [(f.level, f.subject) for f in found] == [("warning", "api p95 response time"), ("warning", "web-1 CPU used"),
                                                      ("info", "web-1 network out")]
    assert "this week, was" in found[1].title and "samples" in found[1].evidence


def test_daily_series_has_every_day_and_one_column_per_host() -> None:
    series = daily_series(_host_samples(), "cpu_percent", WEEK_END_TS)
    assert list(series.columns) == ["web-1", "web-2"] and len(series) == 14
    assert series.index[0] == pd.Timestamp("2026-11-23", tz="UTC") and series.index.name == "day"
    assert series["web-1"].iloc[-1] == pytest.approx(75.0, abs=3)
    with pytest.raises(ValueError, match="is not reviewed week over week"):
        daily_series(_host_samples(), "up", WEEK_END_TS)
    with pytest.raises(ValueError, match="has no time zone"):
        host_weeks(_host_samples(), datetime(2026, 12, 7))


def _fixture_samples(host: str = "eventmanager") -> pd.DataFrame:
    rows = []
    for path in sorted(FIXTURES.glob("serverstatus-*.json")):
        status = json.loads(path.read_text())
        at = datetime.fromisoformat(status["localTime"]["$date"])
        counters = cache_counters(status)
        assert counters is not None
        rows += [Sample(at, "prod", host, "database", name, value) for name, value in counters.items()]
    return frame(rows)


def test_hit_rate_from_the_fixtures_counts_from_zero_across_the_restart() -> None:
    usage = cache_usage(_fixture_samples())
    assert usage.available and usage.samples == 4 and usage.restarts == 1
    assert usage.hit_rate == pytest.approx(0.9750, abs=1e-4)
    assert (usage.pages_requested, usage.pages_read) == (900_000, 22_500)
    assert usage.evictions_per_hour == pytest.approx(14_400 * 3600 / 8400, abs=0.1)  # across the restart: its uptime only
    assert usage.fill_max == pytest.approx(7_012_874_240 / 8_053_063_680) and usage.fill_mean == pytest.approx(0.5478, abs=1e-4)
    assert usage.describe().startswith("MongoDB cache on eventmanager: 97.50 % hit rate (900,000 pages requested")
    assert "1 restart (counters counted again from zero)" in usage.describe()
    assert cache_findings(usage) == []
    low = cache_findings(usage, hit_min=0.98)
    assert [f.title for f in low] == ["Cache hit rate 97.50 %, below the 98.00 % wanted: reads go to disk"]
    assert "22,500 of 900,000 pages" in low[0].evidence


def test_no_cache_section_is_not_available() -> None:
    assert cache_counters({"host": "secantus", "uptime": 10.0, "wiredTiger": {"uri": "statistics:"}}) is None
    assert cache_counters({"host": "secantus", "uptime": 10.0}) is None
    usage = cache_usage(frame([]))
    assert not usage.available and usage.reason == NOT_AVAILABLE and cache_findings(usage) == []
    assert "not available on this server: serverStatus has no wiredTiger.cache section" in cache_markdown(usage)


def test_counters_in_canonical_extended_json_and_eviction_pressure() -> None:
    counters = cache_counters({"uptime": {"$numberDouble": "60"}, "wiredTiger": {"cache": {
        "bytes currently in the cache": {"$numberLong": "970"}, "maximum bytes configured": {"$numberLong": "1000"}}}})
    assert counters == {"wt_cache_bytes": 970.0, "wt_cache_max_bytes": 1000.0, "uptime_s": 60.0}
    at = datetime(2026, 12, 1, tzinfo=UTC)
    usage = cache_usage(frame([Sample(at, "prod", "db", "database", k, v) for k, v in counters.items()]))
    assert usage.hit_rate is None and usage.fill_max == pytest.approx(0.97)
    assert [f.title.split(":")[0] for f in cache_findings(usage)] == ["Cache filled to 97.00 % of its 1.0 KB"]
    two = pd.concat([_fixture_samples("a"), _fixture_samples("b")])
    with pytest.raises(ValueError, match="pass host="):
        cache_usage(two)
    assert cache_usage(two, host="b").hit_rate == pytest.approx(0.975)


def test_markdown_has_a_headline_tables_and_no_python_repr() -> None:
    days = _summaries()
    routes, hosts, cache = route_weeks(days, WEEK_END), host_weeks(_host_samples(), WEEK_END_TS), cache_usage(_fixture_samples())
    text = markdown(routes, hosts, cache, missing_days(days, WEEK_END), totals=week_totals(days, WEEK_END))
    first = text.splitlines()[2]
    assert first.startswith("Traffic 54,180 requests over 7 days (+1 % per day week over week); 0.17 % failed (was 0.17 %)")
    assert "p95 of the slowest route 400 ms on GET /api/search (was 200 ms)" in first
    assert "busiest CPU web-1 at" in first
    assert "| `GET /api/search` | 2,800 (2,800) | 400 (400) | 0.25 % (0.25 %) | 400 ms (200 ms) |" in text
    assert "| host | CPU used | memory used | network out |" in text and "| service | availability | p95 response time |" in text
    assert "| eventmanager | 97.50 % |" in text
    for bad in ("nan", "None", "DataFrame", "dtype"):
        assert bad not in text
    empty = markdown(route_weeks({}, WEEK_END), host_weeks(frame([]), WEEK_END_TS), None, [])
    assert "No route requests" in empty and "Not measured this week." in empty
