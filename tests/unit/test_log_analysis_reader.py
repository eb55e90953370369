"""The log analysis' reading side: bounded batches of whole lines, malformed lines counted and skipped,
nginx combined lines, routes from paths, messages to templates, bursts in sliding windows."""

from __future__ import annotations

import io
import random
from datetime import date

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pytest

from upkeep import charts
from upkeep.errors import LogArchiveError
from upkeep.loganalysis import (
    analyse,
    decompressed_chunks,
    derive_routes,
    line_batches,
    parse_json_batch,
    parse_nginx_batch,
    templates,
)
from upkeep.loganalysis.accumulate import bursts

GOOD = (b'{"ts": "2026-12-06T08:40:15.123Z", "level": "info", "service": "api", "method": "GET", "path": "/api/events/42", '
        b'"route": "/api/events/:id", "status": 200, "duration_ms": 12.5, "ip": "10.1.2.3", "user": "alice", "msg": "ok"}')


def test_batches_hold_whole_lines_whatever_the_chunks() -> None:
    lines = [b'{"n": %d, "pad": "%s"}' % (i, b"x" * (i % 300)) for i in range(3000)]
    data = b"\n".join(lines) + b"\n"
    rnd = random.Random(1)
    for _ in range(5):
        cuts = sorted(rnd.sample(range(1, len(data)), 200))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        batches = list(line_batches(iter(chunks), max_lines=500, max_bytes=20_000))
        assert b"".join(batches) == data
        assert all(b.endswith(b"\n") for b in batches)
        assert all(b.count(b"\n") <= 500 for b in batches)
        assert max(len(b) for b in batches) <= 20_000 + max(len(c) for c in chunks)


def test_a_final_line_without_newline_and_an_over_long_line() -> None:
    assert list(line_batches([b"a\nb", b"c"])) == [b"a\nbc"]
    long = b"{" + b"x" * 5000 + b"}\n"
    out = list(line_batches([GOOD + b"\n", long[:3000], long[3000:], GOOD + b"\n"], max_bytes=1000))
    assert out[-1] == GOOD + b"\n"
    assert b"".join(out).count(b"x") == 1000 - 1  # the long line cut at max_bytes ("{" + 999), its rest dropped
    frame, bad = parse_json_batch(b"".join(out))
    assert (len(frame), bad) == (2, 1)


def test_malformed_lines_are_counted_and_skipped() -> None:
    batch = b"\n".join([
        GOOD, b"", GOOD[:60], b"Traceback (most recent call last):", b"\x00\x01\xfe\xff garbage",
        b'{"ts": "2026-12-06T08:40:16Z", "level": info}', b'{"ts": "yesterday", "msg": "bad time"}',
        b'{"ts": "2026-12-06T08:40:17Z", "status": "two hundred"}', b'{"msg": "no time at all"}',
        b'{"ts": "2026-12-06T08:40:18Z", "msg": "caf\xe9 latin-1"}', GOOD.replace(b"08:40:15.123Z", b"08:40:19+01:00"),
        GOOD.replace(b"08:40:15.123Z", b"08:40:20"), b"[1, 2]",
    ]) + b"\n"
    frame, bad = parse_json_batch(batch)
    assert bad == 9
    assert len(frame) == 3
    assert [str(t) for t in frame["ts"]] == ["2026-12-06 08:40:15.123000+00:00", "2026-12-06 07:40:19+00:00",
                                            "2026-12-06 08:40:20+00:00"]
    assert isinstance(frame["status"].dtype, pd.ArrowDtype)


def test_a_clean_batch_parses_in_one_piece_with_unknown_fields_ignored() -> None:
    frame, bad = parse_json_batch((GOOD[:-1] + b', "extra": {"nested": [1, 2]}}\n') * 3)
    assert bad == 0 and len(frame) == 3
    assert list(frame.columns) == ["ts", "level", "method", "path", "route", "status", "duration_ms", "ip", "user", "msg"]
    assert frame["duration_ms"].tolist() == [12.5] * 3


def test_routes_from_paths() -> None:
    paths = pa.array(["/api/events/42", "/api/events/42/attendees?page=2", "/api/users/1b4e28ba-2d11-4d6a-a3b7-3c9d1a2b4c5d",
                      "/api/files/5f2b3c4d5e6f7a8b9c0d1e2f", "/api/1/2/3", "/api/search?q=42", "/health", "/v2/events"])
    assert derive_routes(paths).to_pylist() == [
        "/api/events/:id", "/api/events/:id/attendees", "/api/users/:id", "/api/files/:id", "/api/:id/:id/:id",
        "/api/search", "/health", "/v2/events"]


