"""The day so far: batches' `Partial`s merged (in any order, to the same result), then turned into the
analysis' DataFrames: error patterns, route latencies, hourly usage, security findings.

Memory stays flat in the number of lines but for the percentiles: each request keeps a route code (int16),
an hour (int32) and its duration (float32), 10 bytes, about 50 MB for 5 million requests; everything else is
counts keyed by something of bounded variety (routes, templates and client sources are capped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information

from upkeep.loganalysis.batch import HOUR_US, Partial

MAX_ROUTES = 2000  # distinct route keys kept; beyond, requests count under OTHER_ROUTES
MAX_TEMPLATES = 5000  # distinct error templates kept; beyond, under OTHER_TEMPLATES
OTHER_ROUTES = "(other routes)"
OTHER_TEMPLATES = "(other error patterns)"
QUANTILES = (50, 95, 99)


@dataclass(frozen=True)
class Totals:
    lines: int  # lines read, malformed ones included
    malformed: int
    in_day: int  # well-formed lines dated on the day analysed (all of them when no day is given)
    requests: int
    failed: int  # requests that failed: status >= 500 or logged at error level
    error_lines: int  # lines at error level or with status >= 500, requests or not
    first: pd.Timestamp | None  # the earliest and latest time of a line counted
    last: pd.Timestamp | None


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a frame as dicts (column → value)."""
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _ts(us: int | None) -> pd.Timestamp | None:
    return None if us is None else pd.Timestamp(us, unit="us", tz="UTC")


def _add(into: dict[Any, int], counts: dict[Any, int]) -> None:
    for k, v in counts.items():
        into[k] = into.get(k, 0) + v


