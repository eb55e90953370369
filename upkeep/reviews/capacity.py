"""Days until full, not fooled by nightly bursts (pure, pandas).

Prometheus' `predict_linear(node_filesystem_avail_bytes[6h], 24*3600) < 0` and Zabbix' `timeleft` fit a line
through a few hours of raw samples: a backup or a log rotation that fills a disk for an hour each night, then frees
it, looks like a disk filling within a day. Here a Theil–Sen line is fitted through ≥ 7 days of DAILY MAXIMA: the
peak is what must fit on the disk, a burst repeats in every day's peak (it moves the level, not the slope), and
the median of pairwise slopes ignores the odd day. `predict_linear` is kept as the peer, for benchmark and tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from upkeep import humanize
from upkeep.errors import ReviewInputError
from upkeep.reviews.model import ReviewFinding
from upkeep.reviews.stats import least_squares, theil_sen

Status = Literal["ok", "warning", "critical", "insufficient data", "not growing"]
Values = Sequence[float] | np.ndarray | pd.Series
DAY = pd.Timedelta(days=1)
DAILY_COLUMNS = ["host", "target", "metric", "day", "used", "at", "size", "samples"]


def _utc(now: datetime, fn: str) -> pd.Timestamp:
    if now.tzinfo is None:
        raise ReviewInputError(f"{fn}: {now.isoformat()} has no time zone; pass an aware UTC time, e.g. datetime.now(UTC)")
    return pd.Timestamp(now).tz_convert("UTC")


def _when(t: datetime | None) -> str:
    """'Mon 30 Nov 03:10 UTC', or '—'."""
    return "—" if t is None else f"{pd.Timestamp(t).tz_convert('UTC'):%a %d %b %H:%M} UTC"


def daily_maxima(df: pd.DataFrame, metric: str, size_metric: str | None = None) -> pd.DataFrame:
    """Per (host, target, UTC day): the day's largest `metric` value (`used`), when it was reached (`at`), how many
    samples the day has, and the day's last `size_metric` value (`size`, the capacity then; NaN without one)."""
    used = df[(df["metric"] == metric) & df["value"].notna()]
    if used.empty:
        return pd.DataFrame(columns=DAILY_COLUMNS)
    used = used.assign(ts=pd.to_datetime(used["ts"], utc=True)).reset_index(drop=True)
    used["day"] = used["ts"].dt.floor("D")
    keys = ["host", "target", "day"]
    top = used.loc[used.groupby(keys)["value"].idxmax(), [*keys, "value", "ts"]]
    top = top.rename(columns={"value": "used", "ts": "at"}).merge(used.groupby(keys).size().rename("samples").reset_index())
    sizes = df[(df["metric"] == size_metric) & df["value"].notna()] if size_metric else df.iloc[0:0]
    if sizes.empty:
        top["size"] = math.nan
    else:
        sizes = sizes.assign(ts=pd.to_datetime(sizes["ts"], utc=True))
        last = sizes.assign(day=sizes["ts"].dt.floor("D")).sort_values("ts").groupby(keys)["value"].last()
        top = top.merge(last.rename("size").reset_index(), how="left")
    top["metric"] = metric
    return top[DAILY_COLUMNS].sort_values(["host", "target", "day"]).reset_index(drop=True)


_UNITS = {False: ("B", "KB", "MB", "GB", "TB", "PB"), True: ("inodes", "k inodes", "M inodes", "G inodes", "T", "P")}


