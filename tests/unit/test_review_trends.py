"""Trend statistics, days-until-full forecasts and memory-leak suspicion against seeded series of known truth."""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from upkeep.reviews import capacity, leaks
from upkeep.reviews.stats import mann_kendall, theil_sen

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
GiB, MiB = 2**30, 2**20


# -- stats -------------------------------------------------------------------------------------------
def _exact_s_variance(values: list[float]) -> float:
    """The variance of Kendall's S over every ordering of `values` (no trend: each equally likely)."""
    return statistics.pvariance([mann_kendall(list(p)).s for p in itertools.permutations(values)])


def test_mann_kendall_of_a_straight_rise_by_hand() -> None:
    t = mann_kendall([1, 2, 3, 4, 5])
    # S = all 10 pairs rise; var = n(n-1)(2n+5)/18 = 5·4·15/18 = 16.67 (the exact variance over all 120 orderings)
    assert t.s == 10 and t.variance == pytest.approx(300 / 18) == pytest.approx(_exact_s_variance([1, 2, 3, 4, 5]))
    assert t.z == pytest.approx(9 / math.sqrt(300 / 18))  # continuity corrected: (S − 1)/σ
    assert t.p == pytest.approx(0.02749, abs=1e-5) and t.direction == "increasing"
    assert mann_kendall([5, 4, 3, 2, 1], alpha=0.05).direction == "decreasing"
    assert mann_kendall([5, 4, 3, 2, 1], alpha=0.01).direction == "no trend"  # p = 0.027 is not < 0.01


def test_mann_kendall_ties_correct_the_variance() -> None:
    t = mann_kendall([1, 2, 2, 3])
    # pairs: 1<2, 1<2, 1<3, 2=2, 2<3, 2<3 → S = 5; var = (4·3·13 − 2·1·9)/18 = 138/18
    assert t.s == 5 and t.variance == pytest.approx(138 / 18) == pytest.approx(_exact_s_variance([1, 2, 2, 3]))
    flat = mann_kendall([7, 7, 7, 7])
    assert (flat.s, flat.z, flat.p, flat.direction) == (0, 0.0, 1.0, "no trend")
    with pytest.raises(ValueError, match="at least 3"):
        mann_kendall([1.0, math.nan, 2.0])


def test_theil_sen_ignores_an_outlier_and_gives_sens_band_by_hand() -> None:
    s = theil_sen([0, 1, 2, 3, 4], [0, 1, 2, 3, 40])
    # slopes: six pairs of 1, then (40−y_i)/(4−i) = 10, 13, 19, 37 → median 1; intercept median(y − x) = 0
    assert (s.slope, s.intercept, s.n, s.pairs) == (1.0, 0.0, 5, 10)
    # Sen: σ_S = √(300/18), z(0.95) = 1.645, zσ = 6.72: ranks round((10 ∓ 6.72)/2) → 2nd and 9th (1-based) of the 10
    assert (s.low, s.high) == (1.0, 19.0)
    assert s.at(10) == 10.0


def test_theil_sen_with_ties_in_x_and_too_few_points_for_a_band() -> None:
    s = theil_sen([0, 0, 1, 2], [1, 3, 2, 4])
    # pairs with equal x have no slope: 1, 1.5, −1, 0.5, 2 → median 1; intercept median(1, 3, 1, 2) = 1.5
    assert (s.slope, s.intercept, s.pairs) == (1.0, 1.5, 5)
    assert math.isnan(s.low) and math.isnan(s.high)  # 4 points (one x tied): the 90 % band reaches past the ends
    with pytest.raises(ValueError, match="at least two points at different x"):
        theil_sen([3, 3], [1, 2])


def test_theil_sen_subsamples_long_series_evenly() -> None:
    rng = np.random.default_rng(7)
    x = np.arange(5000, dtype=float)
    s = theil_sen(x, 3 * x + rng.normal(0, 50, x.size))
    assert s.n == 2000 and s.slope == pytest.approx(3, rel=0.01) and s.low < 3 < s.high


