"""Every deployment — routine × environment — with its schedule, derived from the windows.

Disruptive routines start when their environment's window opens (production Sunday 02:00 UTC,
staging daily 22:00 UTC); development has no window ("anytime"), so they run on their cadence.
Non-disruptive routines run on their own cadence everywhere. Routines that a composite
(daily/weekly/monthly/quarterly maintenance) already runs are deployed without a schedule: they are
there to be triggered from the UI, and the composite is what the calendar runs. `prefect.yaml` is rendered from
this module (`upkeep deployments --write`), and a test checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from upkeep.routines import ROUTINES, RoutineSpec
from upkeep.windows import PRESETS, Window

ENVIRONMENTS = ("production", "staging", "development")
WORK_POOL = "upkeep-process"
CADENCE: dict[str, str] = {  # when non-disruptive work runs (UTC), and disruptive work where there is no window
    "minutely": "* * * * *",
    "daily": "0 6 * * *",
    "daily-midday": "0 12 * * *",  # the independent freshness check of the backups
    "weekly": "0 6 * * 1",
    "monthly": "0 6 1 * *",
    "quarterly": "0 6 1 1,4,7,10 *",
}


@dataclass(frozen=True)
class DeploymentSpec:
    routine: RoutineSpec
    environment: str
    cron: str | None
    timezone: str
    day_or: bool = True  # False: day of month AND day of week must both match ("first Sunday")

    @property
    def name(self) -> str:
        return self.routine.deployment_name(self.environment)

    @property
    def parameters(self) -> dict[str, Any]:
        return {"environment": self.environment, **self.routine.parameters}

    @property
    def tags(self) -> list[str]:
        return ["upkeep", self.routine.id, self.environment, "disruptive" if self.routine.disruptive else "non-disruptive"]


def schedule_for(routine: RoutineSpec, window: Window) -> tuple[str | None, str, bool]:
    """(cron, timezone, day_or): the window's start for disruptive routines, else the cadence in UTC.

    A weekly routine in a daily window takes Sunday's opening; a monthly one takes the month's
    first opening (the first Sunday of a weekly window: day 1-7 AND Sunday, so day_or=False)."""
    if routine.cadence is None:
        return None, "UTC", True
    if routine.disruptive and not window.always:
        assert window.cron is not None
        minute, hour, _dom, _month, dow = window.cron.split()
        if routine.cadence == "weekly" and dow == "*":
            return f"{minute} {hour} * * 0", window.timezone, True
        if routine.cadence == "monthly":
            if dow == "*":
                return f"{minute} {hour} 1 * *", window.timezone, True
            return f"{minute} {hour} 1-7 * {dow}", window.timezone, False
        return window.cron, window.timezone, True
    return CADENCE[routine.cadence], "UTC", True


def next_runs(spec: DeploymentSpec, after: datetime, n: int) -> list[datetime]:
    """The next n run times (UTC) of a deployment, honouring day_or=False."""
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    if spec.cron is None:
        return []
    local = after.astimezone(ZoneInfo(spec.timezone))
    out: list[datetime] = []
    if spec.day_or:
        it = CronSim(spec.cron, local)
        return [next(it).astimezone(UTC) for _ in range(n)]
    minute, hour, dom, month, dow = spec.cron.split()
    it = CronSim(f"{minute} {hour} {dom} {month} *", local)  # then keep the days that match both
    while len(out) < n:
        t = next(it)
        if (t.isoweekday() % 7) == int(dow):
            out.append(t.astimezone(UTC))
    return out


def deployment_specs(windows: dict[str, Window] | None = None) -> list[DeploymentSpec]:
    windows = windows or PRESETS
    out = []
    for routine in ROUTINES:
        for env in ENVIRONMENTS:
            cron, tz, day_or = schedule_for(routine, windows[env])
            out.append(DeploymentSpec(routine, env, cron, tz, day_or))
    return out


def prefect_yaml(specs: list[DeploymentSpec] | None = None) -> dict[str, Any]:
    """The content of prefect.yaml for these deployments."""
    specs = specs or deployment_specs()
    return {
        "name": "upkeep",
        "prefect-version": "3.9.1",
        "deployments": [
            {
                "name": s.name,
                "entrypoint": s.routine.entrypoint,
                "description": s.routine.description,
                "tags": s.tags,
                "parameters": s.parameters,
                "schedules": [{"cron": s.cron, "timezone": s.timezone, "day_or": s.day_or, "active": True}] if s.cron else [],
                "work_pool": {"name": WORK_POOL, "work_queue_name": s.environment},
            }
            for s in specs
        ],
    }