def _scaled(metric: str, *values: float) -> str:
    """Values in one decimal unit, three significant figures: '2.08–2.12 GB', '99.5–101 k inodes', '22 M inodes'."""
    k = min(max(int(math.log10(max([abs(v) for v in values if math.isfinite(v)] + [1.0]))) // 3, 0), 5)
    text = "–".join("?" if not math.isfinite(v) else f"{v / 1000**k:.3g}" for v in values)
    return f"{text} {_UNITS[metric.startswith('inodes')][k]}"


def _amount(metric: str, value: float) -> str:
    """Bytes as humanize.size ('429 GB'), inodes as '22 M inodes'."""
    return _scaled(metric, value) if metric.startswith("inodes") else humanize.size(value)


def _d(days: float) -> str:
    return f"{days:.1f}" if days < 10 else f"{days:.0f}"


@dataclass(frozen=True)
class Forecast:
    """When one filesystem (bytes or inodes) or database reaches its capacity, from the fitted daily peak."""

    host: str  # the database name for a database
    target: str  # "fs:/var", "database"
    metric: str  # "used_bytes", "inodes_used", "db_size_bytes"
    status: Status
    days_of_data: int  # complete daily maxima used
    min_days: int
    used: float | None = None  # the fitted daily peak at `now`
    capacity: float | None = None
    growth_per_day: float | None = None
    growth_band: tuple[float, float] | None = None  # the slope's band, per day (nan: too few days to tell)
    days_until_full: float | None = None  # None: not growing, no capacity, or beyond the horizon
    soonest: float | None = None  # days, from the band's upper slope
    latest: float | None = None  # days, from the band's lower slope; None: not within the horizon
    size_in_90_days: float | None = None
    confidence: float = 0.90
    horizon_days: float = 365
    warn_days: float = 30

    @property
    def what(self) -> str:
        """'/var', '/var inodes', 'database events'."""
        name = f"database {self.host}" if self.target == "database" else self.target.removeprefix("fs:")
        return f"{name} inodes" if self.metric.startswith("inodes") else name

    @property
    def where(self) -> str:
        return self.what if self.target == "database" else f"{self.what} on {self.host}"

    @property
    def subject(self) -> str:
        return self.what if self.target == "database" else f"{self.host} {self.what}"

    def band_text(self) -> str:
        """' (76–85 d)', ' (76 d or later)', ' (band < 1 d)', '' (no band)."""
        if self.soonest is None:
            return ""
        lo, hi = _d(self.soonest), "" if self.latest is None else _d(self.latest)
        return f" ({lo} d or later)" if not hi else " (band < 1 d)" if lo == hi else f" ({lo}–{hi} d)"

    def row(self) -> dict[str, object]:
        """The forecasts table's row: readable cells, the days as a number for sorting."""
        return {"host": self.host, "what": self.what, "status": self.status,
                "used": "" if self.used is None else _amount(self.metric, self.used),
                "capacity": "" if self.capacity is None else _amount(self.metric, self.capacity),
                "growth_per_day": "" if self.growth_per_day is None else _amount(self.metric, self.growth_per_day),
                "days_until_full": None if self.days_until_full is None else round(self.days_until_full, 1),
                "until": self.until(), "days_of_data": self.days_of_data}

    def eta(self) -> str:
        """'in 80 days (76–85 d)', 'in 14 h (0.5–0.7 d)', '' without a date."""
        days = self.days_until_full
        if days is None:
            return ""
        return f"in {humanize.duration(days * 86400) if days < 2 else _d(days) + ' days'}{self.band_text()}"

    def until(self) -> str:
        """The table cell: '80 (76–85 d)', 'not within 365 d', '14 GB in 90 days', '—'."""
        if self.days_until_full is not None:
            return _d(self.days_until_full) + self.band_text()
        if self.used is None:
            return "—"
        if self.capacity is None:
            return f"{_amount(self.metric, self.size_in_90_days or 0.0)} in 90 days"
        return f"not within {self.horizon_days:.0f} d"

    def describe(self) -> str:
        """A sentence with units: '/var on web-1 fills in 80 days (76–85 d) at 2.0 GB/day (342 GB of 537 GB at peak)'."""
        if self.status == "insufficient data":
            return (f"{self.where}: {humanize.count(self.days_of_data, 'complete day')} of data, the forecast needs "
                    f"{self.min_days}: no forecast yet")
        m, used = self.metric, _amount(self.metric, self.used or 0.0)
        rate = f"{_amount(m, self.growth_per_day or 0.0)}/day"
        held = f"{used} of {_amount(m, self.capacity)} at peak" if self.capacity else f"{used} at peak"
        if self.status == "not growing":
            return f"{self.where} is not growing ({rate}); {held}"
        if self.capacity is None:
            return (f"{self.where} grows {rate}: {used} now, {_amount(m, self.size_in_90_days or 0)} in 90 days "
                    "(no size limit configured)")
        if self.days_until_full is None:
            return f"{self.where} does not fill within {self.horizon_days:.0f} days at {rate} ({held})"
        return f"{self.where} fills {self.eta()} at {rate} ({held})"

    def evidence(self) -> str:
        """The method and its figures."""
        if self.growth_band is None:
            return f"{self.days_of_data} daily maxima (needs {self.min_days})"
        return (f"Theil–Sen over {self.days_of_data} daily maxima, {self.confidence * 100:.0f} % band of growth "
                f"{_scaled(self.metric, *self.growth_band)}/day")


def forecast(daily: pd.DataFrame, now: datetime, min_days: int = 7, capacity: float | Mapping[str, float] | None = None,
             *, lookback_days: int = 28, warn_days: float = 30, critical_days: float = 7, horizon_days: float = 365,
             confidence: float = 0.90) -> list[Forecast]:
    """Per (host, target, metric) of `daily_maxima`: Theil–Sen through the last `lookback_days` COMPLETE days (the
    day of `now` is still open: its maximum so far is not the day's), each maximum placed at the time it was
    reached; days until the fitted peak at `now` reaches the capacity (the day's `size`, else `capacity`, a limit
    in the metric's unit or database name → limit), with a band from the slope's band. Without a capacity: growth
    and the size in 90 days."""
    if min_days < 2:
        raise ReviewInputError(f"forecast: min_days={min_days} cannot fit a line; pass at least 2 (7 is the default)")
    t_now = _utc(now, "forecast")
    today = t_now.floor("D")
    # several metrics' maxima concatenated (an empty frame among them makes the columns objects): times again
    daily = daily.assign(day=pd.to_datetime(daily["day"], utc=True), at=pd.to_datetime(daily["at"], utc=True),
                         used=pd.to_numeric(daily["used"]), size=pd.to_numeric(daily["size"]))
    recent = daily[(daily["day"] < today) & (daily["day"] >= today - lookback_days * DAY)]
    out = []
    for (host, target, metric), g in recent.groupby(["host", "target", "metric"], sort=True):
        empty = Forecast(str(host), str(target), str(metric), "insufficient data", len(g), min_days,
                         confidence=confidence, horizon_days=horizon_days, warn_days=warn_days)
        if len(g) < min_days:
            out.append(empty)
            continue
        t0 = g["day"].min()
        x = ((g["at"] - t0) / DAY).to_numpy(dtype=float)
        fit = theil_sen(x, g["used"].to_numpy(dtype=float), confidence)
        level, slope = fit.at((t_now - t0) / DAY), fit.slope
        sizes, limit = g["size"].dropna(), capacity.get(str(host)) if isinstance(capacity, Mapping) else capacity
        cap = float(sizes.iloc[-1]) if len(sizes) else limit
        fitted = replace(empty, status="ok", used=level, capacity=cap, growth_per_day=slope,
                         growth_band=(fit.low, fit.high), size_in_90_days=level + 90 * slope)
        if slope <= 0 or cap is None:  # without a capacity: growth and the size in 90 days only
            out.append(fitted if slope > 0 else replace(fitted, status="not growing"))
            continue
        remaining = max(cap - level, 0.0)
        days = remaining / slope
        if days > horizon_days:  # growth too small to tell from none (the band reaches 0) or just slow
            out.append(replace(fitted, status="ok" if fit.low > 0 else "not growing"))
            continue
        latest = remaining / fit.low if fit.low > 0 else None  # a lower bound ≤ 0 (or unknown): an open end
        status: Status = "critical" if days <= critical_days else "warning" if days <= warn_days else "ok"
        out.append(replace(fitted, status=status, days_until_full=days,
                           soonest=remaining / fit.high if fit.high > 0 else None,
                           latest=latest if latest is not None and latest <= horizon_days else None))
    return out


@dataclass(frozen=True)
class Headroom:
    """A host's weekly peaks of CPU and memory use (the max of the daily maxima), and when they happened."""

    host: str
    days: int  # the span the samples cover, in whole days rounded up
    cpu_peak: float | None
    cpu_at: datetime | None
    memory_peak: float | None
    memory_at: datetime | None
    threshold: float = 80.0

    @property
    def status(self) -> Literal["ok", "warning", "insufficient data"]:
        peaks = [p for p in (self.cpu_peak, self.memory_peak) if p is not None]
        return "insufficient data" if not peaks else "warning" if max(peaks) >= self.threshold else "ok"

    def row(self) -> dict[str, object]:
        return {"host": self.host, "status": self.status,
                "cpu_peak": "" if self.cpu_peak is None else humanize.metric("cpu_percent", self.cpu_peak),
                "cpu_peak_at": _when(self.cpu_at) if self.cpu_at else "",
                "memory_peak": "" if self.memory_peak is None else humanize.metric("memory_percent", self.memory_peak),
                "memory_peak_at": _when(self.memory_at) if self.memory_at else "", "days": self.days}

    def describe(self) -> str:
        """'web-1: CPU peaked at 93 % (Tue 01 Dec 14:05 UTC, 7 % headroom); memory at 61 % (…) over 7 days'."""
        parts = [f"{label} at {humanize.metric(name, peak)} ({_when(at)}, {humanize.metric(name, 100 - peak)} headroom)"
                 for label, name, peak, at in (("CPU peaked", "cpu_percent", self.cpu_peak, self.cpu_at),
                                               ("memory peaked", "memory_percent", self.memory_peak, self.memory_at))
                 if peak is not None]
        if not parts:
            return f"{self.host}: no CPU or memory samples in the window"
        return f"{self.host}: {'; '.join(parts)} over {humanize.count(self.days, 'day')}"


def headroom(df: pd.DataFrame, now: datetime, days: int = 7, threshold: float = 80.0) -> list[Headroom]:
    """Per host (target `host`): the peak of `cpu_percent` and `memory_percent` over the `days` before `now`,
    when it happened; warning when a peak is ≥ `threshold` %."""
    t_now = _utc(now, "headroom")
    rows = df[(df["target"] == "host") & df["metric"].isin(["cpu_percent", "memory_percent"]) & df["value"].notna()]
    rows = rows.assign(ts=pd.to_datetime(rows["ts"], utc=True))
    rows = rows[(rows["ts"] > t_now - days * DAY) & (rows["ts"] <= t_now)].reset_index(drop=True)
    out = []
    for host, g in rows.groupby("host", sort=True):
        peak: dict[str, tuple[float | None, datetime | None]] = {"cpu_percent": (None, None), "memory_percent": (None, None)}
        for name, m in g.groupby("metric"):
            top = m.iloc[int(np.argmax(m["value"].to_numpy()))]
            peak[str(name)] = (float(top["value"]), top["ts"].to_pydatetime())
        span = math.ceil((g["ts"].max() - g["ts"].min()) / DAY) or 1
        out.append(Headroom(str(host), span, *peak["cpu_percent"], *peak["memory_percent"], threshold))
    return out


def _ols(ts: object, values: Values, at: datetime, window: timedelta) -> tuple[float, float] | None:
    """Least squares over the samples in (at − window, at], x in seconds from `at`: (slope per second, value at `at`)."""
    t: pd.Series = pd.Series(pd.to_datetime(ts, utc=True))  # type: ignore[call-overload]
    v, t_at = np.asarray(values, dtype=float), _utc(at, "predict_linear")
    keep = ((t > t_at - pd.Timedelta(window)) & (t <= t_at)).to_numpy() & np.isfinite(v)
    return least_squares(((t[keep] - t_at) / pd.Timedelta(seconds=1)).to_numpy(dtype=float), v[keep])


def predict_linear(samples_ts: object, samples_value: Values, at: datetime,
                   window: timedelta = timedelta(hours=6), horizon: timedelta = timedelta(hours=24)) -> float | None:
    """THE PEER, as Prometheus computes `predict_linear(v[window], horizon)` at `at`: an ordinary least-squares line
    over the raw samples in (at − window, at], its value `horizon` after `at`. None with fewer than 2 samples."""
    fit = _ols(samples_ts, samples_value, at, window)
    return None if fit is None else fit[1] + fit[0] * pd.Timedelta(horizon).total_seconds()


def linear_days_until_full(samples_ts: object, samples_value: Values, at: datetime, capacity: float,
                           window: timedelta = timedelta(hours=6)) -> float | None:
    """THE PEER's days until full (Zabbix `timeleft`): where the same window's least-squares line reaches
    `capacity`. None when it is not rising (or too few samples)."""
    fit = _ols(samples_ts, samples_value, at, window)
    if fit is None or fit[0] <= 0:
        return None
    return max(capacity - fit[1], 0.0) / fit[0] / 86400


def markdown(forecasts: Sequence[Forecast], headroom: Sequence[Headroom]) -> str:
    """The capacity section: a sentence first, a table per host, then the CPU / memory headroom table."""
    filling = sorted((f for f in forecasts if f.status in ("warning", "critical")), key=lambda f: f.days_until_full or 0)
    warn = forecasts[0].warn_days if forecasts else 30
    lines = ["## Capacity", ""]
    if filling:
        dbs = sum(f.target == "database" for f in filling)
        kinds = [humanize.count(n, k) for n, k in ((len(filling) - dbs, "filesystem"), (dbs, "database")) if n]
        first, verb = filling[0], "fills" if len(filling) == 1 else "fill"
        lines.append(f"{' and '.join(kinds)} {verb} within {warn:.0f} days; the soonest: {first.where} {first.eta()}.")
    else:
        lines.append(f"No filesystem or database fills within {warn:.0f} days.")
    short = [f for f in forecasts if f.status == "insufficient data"]
    if short:
        lines.append(f"{humanize.count(len(short), 'forecast')} {'waits' if len(short) == 1 else 'wait'} for data (fewer "
                     f"than {short[0].min_days} complete days): {', '.join(f.where for f in short)}.")
    for host in sorted({f.host for f in forecasts}):
        lines += ["", f"### {host}", "", "| what | used now (peak) | size | growth/day | days until full | status |",
                  "|---|---|---|---|---|---|"]
        for f in (f for f in forecasts if f.host == host):
            used, growth = ("—" if v is None else _amount(f.metric, v) for v in (f.used, f.growth_per_day))
            size = "—" if f.used is None else "no limit" if f.capacity is None else _amount(f.metric, f.capacity)
            lines.append(f"| {f.what} | {used} | {size} | {growth} | {f.until()} | {f.status} |")
    if headroom:
        lines += ["", "### CPU and memory headroom", "",
                  "| host | CPU peak | when | CPU headroom | memory peak | when | memory headroom | status |",
                  "|---|---|---|---|---|---|---|---|"]
        for h in headroom:
            cells = []
            for name, peak, at in (("cpu_percent", h.cpu_peak, h.cpu_at), ("memory_percent", h.memory_peak, h.memory_at)):
                cells += ["—", "—", "—"] if peak is None else [humanize.metric(name, peak), _when(at),
                                                               humanize.metric(name, 100 - peak)]
            lines.append(f"| {h.host} | {' | '.join(cells)} | {h.status} |")
    return "\n".join(lines) + "\n"


def findings(forecasts: Sequence[Forecast], headroom: Sequence[Headroom]) -> list[ReviewFinding]:
    """Filling stores as warning / critical findings, missing data as info, hosts near their CPU / memory limit."""
    out = [ReviewFinding(f.status, f.subject, f.describe(), f.evidence())
           for f in forecasts if f.status in ("warning", "critical")]
    out += [ReviewFinding("info", f.subject, f.describe(), f.evidence()) for f in forecasts if f.status == "insufficient data"]
    out += [ReviewFinding("warning", h.host, h.describe(), f"peak of the daily maxima ≥ {h.threshold:.0f} %")
            for h in headroom if h.status == "warning"]
    return out