# -- capacity ----------------------------------------------------------------------------------------
def _fs(used_now: float, rate: float, size: float, burst: float = 0.0, noise: float = 0.0, days: int = 21,
        metric: str = "used_bytes", size_metric: str | None = "size_bytes", target: str = "fs:/var", host: str = "web-1",
        seed: int = 1) -> pd.DataFrame:
    """5-minute samples ending at NOW: `used_now` + `rate`·days, plus `burst` from 02:00 (reached by 02:10: a dump
    written) to 03:30 (freed), plus gaussian noise; `size_metric` constant."""
    ts = pd.date_range(NOW - timedelta(days=days), NOW, freq="5min", tz="UTC")
    t = ((ts - pd.Timestamp(NOW)) / pd.Timedelta(days=1)).to_numpy()
    hour = (ts.hour + ts.minute / 60).to_numpy()
    extra = burst * np.clip((hour - 2) * 6, 0, 1) * (hour < 3.5)
    used = used_now + rate * t + extra + np.random.default_rng(seed).normal(0, noise, t.size)
    out = [pd.DataFrame({"ts": ts, "host": host, "target": target, "metric": metric, "value": used})]
    if size_metric:
        out.append(pd.DataFrame({"ts": ts, "host": host, "target": target, "metric": size_metric, "value": size}))
    return pd.concat(out, ignore_index=True)


def _one(df: pd.DataFrame, metric: str = "used_bytes", size: str | None = "size_bytes",
         limit: dict[str, float] | None = None) -> capacity.Forecast:
    (f,) = capacity.forecast(capacity.daily_maxima(df, metric, size), NOW, capacity=limit)
    return f


def test_daily_maxima_by_hand() -> None:
    rows = [("2026-12-01T01:00Z", "used_bytes", 5), ("2026-12-01T02:00Z", "used_bytes", 9),
            ("2026-12-01T23:00Z", "used_bytes", 7), ("2026-12-01T00:10Z", "size_bytes", 100),
            ("2026-12-01T22:00Z", "size_bytes", 120), ("2026-12-02T08:00Z", "used_bytes", 8)]
    df = pd.DataFrame([{"ts": pd.Timestamp(t), "host": "h", "target": "fs:/", "metric": m, "value": v} for t, m, v in rows])
    daily = capacity.daily_maxima(df, "used_bytes", "size_bytes")
    assert daily[["used", "samples"]].values.tolist() == [[9, 3], [8, 1]]
    assert daily["at"].iloc[0] == pd.Timestamp("2026-12-01T02:00Z") and daily["size"].iloc[0] == 120
    assert math.isnan(daily["size"].iloc[1])  # no size sample that day


def test_a_disk_with_a_nightly_burst_fills_when_its_peak_no_longer_fits() -> None:
    # 500 GiB, 360 GiB used, 2 GiB/day, +40 GiB each night: the burst stops fitting in (500 − 360 − 40)/2 = 50 days
    df = _fs(360 * GiB, 2 * GiB, 500 * GiB, burst=40 * GiB, noise=0.3 * GiB)
    f = _one(df)
    assert f.status == "ok" and f.days_until_full == pytest.approx(50, rel=0.10)
    assert f.soonest is not None and f.latest is not None and f.days_until_full is not None
    assert f.soonest <= f.days_until_full <= f.latest
    assert f.growth_per_day == pytest.approx(2 * GiB, rel=0.05)
    assert f.describe().startswith("/var on web-1 fills in 50 days (") and "GB/day" in f.describe()
    # the peer, at 03:00 on the last night: a line through 6 h of raw samples takes the burst for growth
    used = df[df["metric"] == "used_bytes"]
    at = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    predicted = capacity.predict_linear(used["ts"], used["value"], at)
    assert predicted is not None and predicted > 500 * GiB, "predict_linear(avail[6h], 24h) < 0: 'full within 24 h'"
    peer_days = capacity.linear_days_until_full(used["ts"], used["value"], at, 500 * GiB)
    assert peer_days is not None and peer_days < 1


