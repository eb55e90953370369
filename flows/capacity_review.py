"""The monthly capacity review (the Event Manager guide's schedule: capacity_review): when each disk, inode table and
database fills, and how much CPU and memory headroom the weekly peak leaves. Read-only.

execute: the stored samples: every filesystem's bytes and inodes and every database's size (each quarter hour, by the
health check) over `reviews.capacity.history` · CPU and memory over the last week
post: days until full from a robust slope (Theil–Sen) over ≥ `min_days` daily maxima, with a band — not a 6-hour linear
fit, so a nightly backup or rotation burst is not a trend · headroom at the weekly peak · findings, chart, tables
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from prefect import flow

from flows._review import publish
from flows._routine import Routine
from tasks.monitoring import stored_samples
from upkeep.reviews import capacity, charts
from upkeep.routines import CAPACITY_REVIEW


@flow(name=CAPACITY_REVIEW.flow)
def capacity_review(environment: str = "development", config: str | None = None) -> dict[str, Any]:
    with Routine(CAPACITY_REVIEW, environment, config) as r:
        cfg = r.env.reviews.capacity
        with r.stage("execute"):
            stored = stored_samples(cfg.history.total_seconds() / 86400,
                                    ["used_bytes", "size_bytes", "inodes_used", "inodes_size", "db_size_bytes"])
            peaks = stored_samples(7, ["cpu_percent", "memory_percent"])
        with r.stage("post"):
            now = datetime.now(UTC)
            daily = pd.concat([capacity.daily_maxima(stored, "used_bytes", "size_bytes"),
                               capacity.daily_maxima(stored, "inodes_used", "inodes_size"),
                               capacity.daily_maxima(stored, "db_size_bytes")], ignore_index=True)
            forecasts = capacity.forecast(daily, now, cfg.min_days, cfg.database_limit,
                                          lookback_days=int(cfg.history.total_seconds() // 86400),
                                          warn_days=cfg.warn_days, critical_days=cfg.critical_days)
            room = capacity.headroom(peaks, now, 7, cfg.peak_percent)
            text = capacity.markdown(forecasts, room)
            publish(r, text, capacity.findings(forecasts, room), summary=text.split("\n\n", 2)[1].strip(),
                    tables={"forecasts": [f.row() for f in forecasts], "headroom": [h.row() for h in room]},
                    charts={"filesystems": charts.filesystems(daily, forecasts)})
        return {"forecasts": len(forecasts), "soonest_days": min((f.days_until_full for f in forecasts
                                                                  if f.days_until_full is not None), default=None)}
