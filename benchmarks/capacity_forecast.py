"""Days until full: Upkeep's forecast (Theil–Sen over daily maxima) beside the peer, Prometheus' `predict_linear`
(least squares over 6 h of raw samples, 24 h ahead; Zabbix' `timeleft` is the same line), on seeded disks of known
truth.

    PYTHONPATH=. .venv/bin/python -m benchmarks.capacity_forecast [--history-days 28] [--eval-days 7] [--step-minutes 5]
                                                                  [--seed 1] [--strict]

Four disks, each a noise-free usage curve u(t) plus seeded gaussian noise, sampled every `--step-minutes` for
`--history-days` (the health check's `used_bytes` / `size_bytes` samples):

* `web-1 /var`     500 GiB, +2 GiB/day, a backup dump of +40 GiB each night from 02:00 (written by 02:10) to 03:30;
* `db-1 /data`     1000 GiB, +5 GiB/day, no burst;
* `web-2 /srv`     200 GiB, stable at 120 GiB, a +60 GiB nightly burst (never fills: truth = never);
* `web-1 /var/log` 100 GiB, a log volume: +20 GiB through each day, rotated at 00:00, archives +0.3 GiB/day.

"Full" is when u(t) first reaches the size — a burst that no longer fits is a full disk —, found on a 1-minute grid
up to two years ahead: that is the truth at each evaluation time. Every hour of the last `--eval-days` days both
methods answer from the samples up to then: Upkeep `forecast(daily_maxima(samples ≤ t), now=t)`, the peer
`linear_days_until_full` / `predict_linear` over (t − 6 h, t]. Printed per disk and overall: median and max
|error| of days until full against the truth (%; over the evaluations where the method gave a date), how often it
gave none, and false "full within 24 h" alarms (the peer: predicted usage 24 h ahead ≥ size, i.e.
`predict_linear(avail[6h], 24*3600) < 0`; Upkeep: days until full ≤ 1) while the truth is more than a day away.
Targets: Upkeep's error ≤ 10 % on every filling disk, and zero false alarms where the peer raises some. No servers;
writes benchmarks/results/capacity_forecast-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from benchmarks._report import loadavg, write_results
from upkeep.reviews.capacity import daily_maxima, forecast, linear_days_until_full, predict_linear

GiB = 2**30
END = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)  # the history ends here (a Sunday noon)
HORIZON_DAYS = 730
TARGET_ERROR = 10.0
WINDOW = timedelta(hours=6)


def _hour(t: np.ndarray) -> np.ndarray:
    return (t % 1.0) * 24


def burst(size: float, start: float = 2.0, rise: float = 1 / 6, end: float = 3.5) -> Callable[[np.ndarray], np.ndarray]:
    """+size GiB from `start` (reached after `rise` hours) until `end` (freed), every night."""
    return lambda t: size * np.clip((_hour(t) - start) / rise, 0, 1) * (_hour(t) < end)


@dataclass(frozen=True)
class Disk:
    name: str  # "web-1 /var"
    size: float  # GiB
    base: float  # GiB used at the end of the history, without the day's pattern
    rate: float  # GiB/day
    pattern: Callable[[np.ndarray], np.ndarray]  # GiB on top of the trend, by time (days)
    noise: float  # GiB, sd

    def used(self, days_from_end: np.ndarray) -> np.ndarray:
        return np.asarray(self.base + self.rate * days_from_end + self.pattern(days_from_end))


DISKS = (
    Disk("web-1 /var", 500, 360, 2.0, burst(40), 0.3),
    Disk("db-1 /data", 1000, 600, 5.0, lambda t: 0 * t, 0.5),
    Disk("web-2 /srv", 200, 120, 0.0, burst(60), 0.5),
    Disk("web-1 /var/log", 100, 68, 0.3, lambda t: 20 * (t % 1.0), 0.1),
)


@dataclass
class Tally:
    errors: list[float] = field(default_factory=list)  # |est − truth| / truth, %
    no_estimate: int = 0
    false_alarms: int = 0
    finite_on_stable: int = 0  # a date given where the truth is never

    def row(self) -> dict[str, float | int | None]:
        e = self.errors
        return {"median_error_pct": statistics.median(e) if e else None, "max_error_pct": max(e) if e else None,
                "estimates": len(e), "no_estimate": self.no_estimate, "false_alarms": self.false_alarms,
                "finite_on_stable": self.finite_on_stable}


def samples(disk: Disk, history_days: int, step_minutes: int, seed: int) -> pd.DataFrame:
    ts = pd.date_range(END - timedelta(days=history_days), END, freq=f"{step_minutes}min", tz="UTC")
    t = ((ts - pd.Timestamp(END)) / pd.Timedelta(days=1)).to_numpy()
    used = disk.used(t) + np.random.default_rng(seed).normal(0, disk.noise, t.size)
    host, mount = disk.name.split(" ", 1)
    frame = pd.DataFrame({"ts": ts, "host": host, "target": f"fs:{mount}", "metric": "used_bytes", "value": used * GiB})
    return pd.concat([frame, frame.assign(metric="size_bytes", value=disk.size * GiB)], ignore_index=True)


def truth_days(disk: Disk, eval_days: np.ndarray) -> np.ndarray:
    """Days from each evaluation time (days from END, ≤ 0) until u first reaches the size (1-minute grid); inf: never."""
    grid = np.arange(eval_days.min(), HORIZON_DAYS, 1 / 1440)
    full = grid[disk.used(grid) >= disk.size]
    if full.size == 0:
        return np.full(eval_days.shape, np.inf)
    nxt = np.searchsorted(full, eval_days)
    return np.where(nxt < full.size, full[np.minimum(nxt, full.size - 1)] - eval_days, np.inf)


def evaluate(disk: Disk, df: pd.DataFrame, at: Sequence[datetime], truth: np.ndarray) -> dict[str, Tally]:
    used = df[df["metric"] == "used_bytes"]
    ts = used["ts"].dt.tz_convert(None).to_numpy().astype("datetime64[ns]")
    tallies = {"upkeep": Tally(), "predict_linear": Tally()}
    cap = disk.size * GiB
    for when, true in zip(at, truth, strict=True):
        upto = np.datetime64(when.replace(tzinfo=None), "ns")
        mine = df[df["ts"] <= when]
        (f,) = forecast(daily_maxima(mine, "used_bytes", "size_bytes"), when, horizon_days=HORIZON_DAYS)
        lo = np.searchsorted(ts, upto - np.timedelta64(7, "h"))
        hi = np.searchsorted(ts, upto, side="right")
        win_ts, win_v = used["ts"].iloc[lo:hi], used["value"].iloc[lo:hi]
        peer_days = linear_days_until_full(win_ts, win_v, when, cap, WINDOW)
        predicted = predict_linear(win_ts, win_v, when, WINDOW, timedelta(hours=24))
        answers = {"upkeep": (f.days_until_full, f.days_until_full is not None and f.days_until_full <= 1),
                   "predict_linear": (peer_days, predicted is not None and predicted >= cap)}
        for method, (days, alarm) in answers.items():
            tally = tallies[method]
            tally.false_alarms += int(alarm and true > 1)
            if days is None:
                tally.no_estimate += 1
            elif np.isfinite(true):
                tally.errors.append(abs(days - true) / true * 100)
            else:
                tally.finite_on_stable += 1
    return tallies


def fmt(v: float | int | None, pct: bool = False) -> str:
    return "—" if v is None else f"{v:.1f} %" if pct else f"{v}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--history-days", type=int, default=28, help="days of samples per disk (default 28)")
    p.add_argument("--eval-days", type=int, default=7, help="evaluate every hour over the last N days (default 7)")
    p.add_argument("--step-minutes", type=int, default=5, help="minutes between samples (default 5)")
    p.add_argument("--seed", type=int, default=1, help="noise seed (default 1)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target check fails")
    args = p.parse_args(argv)
    if not 0 < args.eval_days < args.history_days - 7 or args.step_minutes < 1:
        p.error("--eval-days must be > 0 and leave ≥ 7 days of history before it; --step-minutes ≥ 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = loadavg()
    at = [END - timedelta(hours=h) for h in range(args.eval_days * 24 - 1, -1, -1)]
    eval_days = np.array([(a - END) / timedelta(days=1) for a in at])
    print(f"capacity_forecast: {len(DISKS)} disks, {args.history_days} days of {args.step_minutes}-min samples, evaluated "
          f"every hour over the last {args.eval_days} days ({len(at)} times per disk), seed {args.seed}")
    print(f"  load average before: {load_before}", flush=True)
    results: dict[str, dict[str, Tally]] = {}
    truths: dict[str, tuple[float, float]] = {}
    for i, disk in enumerate(DISKS):
        truth = truth_days(disk, eval_days)
        truths[disk.name] = (float(truth.min()), float(truth.max()))
        results[disk.name] = evaluate(disk, samples(disk, args.history_days, args.step_minutes, args.seed + i), at, truth)

    print(f"\n{'disk':<16} {'truth (days)':>13} {'method':<15} {'median |err|':>12} {'max |err|':>10} {'no date':>8} "
          f"{'date, never full':>16} {'false 24 h alarms':>17}")
    total = {m: Tally() for m in ("upkeep", "predict_linear")}
    for disk in DISKS:
        lo, hi = truths[disk.name]
        span = "never" if not np.isfinite(lo) else f"{lo:.0f}–{hi:.0f}"
        for method, tally in results[disk.name].items():
            r = tally.row()
            print(f"{disk.name:<16} {span:>13} {method:<15} {fmt(r['median_error_pct'], True):>12} "
                  f"{fmt(r['max_error_pct'], True):>10} {r['no_estimate']:>8} {r['finite_on_stable']:>16} "
                  f"{r['false_alarms']:>17}")
            t = total[method]
            t.errors += tally.errors
            t.no_estimate += tally.no_estimate
            t.false_alarms += tally.false_alarms
            t.finite_on_stable += tally.finite_on_stable
    mine, peer = total["upkeep"].row(), total["predict_linear"].row()
    for name, r in (("upkeep", mine), ("predict_linear", peer)):
        print(f"{'all disks':<16} {'':>13} {name:<15} {fmt(r['median_error_pct'], True):>12} "
              f"{fmt(r['max_error_pct'], True):>10} {r['no_estimate']:>8} {r['finite_on_stable']:>16} {r['false_alarms']:>17}")
    ratio = (peer["median_error_pct"] or 0) / (mine["median_error_pct"] or float("nan"))
    print(f"\nratio predict_linear/upkeep: median |error| {ratio:.1f}x; false 24 h alarms {peer['false_alarms']} vs "
          f"{mine['false_alarms']}")
    print("(|error|: |days until full − truth| / truth over the evaluations where the method gave a date; no date: it "
          "said not growing / not rising; date, never full: a date for a disk that never fills)")

    worst = max((results[d.name]["upkeep"].row()["max_error_pct"] or 0.0) for d in DISKS)
    never_missing = all(results[d.name]["upkeep"].no_estimate == 0 for d in DISKS if np.isfinite(truths[d.name][1]))
    checks = [
        {"check": f"upkeep: max |error| ≤ {TARGET_ERROR:g} % on every filling disk, a date at every evaluation",
         "measured": round(worst, 2), "pass": worst <= TARGET_ERROR and never_missing},
        {"check": "upkeep: zero false 'full within 24 h' alarms where the linear fit raises some",
         "measured": {"upkeep": mine["false_alarms"], "predict_linear": peer["false_alarms"]},
         "pass": mine["false_alarms"] == 0 and (peer["false_alarms"] or 0) > 0},
    ]
    print("\ntargets:")
    for c in checks:
        print(f"  {'PASS' if c['pass'] else 'FAIL'}  {c['check']}: {c['measured']}")
    seconds = time.perf_counter() - started
    print(f"took {seconds:.1f} s; load average after: {loadavg()}")
    path = write_results("capacity_forecast", {
        "history_days": args.history_days, "eval_days": args.eval_days, "step_minutes": args.step_minutes,
        "seed": args.seed, "evaluations_per_disk": len(at),
        "disks": [{"name": d.name, "size_gib": d.size, "base_gib": d.base, "rate_gib_per_day": d.rate, "noise_gib": d.noise,
                   "truth_days": truths[d.name], **{m: t.row() for m, t in results[d.name].items()}} for d in DISKS],
        "total": {"upkeep": mine, "predict_linear": peer}, "ratio_median_error": ratio, "checks": checks,
        "seconds": seconds, "python": platform.python_version(), "pandas": pd.__version__, "numpy": np.__version__,
    })
    print(f"results: {path}")
    return 1 if args.strict and not all(c["pass"] for c in checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