def test_the_forecast_at_the_peers_brief_disk_and_inodes() -> None:
    # 500 GiB at 60 %, 2 GiB/day, +40 GiB nightly: (500 − 300 − 40)/2 = 80 days
    assert _one(_fs(300 * GiB, 2 * GiB, 500 * GiB, burst=40 * GiB, noise=0.3 * GiB)).days_until_full == pytest.approx(
        80, rel=0.10)
    # inodes: 32 M, 20 M used, +100 k/day, +2 M temp files nightly: (32 − 20 − 2) M / 100 k = 100 days
    ino = _fs(20e6, 1e5, 32e6, burst=2e6, noise=2e4, metric="inodes_used", size_metric="inodes_size")
    f = _one(ino, "inodes_used", "inodes_size")
    assert f.days_until_full == pytest.approx(100, rel=0.10) and f.what == "/var inodes"
    assert "inodes/day" in f.describe()


def test_a_stable_noisy_disk_with_a_burst_is_not_filling() -> None:
    f = _one(_fs(120 * GiB, 0.0, 200 * GiB, burst=40 * GiB, noise=1 * GiB, seed=3))
    assert f.status == "not growing" or (f.status == "ok" and f.days_until_full is None)
    assert f.days_until_full is None and "fills in" not in f.describe()


def test_too_few_days_and_databases_without_and_with_a_limit() -> None:
    short = _one(_fs(300 * GiB, 2 * GiB, 500 * GiB, days=3))
    assert short.status == "insufficient data" and short.days_of_data == 3
    assert "3 complete days of data, the forecast needs 7" in short.describe()
    db = _fs(5e9, 1e8, 0, noise=1e6, metric="db_size_bytes", size_metric=None, target="database", host="events")
    free = _one(db, "db_size_bytes", None)
    assert free.status == "ok" and free.days_until_full is None and free.capacity is None
    assert free.size_in_90_days == pytest.approx(5e9 + 90 * 1e8, rel=0.01)
    assert free.describe().startswith("database events grows 100 MB/day: 5.0 GB now, 14 GB in 90 days")
    limited = _one(db, "db_size_bytes", None, limit={"events": 6e9})
    assert limited.status == "warning" and limited.days_until_full == pytest.approx(10, rel=0.10)  # within 30, not 7


def _cpu(host: str, base: float, spikes: dict[datetime, float]) -> pd.DataFrame:
    ts = pd.date_range(NOW - timedelta(days=9), NOW, freq="10min", tz="UTC")
    rows = [pd.DataFrame({"ts": ts, "host": host, "target": "host", "metric": m, "value": base})
            for m in ("cpu_percent", "memory_percent")]
    rows.append(pd.DataFrame([{"ts": pd.Timestamp(t), "host": host, "target": "host", "metric": "cpu_percent", "value": v}
                              for t, v in spikes.items()]))
    return pd.concat(rows, ignore_index=True)


def test_headroom_is_the_weekly_peak_and_when() -> None:
    spike = datetime(2026, 12, 1, 14, 5, tzinfo=UTC)
    df = pd.concat([_cpu("web-1", 40, {spike: 93, NOW - timedelta(days=8): 99}), _cpu("web-2", 30, {})])
    web1, web2 = capacity.headroom(df, NOW)
    assert (web1.cpu_peak, web1.cpu_at, web1.memory_peak, web1.status) == (93, spike, 40, "warning")  # 99: 8 days ago
    assert web1.describe() == ("web-1: CPU peaked at 93 % (Tue 01 Dec 14:05 UTC, 7 % headroom); memory peaked at 40 % "
                               "(Sun 29 Nov 12:10 UTC, 60 % headroom) over 7 days")
    assert web2.status == "ok"


