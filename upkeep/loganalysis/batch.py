"""What one batch of parsed lines contributes to the day's analysis (pure, vectorised over the batch).

A `Partial` keeps only what the day needs: counts, small dicts keyed by template / IP / path, and for every
request three small numbers for the percentiles (route code, hour, duration as float32). Partials merge in any
order to the same result (`accumulate.Accumulator`), so batches can be parsed by several threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa  # type: ignore[import-untyped]  # pyarrow ships no type information
import pyarrow.compute as pc  # type: ignore[import-untyped]

from upkeep.loganalysis.templates import mask

HOUR_US = 3_600_000_000
ERROR_LEVELS = pa.array(["error", "fatal", "critical", "ERROR", "FATAL", "CRITICAL", "Error", "Fatal", "Critical"])
DENIED = pa.array([401, 403, 429], type=pa.int32())
NO_ROUTE = "(no route)"
MAX_EXAMPLE = 300  # characters of an example message


@dataclass(frozen=True)
class Rules:
    """The settings a batch needs, compiled once (RE2 patterns for pyarrow)."""

    window: tuple[int, int] | None  # [start, end) in µs since the epoch, or None for every line
    admin_prefixes: tuple[str, ...]
    suspicious: str  # one alternation of the suspicious path patterns
    login: str  # a login path
    auth_message: str  # a message that says authentication failed


@dataclass
class Partial:
    lines: int = 0  # lines read (parsed + malformed)
    malformed: int = 0
    in_day: int = 0
    ts_min: int | None = None  # µs since the epoch
    ts_max: int | None = None
    hour_lines: dict[int, int] = field(default_factory=dict)  # epoch hour → lines
    hour_errors: dict[int, int] = field(default_factory=dict)  # epoch hour → error lines
    routes: list[str | None] = field(default_factory=list)  # the batch's routes and methods (None: not logged)
    methods: list[str | None] = field(default_factory=list)
    req_route: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))  # route × methods + method
    req_hour: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))  # epoch hour
    req_ms: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))  # NaN: not logged
    req_failed: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    errors: Any = None  # Arrow table of the error lines: ts (µs), msg, status, method, route (templated in bulk)
    auth: dict[str, int] = field(default_factory=dict)  # source ip → authentication failures
    denied: Any = None  # Arrow table ip, ts (µs), status of the 401/403/429 responses
    suspicious: dict[tuple[str, str], int] = field(default_factory=dict)  # (path, ip) → requests
    admin: dict[str, int] = field(default_factory=dict)  # source ip → requests to admin paths
    users: Any = None  # Arrow struct array of (values, counts): requests by user
    ips: Any = None  # the same by source ip, for requests without a user


def regex_problem(pattern: str) -> str | None:
    """Why RE2 (pyarrow's regex engine: no look-around, no back-references) rejects `pattern`, or None."""
    try:
        pc.match_substring_regex(pa.array([""]), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        return str(exc)
    return None


def _counts(values: npt.NDArray[np.int64]) -> dict[int, int]:
    if not len(values):
        return {}
    low = int(values.min())
    counts = np.bincount(values - low)
    nz = np.flatnonzero(counts)
    return dict(zip((nz + low).tolist(), counts[nz].tolist(), strict=True))


def _value_counts(values: Any) -> dict[str, int]:
    vc = pc.value_counts(values)
    return dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True))


def summarise(table: Any, malformed: int, rules: Rules) -> Partial:
    """A normalised batch (`reader.COLUMNS`) reduced to its `Partial`."""
    part = Partial(lines=table.num_rows + malformed, malformed=malformed)
    ts = pc.cast(table["ts"], pa.int64()).to_numpy()
    if rules.window is not None:
        inside = (ts >= rules.window[0]) & (ts < rules.window[1])
        if not inside.all():
            table, ts = table.filter(pa.array(inside)), ts[inside]
    part.in_day = n = table.num_rows
    if not n:
        return part
    part.ts_min, part.ts_max = int(ts.min()), int(ts.max())
    hours = ts // HOUR_US
    part.hour_lines = _counts(hours)
    status = table["status"]
    error = pc.or_(pc.is_in(table["level"], value_set=ERROR_LEVELS), pc.fill_null(pc.greater_equal(status, 500), False))
    error_np = error.to_numpy(zero_copy_only=False)
    if error_np.any():
        part.hour_errors = _counts(hours[error_np])
        e = table.filter(error)
        part.errors = pa.table({"ts": pc.cast(e["ts"], pa.int64()), "msg": e["msg"], "status": e["status"],
                                "method": e["method"], "route": e["route"]})
    _requests(part, table, hours, error_np)
    _security(part, table, rules)
    return part


