"""The day's log analysis as people read it: a markdown report (sentences with units first, then the top
rows), rows for Prefect table artifacts (plain JSON types) and PNG charts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from upkeep import humanize
from upkeep.loganalysis.accumulate import records

if TYPE_CHECKING:
    from upkeep.loganalysis.analysis import Analysis

P95_CHART_ROUTES = 5  # routes drawn in the p95-per-hour chart (the slowest with enough requests)
P95_CHART_MIN_REQUESTS = 20


# -- formatting -----------------------------------------------------------------------------------
def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT or (not isinstance(v, str) and pd.isna(v))


def _int(v: Any) -> str:
    return "–" if _missing(v) else f"{int(v):,}"


def _ms(v: Any) -> str:
    return "–" if _missing(v) else humanize.metric("x_ms", float(v))


def _pct(part: float, whole: float) -> str:
    if not whole or not part:
        return "0 %"
    share = 100.0 * part / whole
    return f"{share:.2f} %" if share < 10 else f"{share:.1f} %"


def _time(v: Any) -> str:
    return "–" if _missing(v) else pd.Timestamp(v).strftime("%H:%M:%S")


def _when(v: Any) -> str:
    return "–" if _missing(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M:%S UTC")


def _code(text: Any) -> str:
    """Text in a table cell as code (so `<num>` is not taken for HTML), pipes escaped, bounded."""
    s = "" if _missing(text) else str(text)
    s = s.replace("`", "'").replace("|", "\\|").replace("\n", " ")
    return f"`{s[:157] + '…' if len(s) > 160 else s}`"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _plural(n: int, noun: str, plural: str | None = None) -> str:
    return humanize.count(int(n), noun, plural)


# -- markdown -------------------------------------------------------------------------------------
def markdown(a: Analysis) -> str:
    """The report: what happened in sentences with units, then tables of the top items of each section."""
    t = a.totals
    scope = a.day.isoformat() if a.day else "all lines"
    out = [f"# Log analysis — {scope}", ""]
    if not t.lines:
        out += ["No log lines were read: the archive was empty (check that the application wrote logs and that "
                "the right object was read)."]
        return "\n".join(out) + "\n"
    if not t.in_day:
        out += [f"{_plural(t.lines, 'line')} read, none of them dated {scope} "
                f"({_plural(t.malformed, 'malformed line')}). Check the archive's day and the log clock."]
        return "\n".join(out) + "\n"
    new = len(a.new_errors)
    head = (f"**{_plural(t.requests, 'request')}; {_pct(t.failed, t.requests)} failed; "
            f"{_plural(new, 'new error pattern')}; {_plural(len(a.slow_routes), 'slow route')}; "
            f"{_plural(len(a.bursts), 'burst')} of denied responses.**")
    span = f"{_time(t.first)}–{_time(t.last)} UTC" if t.first is not None else ""
    out += [head, "",
            f"{_plural(t.lines, 'line')} read; {t.in_day:,} dated {scope} ({span}); "
            f"{_plural(t.malformed, 'malformed line')} ({_pct(t.malformed, t.lines)}) skipped.",
            _history_sentence(a), ""]
    out += [*(f"_{n}_" for n in a.notes), ""] if a.notes else []
    alerts = a.alerts()
    out += ["## Alerts", ""]
    out += [f"- **{sev}**: {text}" for sev, text in alerts] if alerts else ["No alerts."]
    out += ["", *_errors(a), "", *_performance(a), "", *_security(a), "", *_usage(a)]
    return "\n".join(out).rstrip() + "\n"


def _history_sentence(a: Analysis) -> str:
    if not a.history_days:
        return "No earlier days to compare with."
    return (f"Compared with the summaries of {_plural(a.history_days, 'earlier day')}; latency changes against "
            f"{a.baseline_day}.")


def _errors(a: Analysis) -> list[str]:
    t, e, n = a.totals, a.errors, a.settings.top_n
    out = ["## Errors", ""]
    if e.empty:
        return [*out, "No error lines."]
    new = a.new_errors
    out.append(f"{_plural(t.error_lines, 'error line')} ({_pct(t.error_lines, t.in_day)} of the day's lines) in "
               f"{_plural(len(e), 'pattern')}" + (f", {len(new):,} of them new (not seen in {a.earlier})."
                                                  if a.history_days else "."))
    out.append("")
    rows = [[_code(r["template"]), _int(r["count"]), _time(r["first_seen"]), _time(r["last_seen"]),
             "new" if a.history_days and r["new"] else "", _code(r["example"])] for r in records(e.head(n))]
    out.append(_table(["pattern", "lines", "first (UTC)", "last (UTC)", "new", "example"], rows))
    hidden = new[~new["template"].isin(e.head(n)["template"])]
    if len(hidden):
        out += ["", f"New patterns outside the top {n}:", ""]
        out.append(_table(["pattern", "lines", "first (UTC)", "example"],
                          [[_code(r["template"]), _int(r["count"]), _time(r["first_seen"]), _code(r["example"])]
                           for r in records(hidden.head(n))]))
    return out


def _performance(a: Analysis) -> list[str]:
    r, s = a.routes, a.settings
    out = ["## Performance", ""]
    if r.empty:
        return [*out, "No requests."]
    slow = a.slow_routes
    if slow.empty:
        out.append(f"No route has a p95 latency above {_ms(s.slow_ms)} ({_plural(len(r), 'route')}).")
    else:
        names = ", ".join(f"{x['route']} ({_ms(x['p95_ms'])})" for x in records(slow.head(5)))
        verb = "has" if len(slow) == 1 else "have"
        out.append(f"{len(slow):,} of {_plural(len(r), 'route')} {verb} a p95 latency above {_ms(s.slow_ms)}: {names}"
                   + (" …" if len(slow) > 5 else "") + ".")
    worse = r[r["p95_ratio"] >= s.p95_regression_factor]
    if a.history_days and len(worse):
        out.append(f"{_plural(len(worse), 'route')} at least {s.p95_regression_factor:g}× slower (p95) than on "
                   f"{a.baseline_day}.")
    out.append("")
    rows = [[str(x["route"]), _int(x["requests"]), _pct(x["failed"], x["requests"]), _ms(x["p50_ms"]), _ms(x["p95_ms"]),
             _ms(x["p99_ms"]), "–" if _missing(x["p95_ratio"]) else f"{x['p95_ratio']:.2f}×"] for x in records(r.head(s.top_n))]
    out.append(_table(["route (slowest p95 first)", "requests", "failed", "p50", "p95", "p99", "p95 vs week ago"], rows))
    return out


def _security(a: Analysis) -> list[str]:
    s, n = a.settings, a.settings.top_n
    out = ["## Security", ""]
    auth = a.auth_failures
    if auth.empty:
        out.append("No authentication failures.")
    else:
        top = auth.iloc[0]
        out += [f"{_plural(int(auth['failures'].sum()), 'authentication failure')} from "
                f"{_plural(len(auth), 'source')}; the most from {top['ip']} ({int(top['failures']):,}).", "",
                _table(["source ip", "failures"], [[str(x["ip"]), _int(x["failures"])] for x in records(auth.head(n))])]
    out.append("")
    if a.bursts.empty:
        out.append(f"No bursts of denied responses (401/403/429, {s.burst_threshold} or more from one source "
                   f"within {s.burst_window_s:g} s).")
    else:
        out += [f"{_plural(len(a.bursts), 'burst')} of denied responses ({s.burst_threshold} or more from one source "
                f"within {s.burst_window_s:g} s, sliding window):", "",
                _table(["source ip", "from (UTC)", "to (UTC)", "responses", f"most in {s.burst_window_s:g} s", "statuses"],
                       [[str(x["ip"]), _time(x["start"]), _time(x["end"]), _int(x["responses"]), _int(x["peak"]),
                         str(x["statuses"])]
                        for x in records(a.bursts.head(n))])]
    out.append("")
    sus = a.suspicious
    if sus.empty:
        out.append("No requests to suspicious paths.")
    else:
        out += [f"{_plural(int(sus['requests'].sum()), 'request')} to suspicious paths from "
                f"{_plural(sus['ip'].nunique(), 'source')}:", "",
                _table(["path", "source ip", "requests"],
                       [[_code(x["path"]), str(x["ip"]), _int(x["requests"])] for x in records(sus.head(n))])]
    out.append("")
    adm = a.admin_ips
    if adm.empty:
        out.append(f"No requests to admin paths ({', '.join(s.admin_prefixes)}).")
    else:
        new = adm[adm["new"]] if a.history_days else adm.iloc[0:0]
        sentence = f"{_plural(len(adm), 'source')} on admin paths"
        sentence += (f", {len(new):,} new: " + ", ".join(f"{x['ip']} ({_plural(x['requests'], 'request')})"
                                                       for x in records(new.head(5))) + "."
                     if len(new) else (", none new." if a.history_days else "."))
        out += [sentence, "", _table(["source ip", "requests", "new"],
                                     [[str(x["ip"]), _int(x["requests"]), "new" if a.history_days and x["new"] else ""]
                                      for x in records(adm.head(n))])]
    return out


def _usage(a: Analysis) -> list[str]:
    h, c = a.hourly, a.clients
    out = ["## Usage", ""]
    if not a.totals.requests:
        return [*out, "No requests."]
    busy = h.iloc[int(h["requests"].to_numpy().argmax())]
    out += [f"Busiest hour {_time(busy['hour'])[:5]} UTC: {_plural(int(busy['requests']), 'request')} "
            f"({_pct(int(busy['failed']), int(busy['requests']))} failed). "
            f"Busiest client {c.iloc[0]['client']} ({c.iloc[0]['kind']}, "
            f"{_plural(int(c.iloc[0]['requests']), 'request')}).", ""]
    out += [_table(["client", "kind", "requests"], [[str(x["client"]), str(x["kind"]), _int(x["requests"])]
                                                   for x in records(c)]), ""]
    out.append(_table(["hour (UTC)", "requests", "failed", "error rate", "lines"],
                      [[_time(x["hour"])[:5], _int(x["requests"]), _int(x["failed"]), _pct(x["failed"], x["requests"]),
                        _int(x["lines"])]
                       for x in records(h)]))
    return out


# -- table artifacts ------------------------------------------------------------------------------
def _plain(v: Any) -> Any:
    if _missing(v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.isoformat().replace("+00:00", "Z")
    if hasattr(v, "item"):  # numpy scalars
        v = v.item()
    if isinstance(v, float):
        return round(v, 3)
    return v


def _rows(frame: pd.DataFrame, n: int | None = None) -> list[dict[str, Any]]:
    part = frame if n is None else frame.head(n)
    return [{str(k): _plain(v) for k, v in row.items()} for row in part.to_dict("records")]


def tables(a: Analysis) -> dict[str, list[dict[str, Any]]]:
    """Rows for table artifacts, top `top_n` of each (every hour of `hourly`), values of plain JSON types."""
    n = a.settings.top_n
    errors = a.errors[["template", "count", "first_seen", "last_seen", "new", "example"]]
    return {
        "error_patterns": _rows(errors, n), "new_error_patterns": _rows(a.new_errors, n),
        "routes": _rows(a.routes, n), "auth_failures": _rows(a.auth_failures, n), "bursts": _rows(a.bursts, n),
        "suspicious_requests": _rows(a.suspicious, n), "admin_sources": _rows(a.admin_ips, n),
        "clients": _rows(a.clients, n), "hourly": _rows(a.hourly),
    }


# -- charts ---------------------------------------------------------------------------------------
def charts(a: Analysis) -> dict[str, bytes]:
    """PNG charts: requests per hour with the failed share; p95 per hour of the slowest routes; p95 by route."""
    from upkeep import charts as charting  # matplotlib only when charts are drawn (the analysis itself needs none)

    h = a.hourly.set_index("hour")
    out = {"requests_per_hour.png": charting.line_chart(
        "Requests per hour, with the share that failed", {"requests": h["requests"]}, "requests per hour",
        secondary={"failed (%)": h["error_rate"] * 100.0}, secondary_ylabel="failed requests (%)")}
    busy = a.routes[a.routes["requests"] >= P95_CHART_MIN_REQUESTS].head(P95_CHART_ROUTES)
    series = {}
    for route in busy["route"]:
        rh = a.route_hours[a.route_hours["route"] == route].set_index("hour")["p95_ms"]
        series[str(route)] = rh.reindex(h.index)
    out["p95_per_hour.png"] = charting.line_chart(f"p95 latency per hour, the {len(series)} slowest routes", series,
                                                  "p95 latency (ms)")
    top = a.routes.head(a.settings.top_n).set_index("route")["p95_ms"].dropna()
    out["p95_by_route.png"] = charting.bar_chart(
        f"p95 latency of the {len(top)} slowest routes", top, "p95 latency (ms)",
        highlight=[str(r) for r in a.slow_routes["route"]], reference=(a.settings.slow_ms, f"slow: {_ms(a.settings.slow_ms)}"))
    return out