def test_the_capacity_section_and_findings_read_as_sentences_and_tables() -> None:
    df = pd.concat([_fs(360 * GiB, 2 * GiB, 500 * GiB, burst=40 * GiB, noise=0.3 * GiB),
                    _fs(90 * GiB, 2 * GiB, 100 * GiB, noise=0.3 * GiB, target="fs:/data", host="db-1")])
    fs = capacity.forecast(capacity.daily_maxima(df, "used_bytes", "size_bytes"), NOW)
    hr = capacity.headroom(_cpu("web-1", 85, {}), NOW)
    text = capacity.markdown(fs, hr)
    # 100 GiB = 107 GB; the peak ≈ 90 GiB + the noise's daily maximum ≈ 97 GB; (100 − 90.9) GiB at 2 GiB/day ≈ 4.5 days
    assert text.startswith("## Capacity\n\n1 filesystem fills within 30 days; the soonest: /data on db-1 in 4.7 days "
                           "(4.6–4.7 d).\n")
    assert "### db-1" in text and "| /data | 97 GB | 107 GB | 2.2 GB | 4.7 (4.6–4.7 d) | critical |" in text
    assert "| web-1 | 85 % |" in text and "Forecast(" not in text and "Headroom(" not in text
    found = capacity.findings(fs, hr)
    assert [(f.level, f.subject) for f in found] == [("critical", "db-1 /data"), ("warning", "web-1")]
    assert "Theil–Sen over 21 daily maxima" in found[0].evidence


def test_predict_linear_is_least_squares_over_the_left_open_window() -> None:
    ts = [NOW - timedelta(hours=h) for h in (7, 6, 4, 2, 0)]
    values = [1e9, 1e9, 100.0, 200.0, 300.0]  # the samples at −7 h and exactly −6 h are outside (at − 6 h, at]
    assert capacity.predict_linear(ts, values, NOW) == pytest.approx(300 + 50 * 24)
    assert capacity.linear_days_until_full(ts, values, NOW, 1500) == pytest.approx(1200 / 50 / 24)
    assert capacity.predict_linear(ts[:2], values[:2], NOW) is None
    with pytest.raises(ValueError, match="has no time zone; pass an aware UTC time"):
        capacity.predict_linear(ts, values, NOW.replace(tzinfo=None))


# -- leaks -------------------------------------------------------------------------------------------
def _service(hours: float, restarts: list[float], floor: Callable[[np.ndarray], np.ndarray], seed: int,
             noise: float = 1.0, uptime: bool = True) -> pd.DataFrame:
    """Minute samples of a service: RSS = floor(hours since its start) + a GC sawtooth of 40 MiB every 15 min +
    gaussian noise (MiB); uptime_s resets at each restart (hours from the first sample)."""
    ts = pd.date_range(NOW - timedelta(hours=hours), NOW, freq="1min", tz="UTC")
    h = ((ts - ts[0]) / pd.Timedelta(hours=1)).to_numpy()
    starts = np.array([0.0, *restarts])
    up = (h - starts[np.searchsorted(starts, h, side="right") - 1]) * 3600
    rss = (floor(up / 3600) + 40 * ((np.round(up / 60) % 15) / 15) + np.random.default_rng(seed).normal(0, noise, h.size))
    out = [pd.DataFrame({"ts": ts, "host": "web-1", "target": "api", "metric": "memory_rss_bytes", "value": rss * MiB})]
    if uptime:
        out.append(pd.DataFrame({"ts": ts, "host": "web-1", "target": "api", "metric": "uptime_s", "value": up + 5}))
    return pd.concat(out, ignore_index=True)


