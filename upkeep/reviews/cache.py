"""MongoDB's WiredTiger cache over a week: how full, how dirty, how often a read missed it (pure, pandas).

`cache_counters` takes what the health check reads from `serverStatus`; the check stores them as samples (host =
database name, target `database`), and `cache_usage` turns a week of such samples into one `CacheUsage`. The
counters are cumulative since mongod started: after a restart they begin again at zero, so an interval where
uptime (or a counter) went down counts each counter's new value from zero, not a negative difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from upkeep import humanize
from upkeep.errors import ReviewInputError
from upkeep.reviews.model import ReviewFinding

#: serverStatus.wiredTiger.cache statistic → the sample metric it is stored as.
STATISTICS: dict[str, str] = {
    "bytes currently in the cache": "wt_cache_bytes",
    "maximum bytes configured": "wt_cache_max_bytes",
    "pages read into cache": "wt_pages_read",
    "pages requested from the cache": "wt_pages_requested",
    "tracked dirty bytes in the cache": "wt_dirty_bytes",
    "unmodified pages evicted": "wt_evicted_unmodified",
    "modified pages evicted": "wt_evicted_modified",
}
COUNTERS = ("wt_pages_read", "wt_pages_requested", "wt_evicted_unmodified", "wt_evicted_modified")
METRICS = (*STATISTICS.values(), "uptime_s")
NOT_AVAILABLE = "not available on this server: serverStatus has no wiredTiger.cache section"


def _number(value: Any) -> float | None:
    """A serverStatus number as pymongo returns it or as extended JSON writes it ({"$numberLong": "12"})."""
    if isinstance(value, Mapping) and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def cache_counters(server_status: Mapping[str, Any]) -> dict[str, float] | None:
    """The cache figures of one `serverStatus` under short metric names, plus `uptime_s`; None when the server
    has no `wiredTiger.cache` section (another storage engine, or SecantusDB). A statistic missing is left out."""
    wired = server_status.get("wiredTiger")
    section = wired.get("cache") if isinstance(wired, Mapping) else None
    if not isinstance(section, Mapping):
        return None
    out = {key: v for name, key in STATISTICS.items() if (v := _number(section.get(name))) is not None}
    if (uptime := _number(server_status.get("uptime"))) is not None:
        out["uptime_s"] = uptime
    return out


@dataclass(frozen=True)
class CacheUsage:
    """The cache of one database server over the samples given. Shares are 0..1; None: not measurable."""

    available: bool
    reason: str = ""  # why not available
    host: str = ""
    samples: int = 0
    start: datetime | None = None
    end: datetime | None = None
    max_bytes: float | None = None
    fill_mean: float | None = None  # bytes in the cache / maximum configured
    fill_max: float | None = None
    dirty_mean: float | None = None  # tracked dirty bytes / maximum configured
    dirty_max: float | None = None
    pages_requested: float = 0.0  # summed over the intervals counted
    pages_read: float = 0.0
    hit_rate: float | None = None  # 1 − pages read into the cache / pages requested from it
    evictions_per_hour: float | None = None  # unmodified + modified pages evicted
    restarts: int = 0  # intervals where uptime or a counter went down: counted from zero

    def describe(self) -> str:
        """One sentence with units: hit rate, fill, dirty share, evictions, restarts."""
        if not self.available:
            return f"MongoDB cache{_on(self.host)}: {self.reason}."
        parts = [f"{_share(self.hit_rate)} hit rate ({self.pages_requested:,.0f} pages requested, "
                 f"{self.pages_read:,.0f} read into the cache)" if self.hit_rate is not None
                 else "hit rate not measurable (needs two samples with pages requested)"]
        if self.fill_mean is not None and self.max_bytes:
            parts.append(f"filled {_share(self.fill_mean)} on average, {_share(self.fill_max)} at most, of "
                         f"{humanize.size(self.max_bytes)}")
        if self.dirty_mean is not None:
            parts.append(f"dirty {_share(self.dirty_mean)} ({_share(self.dirty_max)} at most)")
        if self.evictions_per_hour is not None:
            parts.append(f"{self.evictions_per_hour:,.0f} pages evicted per hour")
        text = f"MongoDB cache{_on(self.host)}: " + ", ".join(parts)
        if self.restarts:
            text += f"; {humanize.count(self.restarts, 'restart')} (counters counted again from zero)"
        return text + f" — {humanize.count(self.samples, 'sample')}."


def _on(host: str) -> str:
    return f" on {host}" if host else ""


def _share(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.2f} %"


def _opt(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def cache_usage(df: pd.DataFrame, host: str | None = None) -> CacheUsage:
    """The week's cache from the `database` samples of `cache_counters` (ts, host, target, metric, value).

    Fill and dirty shares are means and maxima over the samples. Hit rate and evictions are summed over
    consecutive samples; after a restart each counter's new value is counted from zero (the events between
    the last sample and the restart are lost), and evictions per hour are over the time counted."""
    rows = df[(df["target"] == "database") & df["metric"].isin(METRICS)] if len(df) else df
    hosts = sorted(set(rows["host"])) if len(rows) else []
    if host is None and len(hosts) > 1:
        raise ReviewInputError(f"cache samples of {len(hosts)} database servers ({', '.join(hosts)}) were given to "
                         f"cache_usage; pass host= one of them, or filter the samples first")
    if host is not None:
        rows = rows[rows["host"] == host]
    name = host if host is not None else (hosts[0] if hosts else "")
    if rows.empty:
        return CacheUsage(available=False, reason=NOT_AVAILABLE, host=name)
    wide = rows.pivot_table(index="ts", columns="metric", values="value", aggfunc="mean").sort_index()
    wide = wide.reindex(columns=list(METRICS))
    fill = wide["wt_cache_bytes"] / wide["wt_cache_max_bytes"].where(wide["wt_cache_max_bytes"] > 0)
    dirty = wide["wt_dirty_bytes"] / wide["wt_cache_max_bytes"].where(wide["wt_cache_max_bytes"] > 0)
    counted = _counted(wide)
    pages = counted[["wt_pages_requested", "wt_pages_read"]].dropna()  # intervals with both counters
    requested, read = pages["wt_pages_requested"].sum(), pages["wt_pages_read"].sum()
    evicted = counted["wt_evicted_unmodified"].add(counted["wt_evicted_modified"], fill_value=0)
    seconds = counted["seconds"][evicted.notna()].sum()
    return CacheUsage(
        available=True, host=name, samples=len(wide), start=wide.index[0].to_pydatetime(),
        end=wide.index[-1].to_pydatetime(), max_bytes=_opt(wide["wt_cache_max_bytes"].dropna().iloc[-1])
        if wide["wt_cache_max_bytes"].notna().any() else None,
        fill_mean=_opt(fill.mean()), fill_max=_opt(fill.max()), dirty_mean=_opt(dirty.mean()), dirty_max=_opt(dirty.max()),
        pages_requested=float(requested), pages_read=float(read),
        hit_rate=1.0 - float(read) / float(requested) if requested > 0 else None,
        evictions_per_hour=float(evicted.sum()) * 3600 / seconds if seconds > 0 else None,
        restarts=int(counted["restart"].sum()))


def _counted(wide: pd.DataFrame) -> pd.DataFrame:
    """Per interval between consecutive samples: each counter's increase (its new value after a restart),
    the seconds it covers (at most the uptime after a restart) and whether mongod restarted."""
    values = wide[list(COUNTERS)]
    diff = values.diff()
    uptime = wide["uptime_s"]
    restart = (uptime.diff() < 0) | (diff < 0).any(axis=1)
    restart.iloc[0] = False
    counted = diff.mask(restart, values, axis=0)  # a restart: the counters started again at zero
    elapsed = pd.Series(wide.index, index=wide.index).diff().dt.total_seconds()
    counted["seconds"] = np.where(restart, np.fmin(elapsed, uptime), elapsed)
    counted["restart"] = restart
    return counted.iloc[1:]


def cache_findings(usage: CacheUsage, *, hit_min: float = 0.95, fill_max: float = 0.95) -> list[ReviewFinding]:
    """A hit rate below `hit_min`; a fill at or above `fill_max` of the maximum (WiredTiger evicts from 80 %
    and makes application threads evict at 95 %): eviction pressure."""
    if not usage.available:
        return []
    subject, out = f"MongoDB cache{_on(usage.host)}", []
    span = f"{humanize.count(usage.samples, 'sample')}" + (f", {humanize.count(usage.restarts, 'restart')} counted from zero"
                                                           if usage.restarts else "")
    if usage.hit_rate is not None and usage.hit_rate < hit_min:
        out.append(ReviewFinding("warning", subject, f"Cache hit rate {_share(usage.hit_rate)}, below the "
                                 f"{_share(hit_min)} wanted: reads go to disk", f"{usage.pages_read:,.0f} of "
                                 f"{usage.pages_requested:,.0f} pages requested were read into the cache ({span})"))
    if usage.fill_max is not None and usage.fill_max >= fill_max:
        size = humanize.size(usage.max_bytes) if usage.max_bytes else "?"
        out.append(ReviewFinding("warning", subject, f"Cache filled to {_share(usage.fill_max)} of its {size}: "
                                 "eviction pressure (application threads help evict from 95 %)",
                                 f"mean fill {_share(usage.fill_mean)}, "
                                 + (f"{usage.evictions_per_hour:,.0f} pages evicted per hour, "
                                    if usage.evictions_per_hour is not None else "") + span))
    return out


def cache_markdown(usage: CacheUsage) -> str:
    """The report's cache section: a sentence, then one row for the database server."""
    out = ["### MongoDB cache", "", usage.describe()]
    if usage.available:
        ev = "–" if usage.evictions_per_hour is None else f"{usage.evictions_per_hour:,.0f}"
        size = humanize.size(usage.max_bytes) if usage.max_bytes else "–"
        out += ["", "| database | hit rate | fill (mean / max) | of | dirty (mean / max) | evicted pages per hour | restarts |",
                "|---|---|---|---|---|---|---|",
                f"| {usage.host or '–'} | {_share(usage.hit_rate)} | {_share(usage.fill_mean)} / {_share(usage.fill_max)} | "
                f"{size} | {_share(usage.dirty_mean)} / {_share(usage.dirty_max)} | {ev} | {usage.restarts} |"]
    return "\n".join(out) + "\n"
