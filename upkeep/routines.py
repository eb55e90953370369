"""Every routine, named once: its id, its Prefect flow, whether it is disruptive, its cadence.

The id (`clear-cache`) is the one spelling of a routine: in its deployments' names
(`clear-cache-production`), its report's title and artifact keys, its notices and its
maintenance locks. The flow module declares `@flow(name=SPEC.flow)` and opens
`Routine(SPEC, ...)`; `deployments.specs` turns the specs into deployments and `prefect.yaml`.

What runs where is said once, here: a routine with a cadence is scheduled on its own; the routines
a composite runs (`COMPOSITES`, in their order) have none of their own when the composite is
scheduled (their deployments stay, for manual runs from the UI). Disruptive routines of one
environment run one at a time: they hold the environment's slot (`slot_name`, a Prefect global
concurrency limit of 1) from the window guard to the end of the run; a composite holds it once for
all its parts.
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
    cadence: Cadence | None  # None: no schedule of its own (on demand, or run by a composite: COMPOSITES)
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
SECURITY_PATCHES = _spec("security-patches", "flows/system_update.py:system_update", True, None,
                         "Security patches only (weekly, in weekly-maintenance)", flow="system-update", scope="security")
DEPENDENCY_UPDATES = _spec("dependency-updates", "flows/system_update.py:system_update", True, "weekly",
                           "The application's npm dependencies: patch and minor automatic, major approved",
                           flow="system-update", scope="dependencies")
DATABASE_MAINTENANCE = _spec("database-maintenance", "flows/database_maintenance.py:database_maintenance", True, "weekly",
                             "MongoDB: stale data archived then removed, old sessions, index health, validate, compact "
                             "(a dry run unless started with dry_run false)")
SECURITY_CHECK = _spec("security-check", "flows/security_check.py:security_check", False, "daily",
                      "Daily, read-only: pending security updates (lists refreshed) and their age, certificates; "
                      "critical findings notify at once")
CERTIFICATES = _spec("certificates", "flows/certificates.py:certificates", True, None,
                     "Every configured certificate judged; renewed under min(30 days, a third of its lifetime), "
                     "reloaded and checked again (in weekly-maintenance)")
SECURITY_AUDIT = _spec("security-audit", "flows/security_audit.py:security_audit", False, None,
                       "The full audit (monthly, in monthly-maintenance): vulnerable packages, dependencies, "
                       "permissions, sshd, firewall against its baseline, certificates, access")
SECURITY_REVIEW = _spec("security-review", "flows/security_review.py:security_review", False, None,
                        "The week's security events from the log analysis, and the access review, approved in the UI "
                        "(in weekly-maintenance)")
HEALTH_CHECK = _spec("health-check", "flows/health_check.py:health_check", False, "minutely",
                     "Probe services, database and hosts; alert rules with durations; auto-recovery")
EMERGENCY_RECOVERY = _spec("emergency-recovery", "flows/emergency_recovery.py:emergency_recovery", True, None,
                           "Identify, stop, fix, verify, restart, notify; incident record and post-mortem draft")
DAILY_MAINTENANCE = _spec("daily-maintenance", "flows/maintenance.py:daily_maintenance", False, "daily",
                          "Daily tasks: disk space, log rotation and archive, temp files, log analysis, backup (verified), "
                          "support queue")
WEEKLY_MAINTENANCE = _spec("weekly-maintenance", "flows/maintenance.py:weekly_maintenance", True, "weekly",
                           "Weekly tasks, in the window: security patches, database optimisation, certificates, clear "
                           "stale cache, performance review, security review")
MONTHLY_MAINTENANCE = _spec("monthly-maintenance", "flows/maintenance.py:monthly_maintenance", True, "monthly",
                            "Monthly tasks, in the window: system update, full read of the newest backup, the full "
                            "security audit, capacity review, documentation check, configuration review; the guides' "
                            "manual items listed with their owners")
QUARTERLY_MAINTENANCE = _spec("quarterly-maintenance", "flows/maintenance.py:quarterly_maintenance", False, "quarterly",
                              "Quarterly tasks: infrastructure review, disaster-recovery test, compliance audit")

LOG_ROTATION = _spec("log-rotation", "flows/log_rotation.py:log_rotation", False, None,
                    "Rotate, compress and archive the logs to S3 (daily or over max_size; keep 30; 90 days in S3)")
CLEAN_TEMP = _spec("clean-temp", "flows/clean_temp.py:clean_temp", False, None,
                   "Old files in the temp directories: planned, removed where the directory allows it")
LOG_ANALYSIS = _spec("log-analysis", "flows/log_analysis.py:log_analysis", False, None,
                     "Error patterns, latency percentiles, security events and usage from the day's archived logs")

PERFORMANCE_REVIEW = _spec("performance-review", "flows/performance_review.py:performance_review", False, None,
                            "Week over week: p95 / p99 per route, error rate, throughput, host trends, memory-leak "
                            "suspicion, the database cache (in weekly-maintenance)")
CAPACITY_REVIEW = _spec("capacity-review", "flows/capacity_review.py:capacity_review", False, None,
                        "Days until full for every disk, inode table and database, from daily maxima; CPU and memory "
                        "headroom at the weekly peak (in monthly-maintenance)")
DOCUMENTATION_CHECK = _spec("documentation-check", "flows/documentation_check.py:documentation_check", False, None,
                            "API description vs served routes, the changelog lists the deployed version, documentation "
                            "links resolve (in monthly-maintenance)")
CONFIG_REVIEW = _spec("config-review", "flows/config_review.py:config_review", False, None,
                      "The hosts' configuration files against the last approved copy, by checksum; changes approved "
                      "in the UI (in monthly-maintenance)")
SUPPORT_QUEUE = _spec("support-queue", "flows/support_queue.py:support_queue", False, None,
                      "Open support tickets; critical ones over their SLA notify (in daily-maintenance)")
INFRASTRUCTURE_REVIEW = _spec("infrastructure-review", "flows/infrastructure_review.py:infrastructure_review", False,
                              None, "Inventory drift since last quarter (hosts, roles, OS, kernels, service versions, "
                              "certificates) and OS end of life (in quarterly-maintenance)")
COMPLIANCE_AUDIT = _spec("compliance-audit", "flows/compliance_audit.py:compliance_audit", False, None,
                         "The evidence pack: each control (backups verified, DR test, patches within SLA, certificates, "
                         "access review, audit findings) with its run records and objects, signed, in S3 "
                         "(in quarterly-maintenance)")

PRUNE_RUNS = _spec("prune-runs", "flows/prune_runs.py:prune_runs", False, "daily",
                   "Delete old health-check flow runs from Prefect (only those; run records stay in S3)",
                   dry_run=False)  # the flow defaults to a dry run; the schedule deletes

ROUTINES: tuple[RoutineSpec, ...] = (
    DISK_CHECK, CLEAR_CACHE, BACKUP, VERIFY_BACKUP, DR_TEST, SYSTEM_UPDATE, SECURITY_PATCHES, DEPENDENCY_UPDATES,
    DATABASE_MAINTENANCE, HEALTH_CHECK, SECURITY_CHECK, CERTIFICATES, SECURITY_AUDIT, SECURITY_REVIEW,
    EMERGENCY_RECOVERY, DAILY_MAINTENANCE, WEEKLY_MAINTENANCE, MONTHLY_MAINTENANCE, QUARTERLY_MAINTENANCE, PRUNE_RUNS,
    LOG_ROTATION, CLEAN_TEMP, LOG_ANALYSIS, PERFORMANCE_REVIEW, CAPACITY_REVIEW, DOCUMENTATION_CHECK, CONFIG_REVIEW,
    SUPPORT_QUEUE, INFRASTRUCTURE_REVIEW, COMPLIANCE_AUDIT,
)


# composite → the routines it runs, in this order (each runs even when an earlier one failed)
COMPOSITES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    # rotation before the analysis (it reads what rotation archived) and before the backup (it frees disk)
    DAILY_MAINTENANCE.id: (DISK_CHECK.id, LOG_ROTATION.id, CLEAN_TEMP.id, LOG_ANALYSIS.id, BACKUP.id, SUPPORT_QUEUE.id),
    # disruptive parts first (the window's time), then the reviews; the security review last: it may wait for its
    # approval in the UI
    WEEKLY_MAINTENANCE.id: (SECURITY_PATCHES.id, DATABASE_MAINTENANCE.id, CERTIFICATES.id, CLEAR_CACHE.id,
                            PERFORMANCE_REVIEW.id, SECURITY_REVIEW.id),
    # the system update first (in the window), the backup's full read (the daily sampled pass is scheduled on its own,
    # 12:00), the full security audit, then the reviews; the configuration review last: it may wait for its approval
    MONTHLY_MAINTENANCE.id: (SYSTEM_UPDATE.id, VERIFY_BACKUP.id, SECURITY_AUDIT.id, CAPACITY_REVIEW.id,
                             DOCUMENTATION_CHECK.id, CONFIG_REVIEW.id),
    # the compliance audit last: it cites the DR test just run
    QUARTERLY_MAINTENANCE.id: (INFRASTRUCTURE_REVIEW.id, DR_TEST.id, COMPLIANCE_AUDIT.id),
})
SLOT_PREFIX = "upkeep-disruptive-"


def slot_name(environment: str) -> str:
    """`upkeep-disruptive-production`: the global concurrency limit (1) its disruptive routines share."""
    return f"{SLOT_PREFIX}{environment}"


def parts(composite: RoutineSpec) -> tuple[RoutineSpec, ...]:
    """The routines a composite runs, in order (none for a routine that is not a composite)."""
    return tuple(routine(id) for id in COMPOSITES.get(composite.id, ()))


def composites_of(spec: RoutineSpec) -> tuple[RoutineSpec, ...]:
    """The composites that run `spec`."""
    return tuple(routine(c) for c, ids in COMPOSITES.items() if spec.id in ids)


def own_cadence(spec: RoutineSpec) -> Cadence | None:
    """The cadence its own deployments are scheduled on: none for a disruptive routine that a scheduled
    composite runs (it would start twice in the same window opening), else its cadence."""
    if spec.disruptive and any(c.cadence is not None for c in composites_of(spec)):
        return None
    return spec.cadence


def update_routine(scope: str) -> RoutineSpec:
    """The routine a system-update run of `scope` is (its report, notices and records): security-patches,
    dependency-updates, or system-update (everything)."""
    return {"security": SECURITY_PATCHES, "dependencies": DEPENDENCY_UPDATES}.get(scope, SYSTEM_UPDATE)


def routine(id: str) -> RoutineSpec:
    """The spec of a routine by its id; a KeyError names the known ids."""
    for spec in ROUTINES:
        if spec.id == id:
            return spec
    raise KeyError(f"no routine {id!r}; known: {', '.join(s.id for s in ROUTINES)}")