def test_a_steady_leak_across_two_restarts_is_named() -> None:
    (r,) = leaks.leak_suspicions(_service(72, [24, 48], lambda t: 150 + 4 * t, seed=1))
    assert r.verdict == "leak suspected" and len(r.restarts) == 2 and len(r.segments) == 3
    assert all(s.rises and s.slope_mib_per_h == pytest.approx(4, rel=0.1) for s in r.segments)
    assert r.describe() == ("api on web-1: memory floor rises 4.0 MiB/h in each of 3 runs between restarts (p < 0.001), "
                            "2 restarts (Fri 04 Dec 12:00, Sat 05 Dec 12:00 UTC)")
    (f,) = leaks.findings([r])
    assert f.level == "warning" and "Theil–Sen +4.0, +3.9, +4.0 MiB/h" in f.evidence
    text = leaks.markdown([r])
    assert text.startswith("## Memory leaks\n\n1 service leaks memory")
    assert "| api | web-1 | leak suspected | 3 of 3 | 2 |" in text


@pytest.mark.parametrize("tau", [0.5, 2.0, 4.0])
def test_a_warm_up_that_plateaus_after_each_restart_is_not_named(tau: float) -> None:
    (r,) = leaks.leak_suspicions(_service(72, [24, 48], lambda t: 150 + 200 * (1 - np.exp(-t / tau)), seed=2))
    assert r.verdict == "no leak" and len(r.restarts) == 2, r.describe()


def test_a_stable_noisy_service_is_not_named_and_a_short_one_is_insufficient() -> None:
    (stable,) = leaks.leak_suspicions(_service(72, [], lambda t: 300 + 0 * t, seed=3, noise=5))
    assert stable.verdict == "no leak" and "no leak" in stable.describe()
    (short,) = leaks.leak_suspicions(_service(3, [], lambda t: 150 + 4 * t, seed=1))
    assert short.verdict == "insufficient data" and "the test needs 6" in short.describe()
    assert [f.level for f in leaks.findings([stable, short])] == ["info"]
    # one run rising for 30 h is not yet a leak (a run of ≥ 48 h or ≥ 2 runs are)
    (one,) = leaks.leak_suspicions(_service(30, [], lambda t: 150 + 4 * t, seed=4))
    assert one.verdict == "insufficient data" and "needs ≥ 2 such runs" in one.describe()
    (long,) = leaks.leak_suspicions(_service(60, [], lambda t: 150 + 4 * t, seed=4))
    assert long.verdict == "leak suspected" and "in one run" in long.describe()


def test_a_restart_without_uptime_is_a_halving_after_a_gap() -> None:
    df = _service(50, [25], lambda t: 50 + 4 * t, seed=5, uptime=False)  # 150 MiB → 50 MiB at the restart
    ts = df["ts"]
    gapped = df[(ts < NOW - timedelta(hours=25, minutes=15)) | (ts >= NOW - timedelta(hours=25))]  # 15 min silent
    (r,) = leaks.leak_suspicions(gapped)
    assert len(r.restarts) == 1 and r.verdict == "leak suspected"
    (none,) = leaks.leak_suspicions(df)  # the same drop without a gap is not a restart: one run of 45 h, not named
    assert none.restarts == () and none.verdict == "insufficient data"


def test_forecast_reads_maxima_of_several_metrics_concatenated_with_an_empty_one() -> None:
    """The capacity review concatenates bytes, inodes and database maxima; one of them empty (a server without inode
    tables, no database samples yet) must not turn the times into objects."""
    import pandas as pd

    from tests.series import filling_disk
    from upkeep.monitoring.samples import frame
    from upkeep.reviews.capacity import daily_maxima, forecast

    end = datetime(2026, 12, 6, 12, tzinfo=UTC)
    samples, truth = filling_disk("e", "h", "/var", end)
    df = frame(samples)
    daily = pd.concat([daily_maxima(df, "used_bytes", "size_bytes"), daily_maxima(df, "db_size_bytes")],
                      ignore_index=True)
    (f,) = forecast(daily, end)
    assert f.days_until_full is not None and abs(f.days_until_full - truth) <= 0.1 * truth