@pytest.mark.parametrize(("message", "template"), [
    ("database timeout after 14021 ms on query 398468c989d39058", "database timeout after <num> ms on query <hex>"),
    ("upstream 10.2.21.70:8080 refused connection", "upstream <ip> refused connection"),
    ("could not send mail to user209@example.org: SMTP 451", "could not send mail to <email>: SMTP <num>"),
    ("file not found: /var/lib/app/uploads/2081.png", "file not found: <path>"),
    ("failed to render event 4289: KeyError 'title'", "failed to render event <num>: KeyError <str>"),
    ("user 34cfd385-b5bf-4b73-aa9a-c88514355b7f can't log in", "user <uuid> can't log in"),
    ("document 507f1f77bcf86cd799439011 missing", "document <hex> missing"),
    ('value "x y" rejected after 3.5s', "value <str> rejected after <num>s"),
])
def test_messages_to_templates(message: str, template: str) -> None:
    assert templates([message]).tolist() == [template]


def test_nginx_combined_with_and_without_request_time() -> None:
    batch = (b'10.1.2.3 - bob [06/Dec/2026:08:40:15 +0000] "GET /api/events/42?x=1 HTTP/1.1" 200 512 "-" "curl/8.0" 0.013\n'
             b'10.1.2.4 - - [06/Dec/2026:08:41:15 +0000] "POST /api/login HTTP/1.1" 401 12 "https://x/" "Mozilla/5.0 (X11)"\n'
             b'10.1.2.5 - - [06/Dec/2026:09:00:00 +0100] "GET /.env HTTP/1.1" 404 0 "-" "scanner" -\n'
             b'10.1.2.6 - - [06/Dec/2026:10:00:00 +0000] "GET /api/users/5f2b3c4d5e6f7a8b9c0d1e2f HTTP/2.0" 502 0 "-" "x" 1.5\n'
             b"not an access log line\n")
    frame, bad = parse_nginx_batch(batch)
    assert bad == 1
    assert frame["route"].tolist() == ["/api/events/:id", "/api/login", "/.env", "/api/users/:id"]
    assert frame["duration_ms"].tolist()[0] == pytest.approx(13.0)
    assert frame["duration_ms"].isna().tolist() == [False, True, True, False]
    assert frame["level"].tolist() == ["info", "warn", "warn", "error"]
    assert frame["user"].tolist()[:2] == ["bob", None] or pd.isna(frame["user"].iloc[1])
    assert str(frame["ts"].iloc[2]) == "2026-12-06 08:00:00+00:00"
    a = analyse([batch[:150], batch[150:]], day=date(2026, 12, 6), fmt="nginx")
    assert (a.totals.lines, a.totals.malformed, a.totals.requests, a.totals.error_lines) == (5, 1, 4, 1)
    assert a.auth_failures["ip"].tolist() == ["10.1.2.4"] and a.suspicious["path"].tolist() == ["/.env"]
    assert a.errors["template"].tolist() == ["HTTP 502 GET /api/users/:id"]


def test_bursts_merge_overlapping_windows_per_source() -> None:
    us = 1_000_000
    rows = ([("1.1.1.1", t * us, 401) for t in range(0, 100, 2)]  # 50 in 100 s: one long burst
            + [("2.2.2.2", t * us, 429) for t in range(0, 19)]  # 19: under the threshold
            + [("3.3.3.3", t * 10 * us, 403) for t in range(30)])  # 30 over 300 s: 6 a minute, no burst
    found = bursts(pd.DataFrame(rows, columns=["ip", "ts", "status"]), threshold=20, window_s=60)
    assert found["ip"].tolist() == ["1.1.1.1"]
    assert (found.loc[0, "responses"], found.loc[0, "peak"], found.loc[0, "statuses"]) == (50, 30, "401")


def test_unknown_compression_and_corrupt_gzip_are_errors() -> None:
    with pytest.raises(LogArchiveError, match="unknown compression"):
        list(decompressed_chunks(io.BytesIO(b""), "lz4"))  # type: ignore[arg-type]
    with pytest.raises(LogArchiveError, match="gzip archive unreadable"):
        list(decompressed_chunks(io.BytesIO(b"\x1f\x8b\x08\x00" + b"\xff" * 100), "gzip"))
    assert list(decompressed_chunks(io.BytesIO(b""), "gzip")) == []


def test_chart_helpers_draw_labelled_pngs() -> None:
    hours = pd.date_range("2026-12-06", periods=24, freq="h", tz="UTC")
    line = charts.line_chart("Requests", {"api": pd.Series(range(24), index=hours)}, "requests per hour",
                             secondary={"errors (%)": pd.Series([0.5] * 24, index=hours)}, secondary_ylabel="errors (%)")
    bar = charts.bar_chart("p95", {"GET /a": 120.0, "GET /b": 300.0}, "p95 latency (ms)", reference=(200.0, "slow"))
    empty = charts.line_chart("Nothing", {}, "requests")
    for png in (line, bar, empty):
        assert png[:4] == b"\x89PNG"
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert (width, height) == (900, 400)
