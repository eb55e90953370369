"""Memory-leak suspicion per service (pure, pandas): does the floor of the heap rise, run after run?

A service's resident memory is a sawtooth (allocations, then a collection) that also climbs after a start (caches
fill). Neither is a leak. Per run between restarts, after a warm-up, the floor of each hour (its minimum: the
post-GC level, not the peaks) is tested for a trend (Mann–Kendall) and its rate measured (Theil–Sen). A leak is
named only when the floor rises significantly in every run long enough to tell, in ≥ 2 runs, or in one run of
≥ 48 hours, and still rises in the run's second half (a warm-up that plateaus does not).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd

from upkeep import humanize
from upkeep.errors import ReviewInputError
from upkeep.reviews.model import ReviewFinding
from upkeep.reviews.stats import mann_kendall, p_value, theil_sen

Verdict = Literal["leak suspected", "no leak", "insufficient data"]
MIB = 2**20
HOUR = pd.Timedelta(hours=1)
RSS, UPTIME = "memory_rss_bytes", "uptime_s"


def _when(t: datetime) -> str:
    """'Mon 30 Nov 03:10'  (UTC)."""
    return f"{pd.Timestamp(t).tz_convert('UTC'):%a %d %b %H:%M}"


def _mib(rate: float, sign: str = "") -> str:
    """'4.1 MiB/h' (sign '+': '+4.1 MiB/h'); never '-0.0'."""
    return f"{round(rate / MIB, 1) + 0.0:{sign}.1f} MiB/h"


@dataclass(frozen=True)
class Segment:
    """One run of the service between restarts, and what its hourly memory floor did."""

    start: datetime
    end: datetime
    bins: int  # hourly floors after the warm-up
    slope: float | None = None  # bytes per hour (Theil–Sen); None when too short
    late_slope: float | None = None  # the same over the second half of the bins
    p: float | None = None  # Mann–Kendall, two-sided
    rises: bool = False
    too_short: bool = True

    @property
    def slope_mib_per_h(self) -> float | None:
        return None if self.slope is None else self.slope / MIB

    def describe(self) -> str:
        """'Mon 30 Nov 03:10 – Wed 02 Dec 14:00: floor +4.1 MiB/h over 57 hourly bins (p < 0.001), rises'."""
        span = f"{_when(self.start)} – {_when(self.end)}"
        if self.too_short or self.slope is None or self.p is None:
            return f"{span}: {humanize.count(self.bins, 'hourly bin')}, too short to tell"
        return (f"{span}: floor {_mib(self.slope, '+')} over {humanize.count(self.bins, 'hourly bin')} "
                f"({p_value(self.p)}), {'rises' if self.rises else 'does not rise'}")


@dataclass(frozen=True)
class LeakResult:
    """The verdict on one service of one host, the runs it rests on and the restarts that separate them."""

    host: str
    target: str  # the service
    verdict: Verdict
    segments: tuple[Segment, ...]
    restarts: tuple[datetime, ...]
    alpha: float
    min_growth: float  # bytes per hour
    min_bins: int
    min_single_run_bins: int

    @property
    def judged(self) -> list[Segment]:
        """The runs long enough to tell."""
        return [s for s in self.segments if not s.too_short]

    def _restarts(self) -> str:
        if not self.restarts:
            return "no restart"
        shown = ", ".join(_when(t) for t in self.restarts[:4]) + (", …" if len(self.restarts) > 4 else "")
        return f"{humanize.count(len(self.restarts), 'restart')} ({shown} UTC)"

    def describe(self) -> str:
        """'api on web-1: memory floor rises 4.1 MiB/h in each of 3 runs between restarts (p < 0.001), 2 restarts (…)'."""
        who, runs = f"{self.target} on {self.host}", self.judged
        if not runs:
            longest = max((s.bins for s in self.segments), default=0)
            return (f"{who}: not enough data: the longest run has {humanize.count(longest, 'hourly bin')} after its "
                    f"warm-up, the test needs {self.min_bins}; {self._restarts()}")
        rising = [s for s in runs if s.rises]
        weakest = p_value(max(s.p or 0.0 for s in runs))
        rate = float(np.median([s.slope or 0.0 for s in (rising or runs)]))
        if self.verdict == "leak suspected":
            where = (f"in each of {len(runs)} runs between restarts" if len(runs) > 1
                     else f"over {runs[0].bins} hours in one run")
            return f"{who}: memory floor rises {_mib(rate)} {where} ({weakest}), {self._restarts()}"
        if rising and len(rising) == len(runs):
            return (f"{who}: memory floor rises {_mib(rate)} in one run of {runs[0].bins} hours ({weakest}): naming a leak "
                    f"needs ≥ 2 such runs or one of ≥ {self.min_single_run_bins} hours; {self._restarts()}")
        return (f"{who}: no leak: the memory floor rises in {len(rising)} of {humanize.count(len(runs), 'run')} "
                f"(median floor slope {_mib(rate)}, weakest {weakest}); {self._restarts()}")

    def evidence(self) -> str:
        """The method and its figures."""
        runs = self.judged
        slopes = ", ".join(_mib(s.slope or 0.0, "+").removesuffix(" MiB/h") for s in runs) or "—"
        ps = ", ".join(f"{s.p:.1g}" for s in runs if s.p is not None) or "—"
        return (f"hourly minima of {RSS} after warm-up, per run: Theil–Sen {slopes} MiB/h, Mann–Kendall p {ps}; "
                f"rises when p < {self.alpha:g} and ≥ {_mib(self.min_growth)}")


def _restart_times(wide: pd.DataFrame) -> list[pd.Timestamp]:
    """Where uptime went down, or memory fell by more than half after a gap of > 10 min without samples."""
    found: set[pd.Timestamp] = set()
    if UPTIME in wide:
        up = wide[UPTIME].dropna()
        found |= set(up.index[1:][np.diff(up.to_numpy()) < 0])
    rss = wide[RSS].dropna()
    gap = np.diff(rss.index.to_numpy()) > np.timedelta64(10, "m")
    drop = rss.to_numpy()[1:] < 0.5 * rss.to_numpy()[:-1]
    found |= set(rss.index[1:][gap & drop])
    return sorted(found)


def _segment(rss: pd.Series, alpha: float, min_growth: float, min_bins: int) -> Segment:
    """Drop the warm-up (the first 10 % of the run or 30 min, whichever is longer), take each hour's minimum
    (hours with fewer than half the usual samples are dropped: a partial hour may miss the floor), then test."""
    start, end = rss.index[0], rss.index[-1]
    rest = rss[rss.index >= start + max((end - start) * 0.1, pd.Timedelta(minutes=30))]
    hours = rest.groupby(rest.index.floor("h")).agg(["min", "count"])
    floors = hours[hours["count"] >= 0.5 * hours["count"].median()]["min"] if len(hours) else hours["min"]
    seg = Segment(start.to_pydatetime(), end.to_pydatetime(), len(floors))
    if len(floors) < max(min_bins, 3):
        return seg
    x = ((floors.index - start) / HOUR).to_numpy(dtype=float)
    y = floors.to_numpy(dtype=float)
    fit, trend = theil_sen(x, y), mann_kendall(y, alpha)
    half = len(y) // 2
    late = theil_sen(x[half:], y[half:]).slope
    rises = trend.direction == "increasing" and fit.slope >= min_growth and late >= fit.slope / 2
    return Segment(seg.start, seg.end, seg.bins, fit.slope, late, trend.p, rises, too_short=False)


def leak_suspicions(df: pd.DataFrame, alpha: float = 0.01, min_growth_bytes_per_hour: float = MIB, min_bins: int = 6,
                    min_single_run_bins: int = 48) -> list[LeakResult]:
    """Per (host, service) with `memory_rss_bytes` samples (and `uptime_s`, to find restarts): the runs between
    restarts, each run's floor trend, and the verdict."""
    if not 0 < alpha < 1:
        raise ReviewInputError(f"leak_suspicions: alpha={alpha!r} is not a probability; pass e.g. 0.01")
    rows = df[df["metric"].isin([RSS, UPTIME]) & df["value"].notna()]
    rows = rows.assign(ts=pd.to_datetime(rows["ts"], utc=True))
    out = []
    for (host, target), g in rows.groupby(["host", "target"], sort=True):
        wide = g.pivot_table(index="ts", columns="metric", values="value", aggfunc="last").sort_index()
        if RSS not in wide:
            continue
        restarts = _restart_times(wide)
        rss = wide[RSS].dropna()
        edges = [rss.index[0], *restarts, rss.index[-1] + HOUR]
        segments = tuple(_segment(part, alpha, min_growth_bytes_per_hour, min_bins)
                         for a, b in zip(edges, edges[1:], strict=False)
                         if len(part := rss[(rss.index >= a) & (rss.index < b)]) >= 2)
        judged = [s for s in segments if not s.too_short]
        verdict: Verdict = "insufficient data"
        if judged and all(s.rises for s in judged):
            if len(judged) >= 2 or judged[0].bins >= min_single_run_bins:
                verdict = "leak suspected"
        elif judged:
            verdict = "no leak"
        out.append(LeakResult(str(host), str(target), verdict, segments, tuple(t.to_pydatetime() for t in restarts),
                              alpha, min_growth_bytes_per_hour, min_bins, min_single_run_bins))
    return out


