"""Seeded health-sample series with a known truth, for the reviews' tests on the stack (stored in the monitoring
store as the health check stores them)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

from upkeep.monitoring.samples import Sample

GIB = float(1 << 30)
MIB = float(1 << 20)


def leaking_service(env: str, host: str, service: str, end: datetime, days: float = 3.0, restarts: int = 2,
                    leak_mib_per_hour: float = 4.0, seed: int = 1) -> list[Sample]:
    """A sawtooth heap (GC every ~20 min) on a floor rising `leak_mib_per_hour`, restarted `restarts` times (memory
    back to the floor, uptime back to 0); 5-minute samples of memory_rss_bytes and uptime_s."""
    rng = np.random.default_rng(seed)
    step, n = timedelta(minutes=5), int(days * 288)
    start = end - n * step
    cut = n // (restarts + 1)
    out = []
    for i in range(n):
        age = i % cut if i < cut * (restarts + 1) else i - cut * restarts
        hours = age * 5 / 60
        floor = 180 * MIB + leak_mib_per_hour * MIB * hours
        rss = floor + (age % 4) * 6 * MIB + rng.normal(0, 0.5 * MIB)
        at = start + i * step
        out += [Sample(at, env, host, service, "memory_rss_bytes", float(rss)),
                Sample(at, env, host, service, "uptime_s", age * 300.0 + 30)]
    return out


def filling_disk(env: str, host: str, mount: str, end: datetime, days: int = 21, size_gib: float = 500,
                 start_gib: float = 260, gib_per_day: float = 2.0, burst_gib: float = 40) -> tuple[list[Sample], float]:
    """A filesystem growing `gib_per_day` with a nightly burst (+`burst_gib` from 02:00 to 03:30, then freed), sampled
    every 15 minutes as the health check does; and the truth: days from `end` until the daily peak reaches the size."""
    step, n = timedelta(minutes=15), days * 96
    start = end - n * step
    out = []
    for i in range(n):
        at = start + i * step
        used = start_gib + gib_per_day * (i / 96)
        if at.hour == 2 or (at.hour == 3 and at.minute < 30):
            used += burst_gib
        out += [Sample(at, env, host, f"fs:{mount}", "used_bytes", used * GIB),
                Sample(at, env, host, f"fs:{mount}", "size_bytes", size_gib * GIB)]
    peak_now = start_gib + gib_per_day * days + burst_gib
    return out, (size_gib - peak_now) / gib_per_day
