"""The guides' composite schedules call the routine subflows that exist, in the order
`upkeep.routines.COMPOSITES` gives (each runs even when an earlier one failed):

daily: check disk space, rotate and archive the logs, clean temp files, analyse the day's logs, back up and verify
the backup, the support queue;
weekly (in the window): security patches (the system update, security scope), database optimisation (a dry run unless
started otherwise, as on its own), certificates (renewed when due), clear stale cache, the performance review, then the
security review (it may wait for its approval in the UI);
monthly (in the window): the system update, a full read of the newest backup, the full security audit, the capacity
review, the documentation check, the configuration review (it may wait for its approval); the guides' manual items
listed with their owners;
quarterly: the infrastructure review, the disaster-recovery test, then the compliance audit (it cites the DR test).
Every guide item and what does it: `upkeep.guide.GUIDE`; a new routine adds itself to COMPOSITES, GUIDE and `_calls`.
Each composite publishes `<composite>-<env>-report`: each routine's outcome in order and the guide's items.
A composite opens the environment's resources once; each routine it calls runs with them
(upkeep.resources.routine_resources) instead of loading the inventory and connecting again.
A composite with a disruptive part takes the environment's disruptive slot once, before its first
part, and its parts run inside it (flows._slots.composite_slot); it ends Skipped, nothing run, when
another disruptive routine keeps the slot until the window's cutoff.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prefect import State, flow, tags
from prefect.context import FlowRunContext
from prefect.states import Completed

from flows._slots import composite_slot
from flows.backup import backup
from flows.capacity_review import capacity_review
from flows.certificates import certificates
from flows.clean_temp import clean_temp
from flows.clear_cache import clear_cache
from flows.compliance_audit import compliance_audit
from flows.config_review import config_review
from flows.database_maintenance import database_maintenance
from flows.disk_check import disk_check
from flows.documentation_check import documentation_check
from flows.dr_test import dr_test
from flows.infrastructure_review import infrastructure_review
from flows.log_analysis import log_analysis
from flows.log_rotation import log_rotation
from flows.performance_review import performance_review
from flows.security_audit import security_audit
from flows.security_review import security_review
from flows.support_queue import support_queue
from flows.system_update import system_update
from flows.verify_backup import verify_backup
from tasks.reports import publish_composite
from upkeep.errors import MaintenanceFailed
from upkeep.guide import PartOutcome, composite_markdown
from upkeep.resources import Resources, routine_resources
from upkeep.routines import (
    BACKUP,
    CAPACITY_REVIEW,
    CERTIFICATES,
    CLEAN_TEMP,
    CLEAR_CACHE,
    COMPLIANCE_AUDIT,
    CONFIG_REVIEW,
    DAILY_MAINTENANCE,
    DATABASE_MAINTENANCE,
    DISK_CHECK,
    DOCUMENTATION_CHECK,
    DR_TEST,
    INFRASTRUCTURE_REVIEW,
    LOG_ANALYSIS,
    LOG_ROTATION,
    MONTHLY_MAINTENANCE,
    PERFORMANCE_REVIEW,
    QUARTERLY_MAINTENANCE,
    SECURITY_AUDIT,
    SECURITY_PATCHES,
    SECURITY_REVIEW,
    SUPPORT_QUEUE,
    SYSTEM_UPDATE,
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
        SUPPORT_QUEUE.id: lambda: support_queue(**kw),
        DATABASE_MAINTENANCE.id: lambda: database_maintenance(**kw),
        PERFORMANCE_REVIEW.id: lambda: performance_review(**kw),
        SYSTEM_UPDATE.id: lambda: system_update(**kw, emergency=emergency),
        CAPACITY_REVIEW.id: lambda: capacity_review(**kw),
        DOCUMENTATION_CHECK.id: lambda: documentation_check(**kw),
        CONFIG_REVIEW.id: lambda: config_review(**kw),
        INFRASTRUCTURE_REVIEW.id: lambda: infrastructure_review(**kw),
        COMPLIANCE_AUDIT.id: lambda: compliance_audit(**kw),
    }


def _run(composite: RoutineSpec, environment: str, config: str | None, emergency: bool = False) -> dict[str, str] | State:
    """Run the composite's parts in order with one set of resources, inside one hold of the slot when one is disruptive."""
    calls = _calls(environment, config, emergency)
    with routine_resources(environment, config) as res, composite_slot(composite, res.env, emergency) as refused, \
            tags(*_watched_tags(environment)):
        if refused is not None:
            return Completed(name="Skipped", message=refused)
        states, took = {}, {}
        for part in parts(composite):
            started = time.monotonic()
            states[part.id] = calls[part.id]()
            took[part.id] = time.monotonic() - started
        _report(composite, res, states, took)
    return _finish(states)


def _watched_tags(environment: str) -> list[str]:
    """The tags the watchdog knows a deployment's run by (`upkeep`, the environment), for the routines a composite
    started from a deployment calls: they run in its process, and die with it, so they are marked Crashed with it."""
    ctx = FlowRunContext.get()
    run_tags = set(ctx.flow_run.tags) if ctx and ctx.flow_run else set()
    return ["upkeep", environment] if {"upkeep", environment} <= run_tags else []


def _report(composite: RoutineSpec, res: Resources, states: dict[str, Any], took: dict[str, float]) -> None:
    """The composite's own report: each routine's outcome in order, the guides' items, the monthly manual checklist."""
    outcomes = [PartOutcome(name, state.name, state.message or "", took[name]) for name, state in states.items()]
    manual = ([(m.item, m.owner, m.guide) for m in res.env.reviews.manual] if composite.id == MONTHLY_MAINTENANCE.id
              else [])
    failed = [o.routine for o in outcomes if o.state in ("Failed", "Crashed", "TimedOut")]
    publish_composite(composite.id, res.environment, composite_markdown(composite, res.environment, outcomes, manual),
                      f"failed: {', '.join(failed)}" if failed else f"{len(outcomes)} routines completed")


@flow(name=DAILY_MAINTENANCE.flow)
def daily_maintenance(environment: str = "development", config: str | None = None) -> dict[str, str] | State:
    """Each routine runs even when an earlier one failed; the run fails if any did."""
    return _run(DAILY_MAINTENANCE, environment, config)


@flow(name=WEEKLY_MAINTENANCE.flow)
def weekly_maintenance(environment: str = "development", config: str | None = None,
                       emergency: bool = False) -> dict[str, str] | State:
    return _run(WEEKLY_MAINTENANCE, environment, config, emergency)


@flow(name=MONTHLY_MAINTENANCE.flow)
def monthly_maintenance(environment: str = "development", config: str | None = None,
                        emergency: bool = False) -> dict[str, str] | State:
    return _run(MONTHLY_MAINTENANCE, environment, config, emergency)


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
