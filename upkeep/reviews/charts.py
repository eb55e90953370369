"""The reviews' charts (pure, PNG bytes through upkeep.charts, the log analysis' helper): where a trend matters — the
week's hosts and routes, memory per service across restarts, the filesystems' daily peaks against their capacity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd

from upkeep.charts import line_chart
from upkeep.reviews.capacity import Forecast

MIB = 1 << 20
SHOWN = 6  # lines per chart: more is unreadable; the tables hold every figure


def daily_lines(title: str, table: pd.DataFrame, ylabel: str) -> bytes:
    """A frame indexed by day, one column per host (or service), as one line each (the first SHOWN columns by mean)."""
    cols = list(table.mean(numeric_only=True).sort_values(ascending=False).index[:SHOWN]) if not table.empty else []
    return line_chart(title, {str(c): table[c].dropna() for c in cols}, ylabel, xlabel="day (UTC)")


def route_p95(summaries: Mapping[date, Mapping[str, Any]], top: int = SHOWN) -> bytes:
    """The daily p95 of the busiest routes over the days given (the log analysis' summaries)."""
    rows = [{"day": pd.Timestamp(day, tz="UTC"), "route": route, "p95": v.get("p95_ms"), "requests": v.get("requests", 0)}
            for day, s in summaries.items() for route, v in (s.get("routes") or {}).items()]
    frame = pd.DataFrame(rows, columns=["day", "route", "p95", "requests"])
    busiest = frame.groupby("route")["requests"].sum().sort_values(ascending=False).index[:top]
    lines = {str(r): frame[frame["route"] == r].set_index("day")["p95"].astype(float).sort_index().dropna() for r in busiest}
    return line_chart("p95 latency per day, busiest routes", lines, "p95 (ms)", xlabel="day (UTC)")


def memory(df: pd.DataFrame) -> bytes:
    """Each service's resident memory over the period (drops are restarts), in MiB."""
    rss = df[df["metric"] == "memory_rss_bytes"]
    lines = {}
    for (host, target), rows in list(rss.groupby(["host", "target"]))[:SHOWN]:
        series = rows.set_index(pd.to_datetime(rows["ts"], utc=True))["value"].sort_index() / MIB
        lines[f"{target} on {host}"] = series
    return line_chart("Resident memory per service (drops are restarts)", lines, "RSS (MiB)")


def filesystems(daily: pd.DataFrame, forecasts: Sequence[Forecast]) -> bytes:
    """The daily peak of the filesystems that fill soonest, as a share of their capacity."""
    soonest = sorted((f for f in forecasts if f.metric == "used_bytes" and f.days_until_full is not None),
                     key=lambda f: f.days_until_full or 0)[:SHOWN]
    rest = [f for f in forecasts if f.metric == "used_bytes" and f not in soonest][: SHOWN - len(soonest)]
    lines = {}
    for f in [*soonest, *rest]:
        rows = daily[(daily["host"] == f.host) & (daily["target"] == f.target) & (daily["metric"] == "used_bytes")]
        share = (rows["used"] / rows["size"] * 100).astype(float)
        lines[f"{f.target.removeprefix('fs:')} on {f.host}"] = pd.Series(share.to_numpy(),
                                                                        index=pd.to_datetime(rows["day"], utc=True))
    return line_chart("Daily peak use of each filesystem", lines, "used (% of capacity)", xlabel="day (UTC)")
