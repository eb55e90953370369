"""The guides' composite schedules call the routine subflows that exist, in the order
`upkeep.routines.COMPOSITES` gives (each runs even when an earlier one failed):

daily (Event Manager guide): check disk space, rotate and archive the logs, clean temp files, analyse
the day's logs, back up and verify the backup;
weekly (in the window): security patches (the system update, security scope), certificates (renewed when due),
clear stale cache, then the security review (it may wait for its approval in the UI);
monthly (Event Editor guide, "Backup Verification: test backup systems, verify data integrity"):
read every object of the newest backup, not a sample; then the full security audit;
quarterly (Event Manager guide): disaster-recovery test.
Each later routine adds itself to COMPOSITES and to `_calls` (audits, reviews, ...).
A composite opens the environment's resources once; each routine it calls runs with them
(upkeep.resources.routine_resources) instead of loading the inventory and connecting again.
A composite with a disruptive part takes the environment's disruptive slot once, before its first
part, and its parts run inside it (flows._slots.composite_slot); it ends Skipped, nothing run, when
another disruptive routine keeps the slot until the window's cutoff.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import State, flow
from prefect.states import Completed

from flows._slots import composite_slot
from flows.backup import backup
from flows.certificates import certificates
from flows.clean_temp import clean_temp
from flows.clear_cache import clear_cache
from flows.disk_check import disk_check
from flows.dr_test import dr_test
from flows.log_analysis import log_analysis
from flows.log_rotation import log_rotation
from flows.security_audit import security_audit
from flows.security_review import security_review
from flows.system_update import system_update
from flows.verify_backup import verify_backup
from upkeep.errors import MaintenanceFailed
from upkeep.resources import routine_resources
from upkeep.routines import (
    BACKUP,
    CERTIFICATES,
    CLEAN_TEMP,
    CLEAR_CACHE,
    DAILY_MAINTENANCE,
    DISK_CHECK,
    DR_TEST,
    LOG_ANALYSIS,
    LOG_ROTATION,
    MONTHLY_MAINTENANCE,
    QUARTERLY_MAINTENANCE,
    SECURITY_AUDIT,
    SECURITY_PATCHES,
    SECURITY_REVIEW,
    VERIFY_BACKUP,
    WEEKLY_MAINTENANCE,
    RoutineSpec,
    parts,
)


def _calls(environment: str, config: str | None, emergency: bool = False) -> dict[str, Callable[[], Any]]:
    """How a composite calls each routine it may run (routine id → a call returning its final state)."""
    kw: dict[str, Any] = {"environment": environment, "config": config, "return_state": True}
    return {
        DISK_CHECK.id: lambda: disk_check(**kw),
        LOG_ROTATION.id: lambda: log_rotation(**kw),
        CLEAN_TEMP.id: lambda: clean_temp(**kw),
        LOG_ANALYSIS.id: lambda: log_analysis(**kw),
        BACKUP.id: lambda: backup(**kw),
        SECURITY_PATCHES.id: lambda: system_update(**kw, **SECURITY_PATCHES.parameters, emergency=emergency),
        CLEAR_CACHE.id: lambda: clear_cache(**kw, emergency=emergency),
        VERIFY_BACKUP.id: lambda: verify_backup(**kw, sample=1.0),
        DR_TEST.id: lambda: dr_test(**kw),
        CERTIFICATES.id: lambda: certificates(**kw, emergency=emergency),
        SECURITY_REVIEW.id: lambda: security_review(**kw),
        SECURITY_AUDIT.id: lambda: security_audit(**kw),
    }


def _run(composite: RoutineSpec, environment: str, config: str | None, emergency: bool = False) -> dict[str, str] | State:
    """Run the composite's parts in order with one set of resources, inside one hold of the slot when one is disruptive."""
    calls = _calls(environment, config, emergency)
    with routine_resources(environment, config) as res, composite_slot(composite, res.env, emergency) as refused:
        if refused is not None:
            return Completed(name="Skipped", message=refused)
        states = {part.id: calls[part.id]() for part in parts(composite)}
    return _finish(states)


@flow(name=DAILY_MAINTENANCE.flow)
def daily_maintenance(environment: str = "development", config: str | None = None) -> dict[str, str] | State:
    """Each routine runs even when an earlier one failed; the run fails if any did."""
    return _run(DAILY_MAINTENANCE, environment, config)


@flow(name=WEEKLY_MAINTENANCE.flow)
def weekly_maintenance(environment: str = "development", config: str | None = None,
                       emergency: bool = False) -> dict[str, str] | State:
    return _run(WEEKLY_MAINTENANCE, environment, config, emergency)


@flow(name=MONTHLY_MAINTENANCE.flow)
def monthly_maintenance(environment: str = "development", config: str | None = None) -> dict[str, str] | State:
    return _run(MONTHLY_MAINTENANCE, environment, config)


@flow(name=QUARTERLY_MAINTENANCE.flow)
def quarterly_maintenance(environment: str = "development", config: str | None = None) -> dict[str, str] | State:
    return _run(QUARTERLY_MAINTENANCE, environment, config)


def _outcome(state: Any) -> str:
    return f"{state.name}: {state.message}" if state.message else state.name


def _finish(states: dict[str, Any]) -> dict[str, str]:
    outcomes = {name: _outcome(state) for name, state in states.items()}
    failed = [name for name, state in states.items() if state.is_failed() or state.is_crashed()]
    if failed:
        raise MaintenanceFailed(f"failed: {', '.join(failed)} — " + "; ".join(f"{n}: {outcomes[n]}" for n in failed))
    return outcomes