def markdown(results: Sequence[LeakResult]) -> str:
    """The memory-leak section: a sentence, a table per service, then each suspicion's runs."""
    suspects = [r for r in results if r.verdict == "leak suspected"]
    lines = ["## Memory leaks", ""]
    if suspects:
        names = ", ".join(f"{r.target} on {r.host}" for r in suspects)
        lines.append(f"{humanize.count(len(suspects), 'service')} {'leaks' if len(suspects) == 1 else 'leak'} memory "
                     f"(its floor rises run after run): {names}; {len(results)} checked.")
    else:
        lines.append(f"No service leaks memory ({humanize.count(len(results), 'service')} checked).")
    if results:
        lines += ["", "| service | host | verdict | runs judged | restarts | floor slope per run | weakest p |",
                  "|---|---|---|---|---|---|---|"]
    for r in results:
        runs = r.judged
        slopes = ", ".join(_mib(s.slope or 0.0, "+") for s in runs) or "—"
        weakest = p_value(max(s.p or 0.0 for s in runs)) if runs else "—"
        lines.append(f"| {r.target} | {r.host} | {r.verdict} | {len(runs)} of {len(r.segments)} | {len(r.restarts)} | "
                     f"{slopes} | {weakest} |")
    for r in suspects:
        lines += ["", f"### {r.target} on {r.host}", "", r.describe() + ".", ""]
        lines += [f"- {s.describe()}" for s in r.segments]
    return "\n".join(lines) + "\n"


def findings(results: Sequence[LeakResult]) -> list[ReviewFinding]:
    """A suspected leak as a warning (the evidence: method and figures per run); missing data as info."""
    out = []
    for r in results:
        if r.verdict == "leak suspected":
            out.append(ReviewFinding("warning", f"{r.target} on {r.host}", r.describe(), r.evidence()))
        elif r.verdict == "insufficient data":
            out.append(ReviewFinding("info", f"{r.target} on {r.host}", r.describe(), r.evidence()))
    return out