class Accumulator:
    """Merges `Partial`s; `frames()` computes the day's tables at the end."""

    def __init__(self) -> None:
        self.lines = self.malformed = self.in_day = 0
        self.ts_min: int | None = None
        self.ts_max: int | None = None
        self.hour_lines: dict[int, int] = {}
        self.hour_errors: dict[int, int] = {}
        self.route_ids: dict[str, int] = {}
        self.codes: list[npt.NDArray[np.int16]] = []
        self.hours: list[npt.NDArray[np.int32]] = []
        self.ms: list[npt.NDArray[np.float32]] = []
        self.failed: list[npt.NDArray[np.bool_]] = []
        self.templates: dict[str, list[Any]] = {}
        self.auth: dict[str, int] = {}
        self.denied: list[Any] = []
        self.suspicious: dict[tuple[str, str], int] = {}
        self.admin: dict[str, int] = {}
        self.users: dict[str, int] = {}
        self.ips: dict[str, int] = {}

    def add(self, p: Partial) -> None:
        self.lines += p.lines
        self.malformed += p.malformed
        self.in_day += p.in_day
        if p.ts_min is not None and p.ts_max is not None:
            self.ts_min = p.ts_min if self.ts_min is None else min(self.ts_min, p.ts_min)
            self.ts_max = p.ts_max if self.ts_max is None else max(self.ts_max, p.ts_max)
        _add(self.hour_lines, p.hour_lines)
        _add(self.hour_errors, p.hour_errors)
        if len(p.req_route):
            mapping = np.array([self._route_id(r) for r in p.routes], dtype=np.int16)
            self.codes.append(mapping[p.req_route])
            self.hours.append(p.req_hour)
            self.ms.append(p.req_ms)
            self.failed.append(p.req_failed)
        for tpl, (count, first, last, example) in p.templates.items():
            if tpl not in self.templates and len(self.templates) >= MAX_TEMPLATES:
                tpl = OTHER_TEMPLATES
            s = self.templates.get(tpl)
            if s is None:
                self.templates[tpl] = [count, first, last, example]
                continue
            s[0] += count
            if (first, example) < (s[1], s[3]):
                s[1], s[3] = first, example
            s[2] = max(s[2], last)
        _add(self.auth, p.auth)
        if p.denied is not None:
            self.denied.append(p.denied)
        _add(self.suspicious, p.suspicious)
        _add(self.admin, p.admin)
        for into, vc in ((self.users, p.users), (self.ips, p.ips)):
            if vc is not None and len(vc):
                _add(into, dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)))

    def _route_id(self, route: str) -> int:
        rid = self.route_ids.get(route)
        if rid is None:
            if len(self.route_ids) >= MAX_ROUTES:
                route = OTHER_ROUTES
                rid = self.route_ids.get(route)
            if rid is None:
                rid = self.route_ids[route] = len(self.route_ids)
        return rid

    # -- the day's tables --------------------------------------------------------------------------
    def totals(self) -> Totals:
        failed = int(sum(int(f.sum()) for f in self.failed))
        return Totals(lines=self.lines, malformed=self.malformed, in_day=self.in_day,
                      requests=int(sum(len(c) for c in self.codes)), failed=failed,
                      error_lines=sum(self.hour_errors.values()), first=_ts(self.ts_min), last=_ts(self.ts_max))

    def hour_range(self, day_start_us: int | None) -> npt.NDArray[np.int64]:
        """The epoch hours the hourly tables cover: the day's 24, or every hour from the first line to the last."""
        if day_start_us is not None:
            first = day_start_us // HOUR_US
            return np.arange(first, first + 24, dtype=np.int64)
        if not self.hour_lines:
            return np.zeros(0, dtype=np.int64)
        return np.arange(min(self.hour_lines), max(self.hour_lines) + 1, dtype=np.int64)

    def hourly(self, hours: npt.NDArray[np.int64]) -> pd.DataFrame:
        """Per hour: lines, requests, failed requests, error lines, the failed share of requests."""
        req = np.zeros(len(hours), dtype=np.int64)
        fail = np.zeros(len(hours), dtype=np.int64)
        if self.codes and len(hours):
            h = np.concatenate(self.hours).astype(np.int64) - hours[0]
            ok = (h >= 0) & (h < len(hours))
            req = np.bincount(h[ok], minlength=len(hours))
            fail = np.bincount(h[ok], weights=np.concatenate(self.failed)[ok], minlength=len(hours)).astype(np.int64)
        hs = hours.tolist()
        frame = pd.DataFrame({
            "hour": pd.to_datetime(hours * HOUR_US, unit="us", utc=True),
            "lines": [self.hour_lines.get(h, 0) for h in hs], "requests": req, "failed": fail,
            "error_lines": [self.hour_errors.get(h, 0) for h in hs],
        })
        frame["error_rate"] = (frame["failed"] / frame["requests"].where(frame["requests"] > 0)).fillna(0.0)
        return frame

    def latencies(self, hours: npt.NDArray[np.int64]) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(per route, per route and hour): requests, failed requests and the p50/p95/p99 of the logged
        durations (ms; numpy's linear interpolation). One stable sort by route code (a radix sort, int16),
        then per route one by hour: O(n) passes over the requests, no per-request Python."""
        names = sorted(self.route_ids, key=self.route_ids.__getitem__)
        cols = ["route", "requests", "failed", *(f"p{q}_ms" for q in QUANTILES)]
        if not self.codes:
            return pd.DataFrame(columns=cols), pd.DataFrame(columns=["route", "hour", "requests",
                                                                     *(f"p{q}_ms" for q in QUANTILES)])
        codes = np.concatenate(self.codes)
        ms = np.concatenate(self.ms)
        failed = np.concatenate(self.failed)
        h0 = int(hours[0]) if len(hours) else int(min(int(h.min()) for h in self.hours if len(h)))
        hour = np.concatenate(self.hours).astype(np.int64) - h0
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=len(names))
        fails = np.bincount(codes, weights=failed, minlength=len(names)).astype(np.int64)
        bounds = np.concatenate([[0], np.cumsum(counts)])
        route_rows, hour_rows = [], []
        for rid, name in enumerate(names):
            seg = order[bounds[rid]:bounds[rid + 1]]
            if not len(seg):
                continue
            d = ms[seg]
            route_rows.append([name, int(counts[rid]), int(fails[rid]), *_quantiles(d)])
            h = hour[seg]
            if len(h) and h.min() >= 0 and h.max() < 2**15:
                sub = np.argsort(h.astype(np.int16), kind="stable")
            else:
                sub = np.argsort(h, kind="stable")
            hs, starts, n = np.unique(h[sub], return_index=True, return_counts=True)
            for hv, s, c in zip(hs.tolist(), starts.tolist(), n.tolist(), strict=True):
                hour_rows.append([name, hv + h0, c, *_quantiles(d[sub[s:s + c]])])
        by_route = pd.DataFrame(route_rows, columns=cols)
        by_hour = pd.DataFrame(hour_rows, columns=["route", "hour", "requests", *(f"p{q}_ms" for q in QUANTILES)])
        by_hour["hour"] = pd.to_datetime(by_hour["hour"].astype(np.int64) * HOUR_US, unit="us", utc=True)
        return by_route, by_hour

    def template_frame(self) -> pd.DataFrame:
        rows = [(t, c, _ts(f), _ts(la), ex) for t, (c, f, la, ex) in self.templates.items()]
        frame = pd.DataFrame(rows, columns=["template", "count", "first_seen", "last_seen", "example"])
        return frame.sort_values(["count", "template"], ascending=[False, True], ignore_index=True)

    def denied_frame(self) -> pd.DataFrame:
        if not self.denied:
            return pd.DataFrame({"ip": pd.Series(dtype=str), "ts": pd.Series(dtype=np.int64),
                                 "status": pd.Series(dtype=np.int32)})
        frame: pd.DataFrame = pa.concat_tables(self.denied).to_pandas()
        return frame


def _quantiles(values: npt.NDArray[np.float32]) -> list[float]:
    d = values[~np.isnan(values)]
    if not len(d):
        return [float("nan")] * len(QUANTILES)
    return [round(float(v), 2) for v in np.percentile(d, QUANTILES)]


def bursts(denied: pd.DataFrame, threshold: int, window_s: float) -> pd.DataFrame:
    """Bursts of denied responses (401/403/429) from one source. Sliding windows: a window of `window_s`
    seconds starts at every denied response; one holding at least `threshold` responses of the same source
    makes a burst, and overlapping such windows of a source merge into one burst. Per burst: source, start
    (first response), end (last response of its last window), responses in it, the most in one window
    (`peak`) and the statuses seen."""
    cols = ["ip", "start", "end", "responses", "peak", "statuses"]
    if len(denied) < threshold or threshold < 1:
        return pd.DataFrame(columns=cols)
    codes, ips = pd.factorize(denied["ip"])
    ts = denied["ts"].to_numpy(dtype=np.int64)
    t0, span = int(ts.min()), int(ts.max() - ts.min())
    window = int(window_s * 1_000_000)
    stride = span + window + 1  # sources never share a key range, so one sorted key serves all of them
    key = codes.astype(np.int64) * stride + (ts - t0)
    order = np.argsort(key, kind="stable")
    key = key[order]
    end = np.searchsorted(key, key + window, side="left")  # first response at or after the window's end
    count = end - np.arange(len(key))
    start = np.flatnonzero(count >= threshold)
    if not len(start):
        return pd.DataFrame(columns=cols)
    stop = end[start]
    new = np.ones(len(start), dtype=bool)  # a window that starts after every earlier one ended opens a burst
    new[1:] = start[1:] >= np.maximum.accumulate(stop)[:-1]
    groups = np.cumsum(new) - 1
    status = denied["status"].to_numpy()[order]
    rows = []
    for g in range(int(groups[-1]) + 1):
        members = np.flatnonzero(groups == g)
        first, last = int(start[members[0]]), int(stop[members].max())
        rows.append([ips[codes[order[first]]], _ts(int(ts[order[first]])), _ts(int(ts[order[last - 1]])),
                     last - first, int(count[start[members]].max()),
                     ", ".join(str(s) for s in sorted(set(status[first:last].tolist())))])
    frame = pd.DataFrame(rows, columns=cols)
    return frame.sort_values(["responses", "ip"], ascending=[False, True], ignore_index=True)
