"""Robust trend statistics for the reviews (pure, numpy): the Theil–Sen slope with Sen's (1968) confidence band,
and the Mann–Kendall trend test. Neither is fooled by a few outliers, and neither assumes normal residuals.

Both are O(n²) in pairs of points. Above `MAX_POINTS` points they run on `MAX_POINTS` points picked evenly by
position (after sorting by x): deterministic, same span, and the band then rests on that many points (a little
wider than the full series would give, never narrower).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import numpy.typing as npt

from upkeep.errors import ReviewInputError

MAX_POINTS = 2000
Direction = Literal["increasing", "decreasing", "no trend"]
Floats = Sequence[float] | npt.NDArray[np.float64] | npt.NDArray[np.int64]


@dataclass(frozen=True)
class Slope:
    """A Theil–Sen line: y ≈ intercept + slope·x, and the slope's band at `confidence` (Sen 1968)."""

    slope: float
    intercept: float
    low: float  # the band's lower slope (nan when too few pairs to tell)
    high: float
    confidence: float
    n: int  # points used
    pairs: int  # pairwise slopes the median was taken over

    def at(self, x: float) -> float:
        """The fitted value at x."""
        return self.intercept + self.slope * x

    def describe(self, unit: str = "per unit of x") -> str:
        """'slope 2.01 per day (90 % band 1.95–2.08) over 21 points'."""
        return (f"slope {self.slope:.3g} {unit} ({self.confidence * 100:.0f} % band {self.low:.3g}–{self.high:.3g}) "
                f"over {self.n} points")


@dataclass(frozen=True)
class Trend:
    """The Mann–Kendall test of a series in order: S, its ties-corrected variance, z and the two-sided p-value."""

    s: int
    variance: float
    z: float
    p: float
    n: int
    alpha: float
    direction: Direction

    def describe(self) -> str:
        """'increasing (Mann–Kendall S = 150, z = 5.1, p < 0.001, 20 points)'."""
        return f"{self.direction} (Mann–Kendall S = {self.s}, z = {self.z:.2f}, {p_value(self.p)}, {self.n} points)"


def p_value(p: float) -> str:
    """'p < 0.001', 'p = 0.004', 'p = 0.31'."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2g}"


def _evenly(n: int) -> npt.NDArray[np.int64]:
    """Indices of at most MAX_POINTS points spread evenly over n (all of them when n is small)."""
    if n <= MAX_POINTS:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, MAX_POINTS).round().astype(np.int64))


def _tie_term(values: npt.NDArray[np.float64]) -> float:
    """Σ t(t−1)(2t+5) over groups of equal values: what ties take off the variance of S."""
    _, counts = np.unique(values, return_counts=True)
    t = counts[counts > 1].astype(np.float64)
    return float(np.sum(t * (t - 1) * (2 * t + 5)))


def _s_variance(n: int, tie_terms: float) -> float:
    """The variance of Kendall's S under no trend, ties-corrected: (n(n−1)(2n+5) − Σ ties) / 18."""
    return (n * (n - 1) * (2 * n + 5) - tie_terms) / 18.0


def _clean(x: Floats, y: Floats) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ReviewInputError(f"theil_sen: x and y must be 1-D of one length, got shapes {xa.shape} and {ya.shape}; "
                         "pass one x per y")
    keep = np.isfinite(xa) & np.isfinite(ya)
    order = np.argsort(xa[keep], kind="stable")
    xa, ya = xa[keep][order], ya[keep][order]
    pick = _evenly(len(xa))
    return xa[pick], ya[pick]


def theil_sen(x: Floats, y: Floats, confidence: float = 0.90) -> Slope:
    """The median of the pairwise slopes, the median of y − slope·x as intercept, and Sen's band: the ranks
    (N ∓ z·σ_S)/2 of the N sorted pairwise slopes, σ_S from Kendall's S corrected for ties in x and y (as
    scipy.stats.theilslopes). Non-finite points are dropped; pairs with equal x have no slope."""
    if not 0 < confidence < 1:
        raise ReviewInputError(f"theil_sen: confidence {confidence!r} is not between 0 and 1; pass e.g. 0.90")
    xa, ya = _clean(x, y)
    n = len(xa)
    iu = np.triu_indices(n, 1)
    dx = np.subtract.outer(xa, xa).T[iu]  # x_j − x_i for i < j
    dy = np.subtract.outer(ya, ya).T[iu]
    ok = dx != 0
    slopes = np.sort(dy[ok] / dx[ok])
    if slopes.size == 0:
        raise ReviewInputError(f"theil_sen: {n} usable point(s) with {len(np.unique(xa))} distinct x give no slope; "
                         "pass at least two points at different x")
    slope = float(np.median(slopes))
    intercept = float(np.median(ya - slope * xa))
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    sigma = math.sqrt(max(_s_variance(n, _tie_term(xa) + _tie_term(ya)), 0.0))
    big_n = slopes.size
    lo_rank = int(round((big_n - z * sigma) / 2)) - 1  # 0-based, as scipy
    hi_rank = int(round((big_n + z * sigma) / 2))
    low = float(slopes[lo_rank]) if lo_rank >= 0 else math.nan
    high = float(slopes[hi_rank]) if hi_rank < big_n else math.nan
    return Slope(slope, intercept, low, high, confidence, n, int(big_n))


def mann_kendall(y: Floats, alpha: float = 0.05) -> Trend:
    """Kendall's S = Σ sign(y_j − y_i) over i < j, its ties-corrected variance, z with the continuity correction
    ((S ∓ 1)/σ) and the two-sided p-value from the normal CDF. Direction only when p < alpha."""
    ya = np.asarray(y, dtype=np.float64)
    ya = ya[np.isfinite(ya)]
    ya = ya[_evenly(len(ya))]
    n = len(ya)
    if n < 3:
        raise ReviewInputError(f"mann_kendall: {n} finite value(s); the test needs at least 3 (better 10); pass a longer series")
    iu = np.triu_indices(n, 1)
    s = int(np.sign(np.subtract.outer(ya, ya).T[iu]).sum())
    variance = _s_variance(n, _tie_term(ya))
    if variance <= 0:
        z = 0.0
    else:
        z = (s - 1) / math.sqrt(variance) if s > 0 else (s + 1) / math.sqrt(variance) if s < 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2))  # = 2·(1 − Φ(|z|)), Φ(z) = (1 + erf(z/√2))/2, without the cancellation
    direction: Direction = "no trend" if p >= alpha or s == 0 else "increasing" if s > 0 else "decreasing"
    return Trend(s, variance, z, p, n, alpha, direction)


def least_squares(x: Floats, y: Floats) -> tuple[float, float] | None:
    """The ordinary least-squares line through (x, y): (slope, intercept); None without two distinct x."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.size < 2 or float(np.ptp(xa)) == 0:
        return None
    dx = xa - xa.mean()
    slope = float(np.sum(dx * (ya - ya.mean())) / np.sum(dx * dx))
    return slope, float(ya.mean() - slope * xa.mean())
