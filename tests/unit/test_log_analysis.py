"""The daily log analysis end to end on generated days (sandbox/logsynth.py): what was injected is found
with its exact count, however the bytes arrive (chunks split anywhere, gzip, zstd), and the report reads
as sentences and tables, never as Python reprs."""

from __future__ import annotations

import io
import json
import random
import re
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest

from sandbox.logsynth import (
    ADMIN_IPS,
    BURST_IP,
    NEW_ADMIN_IP,
    NEW_ERROR_TEMPLATE,
    SCANNER_IP,
    Injections,
    SynthDay,
    compress,
    generate_day,
)
from upkeep.errors import ConfigError, LogArchiveError
from upkeep.loganalysis import Analysis, AnalysisSettings, analyse, decompressed_chunks

DAY = date(2026, 12, 6)
LINES = 60_000
INJECT = Injections(new_errors=14, slow_route="/api/search", slow_factor=3.0, burst=25, suspicious=9, new_admin=4,
                    malformed=0.01, other_day=7, no_route=0.1)


@pytest.fixture(scope="module")
def day() -> SynthDay:
    return generate_day(DAY, LINES, seed=3, inject=INJECT)


@pytest.fixture(scope="module")
def history() -> list[dict[str, Any]]:
    """The summary of the same weekday a week before (normal traffic, another seed), through JSON."""
    week_ago = DAY - timedelta(days=7)
    summary = analyse([generate_day(week_ago, LINES, seed=11).data], day=week_ago).summary()
    return [json.loads(json.dumps(summary))]


@pytest.fixture(scope="module")
def result(day: SynthDay, history: list[dict[str, Any]]) -> Analysis:
    return analyse([day.data], day=DAY, history=history)


def fingerprint(a: Analysis) -> str:
    """Everything an analysis found, as one comparable string (frames as JSON: NaN compares equal)."""
    frames = [a.errors, a.routes, a.route_hours, a.hourly, a.auth_failures, a.bursts, a.suspicious, a.admin_ips,
              a.clients]
    return json.dumps(a.summary(), sort_keys=True) + "".join(f.to_json(date_format="iso") for f in frames) + repr(a.totals)


def test_totals_count_every_line_and_the_malformed_ones_exactly(result: Analysis, day: SynthDay) -> None:
    e, t = day.expected, result.totals
    assert e.malformed == round(LINES * 0.01) > 0
    assert (t.lines, t.malformed, t.in_day) == (e.lines, e.malformed, e.in_day)
    assert t.lines == len(day.lines())  # blank lines are not lines; every other one is read or counted
    assert (t.requests, t.error_lines) == (e.requests, e.errors)
    assert t.in_day == e.in_day  # the 7 lines dated the day before are read, not counted in the day
    assert t.first is not None and t.first.date() == DAY and t.last is not None and t.last.date() == DAY


def test_a_new_error_pattern_is_found_with_its_exact_count(result: Analysis, day: SynthDay) -> None:
    row = result.errors.set_index("template").loc[NEW_ERROR_TEMPLATE]
    assert row["count"] == day.expected.new_errors == 14
    assert bool(row["new"])
    assert "payment webhook signature mismatch for order" in row["example"]
    assert row["first_seen"] <= row["last_seen"]
    assert result.new_errors["template"].tolist() == [NEW_ERROR_TEMPLATE]  # the everyday patterns are known


def test_history_makes_a_pattern_known_and_gives_p95_ratios(day: SynthDay, history: list[dict[str, Any]],
                                                              result: Analysis) -> None:
    yesterday = json.loads(json.dumps(result.summary()))
    again = analyse([day.data], day=DAY, history=[*history, yesterday])
    assert not again.errors.set_index("template").loc[NEW_ERROR_TEMPLATE, "new"]
    assert again.new_errors.empty and not any("New error pattern" in text for _, text in again.alerts())
    routes = result.routes.set_index("route")
    assert routes.loc["GET /api/events/:id", "p95_ratio"] == pytest.approx(1.0, abs=0.1)
    assert routes.loc["GET /api/search", "p95_ratio"] == pytest.approx(3.0, rel=0.15)  # the baseline: a week ago
    assert result.baseline_day == (DAY - timedelta(days=7)).isoformat()


