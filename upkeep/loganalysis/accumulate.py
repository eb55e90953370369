"""The day so far: batches' `Partial`s merged (in any order, to the same result), then turned into the
analysis' DataFrames: error patterns, route latencies, hourly usage, security findings.

Memory stays flat in the number of lines but for the percentiles: each request keeps a route code (int16),
an hour (int32), its duration (float32) and whether it failed, 11 bytes, about 55 MB for 5 million requests;
everything else is counts keyed by routes and templates (both capped), source addresses and users.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
import pyarrow.compute as pc  # type: ignore[import-untyped]

from upkeep.loganalysis.batch import HOUR_US, NO_ROUTE, Partial, template_stats

MAX_ROUTES = 2000  # distinct route keys kept; beyond, requests count under OTHER_ROUTES
MAX_TEMPLATES = 5000  # distinct error templates kept; beyond, under OTHER_TEMPLATES
OTHER_ROUTES = "(other routes)"
OTHER_TEMPLATES = "(other error patterns)"
QUANTILES = (50, 95, 99)
TEMPLATE_BULK = 10_000  # error lines collected before they are templated (on the main thread, during the pass)
COMPACT_CLIENTS = 1_000_000  # batches' client counts are summed into one when they hold more rows than this


def route_key(method: str | None, route: str | None) -> str:
    """How a route is named in the report: "GET /api/events/:id"."""
    return " ".join(x for x in (method, route if route is not None else NO_ROUTE) if x)


def _sum_counts(parts: list[Any]) -> Any:
    """Several value counts (Arrow structs of values, counts) as one: the counts of equal values summed."""
    table = pa.table({"values": pa.concat_arrays([p.field("values") for p in parts]),
                      "counts": pa.concat_arrays([p.field("counts") for p in parts])})
    summed = table.group_by("values", use_threads=False).aggregate([("counts", "sum")])
    return pa.StructArray.from_arrays([summed["values"].combine_chunks(), summed["counts_sum"].combine_chunks()],
                                      names=["values", "counts"])


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
    """Merges `Partial`s (in submission order; the result does not depend on it but for what falls under the
    caps); its other methods compute the day's tables at the end."""

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
        self.templates: dict[str, list[Any]] = {}  # template → [count, first µs, last µs, example]
        self.pending_errors: list[Any] = []  # error lines not yet templated
        self.pending_rows = 0
        self.auth: dict[str, int] = {}
        self.denied: list[Any] = []
        self.suspicious: dict[tuple[str, str], int] = {}
        self.admin: dict[str, int] = {}
        self.clients: dict[str, list[Any]] = {"user": [], "ip": []}  # value counts (Arrow) of the batches
        self.client_rows: dict[str, int] = {"user": 0, "ip": 0}

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
            width = len(p.methods)
            used = np.flatnonzero(np.bincount(p.req_route, minlength=len(p.routes) * width)).tolist()
            mapping = np.zeros(len(p.routes) * width, dtype=np.int16)
            mapping[used] = [self._route_id(route_key(p.methods[u % width], p.routes[u // width])) for u in used]
            self.codes.append(mapping[p.req_route])
            self.hours.append(p.req_hour)
            self.ms.append(p.req_ms)
            self.failed.append(p.req_failed)
        if p.errors is not None and len(p.errors):
            self.pending_errors.append(p.errors)
            self.pending_rows += len(p.errors)
            if self.pending_rows >= TEMPLATE_BULK:
                self._templates()
        _add(self.auth, p.auth)
        if p.denied is not None:
            self.denied.append(p.denied)
        _add(self.suspicious, p.suspicious)
        _add(self.admin, p.admin)
        for kind, vc in (("user", p.users), ("ip", p.ips)):
            if vc is not None and len(vc):
                self.clients[kind].append(vc)
                self.client_rows[kind] += len(vc)
                if self.client_rows[kind] > COMPACT_CLIENTS:
                    self.clients[kind] = [_sum_counts(self.clients[kind])]
                    self.client_rows[kind] = len(self.clients[kind][0])

    def _templates(self) -> None:
        """Template the pending error lines (in bulk: a regex pass has a fixed cost per call) and merge them."""
        if not self.pending_errors:
            return
        stats = template_stats(pa.concat_tables(self.pending_errors))
        self.pending_errors, self.pending_rows = [], 0
        for tpl, (count, first, last, example) in stats.items():
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

    def latencies(self, hours: npt.NDArray[np.int64], workers: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(per route, per route and hour): requests, failed requests and the p50/p95/p99 of the logged
        durations (ms; numpy's linear interpolation). One stable sort by route code (a radix sort, int16),
        then per route one by hour: O(n) passes over the requests, no per-request Python; the routes are
        spread over `workers` threads (numpy releases the GIL)."""
        names = sorted(self.route_ids, key=self.route_ids.__getitem__)
        cols = ["route", "requests", "failed", *(f"p{q}_ms" for q in QUANTILES)]
        hour_cols = ["route", "hour", "requests", *(f"p{q}_ms" for q in QUANTILES)]
        if not self.codes:
            return pd.DataFrame(columns=cols), pd.DataFrame(columns=hour_cols)
        codes = np.concatenate(self.codes)
        ms = np.concatenate(self.ms)
        h0 = int(hours[0]) if len(hours) else min(int(h.min()) for h in self.hours if len(h))
        hour = np.concatenate(self.hours).astype(np.int64) - h0
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=len(names))
        fails = np.bincount(codes, weights=np.concatenate(self.failed), minlength=len(names)).astype(np.int64)
        bounds = np.concatenate([[0], np.cumsum(counts)])

        def route(rid: int) -> tuple[list[Any], list[list[Any]]]:
            seg = order[bounds[rid]:bounds[rid + 1]]
            d, h = ms[seg], hour[seg]
            small = h.min() >= 0 and h.max() < 2**15
            sub = np.argsort(h.astype(np.int16) if small else h, kind="stable")  # int16: a radix sort
            d = d[sub]
            lo = int(h.min())
            per_hour = np.bincount(h - lo)
            starts = np.concatenate([[0], np.cumsum(per_hour)])
            rows = [[names[rid], hv + lo + h0, int(per_hour[hv]), *_quantiles(d[starts[hv]:starts[hv + 1]])]
                    for hv in np.flatnonzero(per_hour).tolist()]
            return [names[rid], int(counts[rid]), int(fails[rid]), *_quantiles(d)], rows

        todo = sorted(np.flatnonzero(counts).tolist(), key=lambda r: -counts[r])  # biggest first: even threads
        if workers > 1 and len(todo) > 1:
            with ThreadPoolExecutor(workers, thread_name_prefix="loganalysis-p") as pool:
                results = list(pool.map(route, todo))
        else:
            results = [route(r) for r in todo]
        results.sort(key=lambda r: str(r[0][0]))
        by_route = pd.DataFrame([r for r, _ in results], columns=cols)
        by_hour = pd.DataFrame([row for _, rows in results for row in rows], columns=hour_cols)
        by_hour["hour"] = pd.to_datetime(by_hour["hour"].astype(np.int64) * HOUR_US, unit="us", utc=True)
        return by_route, by_hour

    def template_frame(self) -> pd.DataFrame:
        self._templates()
        rows = [(t, c, _ts(f), _ts(la), ex) for t, (c, f, la, ex) in self.templates.items()]
        frame = pd.DataFrame(rows, columns=["template", "count", "first_seen", "last_seen", "example"])
        return frame.sort_values(["count", "template"], ascending=[False, True], ignore_index=True)

    def top_clients(self, n: int) -> pd.DataFrame:
        """The busiest clients: users by name, and by source address the requests that named no user."""
        rows: list[tuple[str, str, int]] = []
        for kind, parts in self.clients.items():
            if not parts:
                continue
            counts = _sum_counts(parts)
            order = pc.sort_indices(counts, sort_keys=[("counts", "descending"), ("values", "ascending")])[:n]
            top = counts.take(order)
            rows += [(v, kind, c) for v, c in zip(top.field("values").to_pylist(), top.field("counts").to_pylist(),
                                                  strict=True)]
        rows.sort(key=lambda r: (-r[2], r[1], r[0]))
        return pd.DataFrame(rows[:n], columns=["client", "kind", "requests"]).astype({"requests": np.int64})

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