def _requests(part: Partial, table: Any, hours: npt.NDArray[np.int64], error: npt.NDArray[np.bool_]) -> None:
    """Route, hour, duration and failure of every request (a line with a status), and who sent it. Nothing
    is filtered row by row in Arrow (a copy of every column): the columns are encoded whole and the request
    rows picked from the small numpy arrays. The route key ("GET /api/events/:id") is not built per line
    either: route and method are dictionary-encoded apart and their codes combined; the accumulator names
    the few pairs used."""
    is_req = pc.is_valid(table["status"])
    req_np = is_req.to_numpy(zero_copy_only=False)
    if not req_np.any():
        return
    every = bool(req_np.all())
    route = pc.dictionary_encode(table["route"], null_encoding="encode").combine_chunks()
    method = pc.dictionary_encode(table["method"], null_encoding="encode").combine_chunks()
    part.routes = route.dictionary.to_pylist()
    part.methods = method.dictionary.to_pylist()
    pairs = route.indices.to_numpy().astype(np.int32) * len(part.methods) + method.indices.to_numpy().astype(np.int32)
    ms = pc.cast(table["duration_ms"], pa.float32()).to_numpy(zero_copy_only=False)
    ms = np.where(ms >= 0, ms, np.float32(np.nan)).astype(np.float32)  # NaN stays NaN, negative → NaN
    part.req_route = pairs if every else pairs[req_np]
    part.req_hour = (hours if every else hours[req_np]).astype(np.int32)
    part.req_ms = ms if every else ms[req_np]
    part.req_failed = error if every else error[req_np]
    user = table["user"]
    part.users = _drop_null_value(pc.value_counts(user if every else pc.filter(user, is_req)))
    anonymous = pc.is_null(user) if every else pc.and_(pc.is_null(user), is_req)
    part.ips = _drop_null_value(pc.value_counts(pc.filter(table["ip"], anonymous)))


def _drop_null_value(counts: Any) -> Any:
    """Value counts without the count of missing values (dropped from the result, not from the input)."""
    return counts if counts.field("values").null_count == 0 else counts.filter(pc.is_valid(counts.field("values")))


def template_stats(errors: Any) -> dict[str, list[Any]]:
    """Error lines (a table of ts µs, msg, status, method, route) by template: [count, first µs, last µs,
    example]. The example is the earliest message (the smallest at equal times), so the result does not depend
    on how lines were batched. A line without a message is named by its status and route ("HTTP 502 GET /x").
    Vectorised, and meant for many batches' error lines at once: a regex pass has a fixed cost per call."""
    msg = errors["msg"]
    synthetic = pc.binary_join_element_wise("HTTP", pc.cast(errors["status"], pa.string()), errors["method"],
                                            pc.fill_null(errors["route"], NO_ROUTE), " ", null_handling="skip")
    has_msg = pc.is_valid(msg)
    table = pa.table({
        "template": pc.if_else(has_msg, mask(pc.fill_null(msg, "")), synthetic), "ts": errors["ts"],
        "example": pc.utf8_slice_codeunits(pc.if_else(has_msg, msg, synthetic), 0, MAX_EXAMPLE),
    }).sort_by([("ts", "ascending"), ("example", "ascending")])
    g = table.group_by("template", use_threads=False).aggregate(
        [("ts", "count"), ("ts", "min"), ("ts", "max"), ("example", "first")])
    cols = [g[c].to_pylist() for c in ("template", "ts_count", "ts_min", "ts_max", "example_first")]
    return {tpl: [count, first, last, example] for tpl, count, first, last, example in zip(*cols, strict=True)}


def _security(part: Partial, table: Any, rules: Rules) -> None:
    """Authentication failures (a failed request, status >= 400, that is a 401 on a login path or whose message
    says authentication failed), denied responses (401/403/429, for bursts), suspicious paths, admin sources."""
    status, path = table["status"], table["path"]
    failed = pc.fill_null(pc.greater_equal(status, 400), False)
    if pc.any(failed).as_py():
        bad = table.filter(failed)
        login = pc.and_(pc.equal(bad["status"], 401), pc.match_substring_regex(pc.fill_null(bad["path"], ""), rules.login))
        said = pc.match_substring_regex(pc.fill_null(bad["msg"], ""), rules.auth_message, ignore_case=True)
        auth = pc.and_(pc.or_(login, said), pc.is_valid(bad["ip"]))
        if pc.any(auth).as_py():
            part.auth = _value_counts(pc.filter(bad["ip"], auth))
        denied = pc.and_(pc.is_in(bad["status"], value_set=DENIED), pc.is_valid(bad["ip"]))
        if pc.any(denied).as_py():
            d = bad.filter(denied)
            part.denied = pa.table({"ip": d["ip"], "ts": pc.cast(d["ts"], pa.int64()), "status": d["status"]})
    hit = pc.match_substring_regex(path, rules.suspicious)  # null for a line without path: filter drops it
    if pc.any(hit).as_py():
        s = table.filter(hit)
        for key, count in _value_counts(pc.binary_join_element_wise(s["path"], pc.fill_null(s["ip"], "?"), "\n")).items():
            p, _, ip = key.rpartition("\n")
            part.suspicious[(p, ip)] = count
    admin = None
    for prefix in rules.admin_prefixes:
        m = pc.starts_with(path, prefix)
        admin = m if admin is None else pc.or_(admin, m)
    if admin is not None and pc.any(admin).as_py():
        part.admin = _value_counts(pc.drop_null(pc.filter(table["ip"], admin)))