def test_the_slow_route_is_slow_and_its_p95_regression_alerts(result: Analysis) -> None:
    routes = result.routes.set_index("route")
    assert result.slow_routes["route"].tolist() == ["GET /api/search"]
    assert routes.loc["GET /api/search", "p95_ms"] > 200 > routes.loc["GET /api/events", "p95_ms"]
    assert result.routes["route"].iloc[0] == "GET /api/search"  # slowest first
    alerts = [text for severity, text in result.alerts() if "p95" in text]
    assert len(alerts) == 1 and alerts[0].startswith("GET /api/search: p95 latency")
    hours = result.route_hours[result.route_hours["route"] == "GET /api/search"]
    assert len(hours) == 24 and hours["requests"].sum() == routes.loc["GET /api/search", "requests"]


def test_new_template_alert_needs_more_than_the_minimum(day: SynthDay, history: list[dict[str, Any]]) -> None:
    new = [t for s, t in analyse([day.data], day=DAY, history=history).alerts() if "New error pattern" in t]
    assert len(new) == 1 and "14 times" in new[0] and NEW_ERROR_TEMPLATE in new[0]
    strict = analyse([day.data], day=DAY, history=history, settings=AnalysisSettings(new_template_alert_min=14))
    assert not [t for _, t in strict.alerts() if "New error pattern" in t]  # 14 is not more than 14


def test_the_brute_force_burst_is_one_burst_of_exactly_its_responses(result: Analysis, day: SynthDay) -> None:
    assert len(result.bursts) == 1
    burst = result.bursts.iloc[0]
    assert (burst["ip"], burst["responses"], burst["peak"], burst["statuses"]) == (BURST_IP, 25, 25, "401")
    assert (burst["end"] - burst["start"]).total_seconds() < 60
    assert ("critical", ) == tuple({s for s, t in result.alerts() if BURST_IP in t})


def test_authentication_failures_by_source_are_exact(result: Analysis, day: SynthDay) -> None:
    found = dict(zip(result.auth_failures["ip"], result.auth_failures["failures"], strict=True))
    assert found == day.expected.auth_failures
    assert result.auth_failures.iloc[0]["ip"] == BURST_IP


def test_suspicious_paths_and_the_new_admin_source(result: Analysis, day: SynthDay) -> None:
    found = {(r.path, r.ip): r.requests for r in result.suspicious.itertuples()}
    assert found == {(p, SCANNER_IP): n for p, n in day.expected.suspicious.items()}
    assert sum(found.values()) == 9
    admin = result.admin_ips.set_index("ip")
    assert set(admin.index) == set(ADMIN_IPS) | {NEW_ADMIN_IP}
    assert admin.loc[NEW_ADMIN_IP, "requests"] == 4 and bool(admin.loc[NEW_ADMIN_IP, "new"])
    assert not admin.loc[list(ADMIN_IPS), "new"].any()
    assert any(NEW_ADMIN_IP in t for _, t in result.alerts())


def test_lines_without_route_get_the_route_of_their_path(result: Analysis) -> None:
    # 10 % of the API lines were written without "route": their paths give the same routes
    routes = set(result.routes["route"])
    assert {"GET /api/events/:id", "GET /api/users/:id", "GET /api/files/:id", "GET /api/search"} <= routes
    assert not any(re.search(r"/\d+(/|$)", r) for r in routes)


def test_chunks_split_anywhere_give_the_same_analysis(day: SynthDay, result: Analysis,
                                                       history: list[dict[str, Any]]) -> None:
    rnd = random.Random(7)
    cuts = sorted(rnd.sample(range(1, len(day.data)), 400))
    pieces = [day.data[a:b] for a, b in zip([0, *cuts], [*cuts, len(day.data)], strict=True)]
    split = analyse(iter(pieces), day=DAY, history=history, max_batch_bytes=256 << 10)  # many batches, too
    assert fingerprint(split) == fingerprint(result)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_input_gives_the_same_analysis(day: SynthDay, result: Analysis, history: list[dict[str, Any]],
                                                  compression: str) -> None:
    raw = io.BytesIO(compress(day.data, compression))
    out = analyse(decompressed_chunks(raw, compression, chunk_size=1 << 16), day=DAY, history=history)
    assert fingerprint(out) == fingerprint(result)


def test_concatenated_gzip_members_are_read_to_the_end_and_truncation_is_an_error(day: SynthDay) -> None:
    half = len(day.data) // 2
    two = compress(day.data[:half], "gzip") + compress(day.data[half:], "gzip")
    assert b"".join(decompressed_chunks(io.BytesIO(two), "gzip", chunk_size=4096)) == day.data
    with pytest.raises(LogArchiveError, match="truncated"):
        list(decompressed_chunks(io.BytesIO(two[: len(two) - 100]), "gzip"))


