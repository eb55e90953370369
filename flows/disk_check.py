"""Check disk space on every host of an environment (daily tasks: check_disk_space)."""

from __future__ import annotations

from prefect import flow

from flows._routine import Routine
from tasks.hosts import check_disk_space
from upkeep.routines import DISK_CHECK


@flow(name=DISK_CHECK.flow, log_prints=False)
def disk_check(environment: str = "development", config: str | None = None, hosts: list[str] | None = None) -> dict[str, bool]:
    """Free space of each host's root filesystem against `thresholds.disk_free_min_percent`."""
    with Routine(DISK_CHECK, environment, config) as r:
        targets = r.select_hosts(hosts)
        minimum = r.env.thresholds.disk_free_min_percent
        with r.stage("execute"):
            result = r.fan_out(check_disk_space, targets, min_free_percent=minimum)
        with r.stage("post"):
            verdicts = {h: all(v.ok for v in disk) for h, disk in result.returned().items()}
            low = sorted(h for h, ok in verdicts.items() if not ok)
            if low:
                r.notify(f"free disk below {minimum:g}% on {', '.join(low)}", "warning")
        return verdicts
