"""Every routine, named once: its id, its Prefect flow, whether it is disruptive, its cadence.

The id (`clear-cache`) is the one spelling of a routine: in its deployments' names
(`clear-cache-production`), its report's title and artifact keys, its notices and its
maintenance locks. The flow module declares `@flow(name=SPEC.flow)` and opens
`Routine(SPEC, ...)`; `deployments.specs` turns the specs into deployments and `prefect.yaml`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Cadence = Literal["minutely", "daily", "daily-midday", "weekly", "monthly", "quarterly"]


@dataclass(frozen=True)
class RoutineSpec:
    """One routine (or a variant of one: `security-patches` is the system-update flow with a scope)."""

    id: str  # lowercase words and dashes
    flow: str  # the Prefect flow's name
    entrypoint: str  # module path:function, as prefect.yaml names it
    disruptive: bool  # runs only inside a maintenance window (or as an approved emergency)
    cadence: Cadence | None  # None: on demand only (a composite schedules it)
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def deployment_name(self, environment: str) -> str:
        """`clear-cache-production`."""
        return f"{self.id}-{environment}"

    def deployment_path(self, environment: str) -> str:
        """`clear-cache/clear-cache-production`: what `run_deployment` takes."""
        return f"{self.flow}/{self.deployment_name(environment)}"


def _spec(id: str, entrypoint: str, disruptive: bool, cadence: Cadence | None, description: str,
          flow: str | None = None, **parameters: Any) -> RoutineSpec:
    return RoutineSpec(id, flow or id, entrypoint, disruptive, cadence, description, MappingProxyType(parameters))


DISK_CHECK = _spec("disk-check", "flows/disk_check.py:disk_check", False, None, "Free disk space on every host")
CLEAR_CACHE = _spec("clear-cache", "flows/clear_cache.py:clear_cache", True, None, "Clear the API cache, host by host")
BACKUP = _spec("backup", "flows/backup.py:backup", False, None, "MongoDB backup to S3, verified, with retention")
VERIFY_BACKUP = _spec("verify-backup", "flows/verify_backup.py:verify_backup", False, "daily-midday",
                      "Integrity, completeness, test restore and freshness of the newest backup")
DR_TEST = _spec("dr-test", "flows/dr_test.py:dr_test", False, None,
                "Restore the latest verified backup into the test environment; measure RTO and RPO")
SYSTEM_UPDATE = _spec("system-update", "flows/system_update.py:system_update", True, "monthly",
                      "Rolling OS and dependency updates with approvals, verification and rollback")
SECURITY_PATCHES = _spec("security-patches", "flows/system_update.py:system_update", True, "weekly",
                         "Weekly security patches only, in the window", flow="system-update", scope="security")
HEALTH_CHECK = _spec("health-check", "flows/health_check.py:health_check", False, "minutely",
                     "Probe services, database and hosts; alert rules with durations; auto-recovery")
EMERGENCY_RECOVERY = _spec("emergency-recovery", "flows/emergency_recovery.py:emergency_recovery", True, None,
                           "Identify, stop, fix, verify, restart, notify; incident record and post-mortem draft")
DAILY_MAINTENANCE = _spec("daily-maintenance", "flows/maintenance.py:daily_maintenance", False, "daily",
                          "Daily tasks: disk space, backup (verified)")
WEEKLY_MAINTENANCE = _spec("weekly-maintenance", "flows/maintenance.py:weekly_maintenance", True, "weekly",
                           "Weekly tasks, in the window: clear stale cache")
MONTHLY_MAINTENANCE = _spec("monthly-maintenance", "flows/maintenance.py:monthly_maintenance", False, "monthly",
                            "Monthly tasks: full read of the newest backup (every object)")
QUARTERLY_MAINTENANCE = _spec("quarterly-maintenance", "flows/maintenance.py:quarterly_maintenance", False, "quarterly",
                              "Quarterly tasks: disaster-recovery test")

ROUTINES: tuple[RoutineSpec, ...] = (
    DISK_CHECK, CLEAR_CACHE, BACKUP, VERIFY_BACKUP, DR_TEST, SYSTEM_UPDATE, SECURITY_PATCHES, HEALTH_CHECK,
    EMERGENCY_RECOVERY, DAILY_MAINTENANCE, WEEKLY_MAINTENANCE, MONTHLY_MAINTENANCE, QUARTERLY_MAINTENANCE,
)


def routine(id: str) -> RoutineSpec:
    """The spec of a routine by its id; a KeyError names the known ids."""
    for spec in ROUTINES:
        if spec.id == id:
            return spec
    raise KeyError(f"no routine {id!r}; known: {', '.join(s.id for s in ROUTINES)}")