def test_summary_is_small_and_survives_json(result: Analysis) -> None:
    summary = result.summary()
    text = json.dumps(summary)
    assert json.loads(text) == summary
    assert len(text) < 20_000
    assert summary["totals"]["lines_in_day"] == result.totals.in_day
    assert summary["templates"][NEW_ERROR_TEMPLATE]["count"] == 14
    assert set(summary["admin_ips"]) == set(ADMIN_IPS) | {NEW_ADMIN_IP}


def _no_reprs(text: str) -> None:
    assert "{" not in text and "}" not in text
    for word in ("DataFrame", "Series", "dtype", "NaT", "None", "Timestamp(", "np.", "array("):
        assert word not in text, word
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)


def test_markdown_reads_as_sentences_and_tables(result: Analysis) -> None:
    md = result.markdown()
    _no_reprs(md)
    lines = md.splitlines()
    assert lines[0] == f"# Log analysis — {DAY}"
    assert re.match(r"\*\*[\d,]+ requests; [\d.]+ % failed; 1 new error pattern; 1 slow route; 1 burst", lines[2])
    assert f"{result.totals.malformed:,} malformed lines" in md
    for heading in ("## Alerts", "## Errors", "## Performance", "## Security", "## Usage"):
        assert heading in md
    assert "`payment webhook signature mismatch for order <uuid> (attempt <num>)`" in md
    assert "| GET /api/search |" in md and "ms |" in md


def test_a_quiet_first_day_says_so_in_words(day: SynthDay) -> None:
    quiet = generate_day(DAY, 5_000, seed=5)
    a = analyse([quiet.data], day=DAY)
    md = a.markdown()
    _no_reprs(md)
    assert a.alerts() == []  # no history: nothing is "new" enough to alert on
    for sentence in ("No authentication failures." if a.auth_failures.empty else "authentication failure",
                     "No bursts of denied responses", "No requests to suspicious paths.", "No alerts.",
                     "No earlier days to compare with."):
        assert sentence in md


def test_an_empty_input_gives_a_report_that_says_there_were_no_lines() -> None:
    a = analyse([], day=DAY)
    assert a.totals.lines == 0 and a.errors.empty and a.routes.empty
    md = a.markdown()
    assert "No log lines were read" in md
    _no_reprs(md)
    assert json.loads(json.dumps(a.summary()))["totals"]["lines_read"] == 0
    assert a.alerts() == []


def test_tables_are_plain_json(result: Analysis) -> None:
    tables = result.tables()
    json.dumps(tables, allow_nan=False)  # no NaN, no timestamps, no numpy scalars
    assert tables["new_error_patterns"][0]["template"] == NEW_ERROR_TEMPLATE
    assert tables["bursts"][0]["ip"] == BURST_IP and isinstance(tables["bursts"][0]["start"], str)
    assert len(tables["hourly"]) == 24 and len(tables["routes"]) == result.settings.top_n


def test_a_day_without_lines_of_that_day(day: SynthDay) -> None:
    a = analyse([day.data], day=DAY + timedelta(days=1))
    assert a.totals.in_day == 0 and a.totals.lines == day.expected.lines
    assert "none of them dated" in a.markdown()
    everything = analyse([day.data], day=None)
    assert everything.totals.in_day == day.expected.in_day + 7  # no day: the day before's lines count too
    assert len(everything.hourly) == 25  # from 23:xx the day before to 23:xx on the day


def test_charts_are_png_images(result: Analysis) -> None:
    charts = result.charts()
    assert {"requests_per_hour.png", "p95_per_hour.png"} <= set(charts)
    for png in charts.values():
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_history_entries_of_other_shapes_are_tolerated(day: SynthDay) -> None:
    odd: list[dict[str, Any]] = [{}, {"day": "2026-11-29", "routes": {"GET /api/search": {"p95_ms": None}}},
                                 {"templates": [], "admin_ips": None}]
    a = analyse([day.data], day=DAY, history=odd)
    assert a.history_days == 3
    assert pd.isna(a.routes.set_index("route").loc["GET /api/search", "p95_ratio"])


def test_one_thread_gives_the_same_analysis(day: SynthDay, result: Analysis, history: list[dict[str, Any]]) -> None:
    assert fingerprint(analyse([day.data], day=DAY, history=history, workers=1)) == fingerprint(result)


def test_a_pattern_re2_cannot_run_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="RE2"):
        analyse([], day=DAY, settings=AnalysisSettings(suspicious_patterns=(r"/admin(?!/login)",)))
