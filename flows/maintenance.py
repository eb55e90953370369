"""The guides' composite schedules call the routine subflows that exist.

daily (Event Manager guide): check disk space, back up and verify the backup;
weekly (in the window): clear stale cache;
monthly (Event Editor guide, "Backup Verification: test backup systems, verify data integrity"):
read every object of the newest backup, not a sample;
quarterly (Event Manager guide): disaster-recovery test.
Each later routine adds itself here (log rotation, security patches, system updates, audits, ...).
A composite opens the environment's resources once; each routine it calls runs with them
(upkeep.resources.routine_resources) instead of loading the inventory and connecting again.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.backup import backup
from flows.clear_cache import clear_cache
from flows.disk_check import disk_check
from flows.dr_test import dr_test
from flows.verify_backup import verify_backup
from upkeep.errors import MaintenanceFailed
from upkeep.resources import routine_resources
from upkeep.routines import (
    BACKUP,
    CLEAR_CACHE,
    DAILY_MAINTENANCE,
    DISK_CHECK,
    DR_TEST,
    MONTHLY_MAINTENANCE,
    QUARTERLY_MAINTENANCE,
    VERIFY_BACKUP,
    WEEKLY_MAINTENANCE,
)


def _outcome(state: Any) -> str:
    return f"{state.name}: {state.message}" if state.message else state.name


@flow(name=DAILY_MAINTENANCE.flow)
def daily_maintenance(environment: str = "development", config: str | None = None) -> dict[str, str]:
    """Each routine runs even when an earlier one failed; the run fails if any did."""
    with routine_resources(environment, config):  # one inventory load and one set of clients for all of them
        states = {
            DISK_CHECK.id: disk_check(environment=environment, config=config, return_state=True),
            BACKUP.id: backup(environment=environment, config=config, return_state=True),
        }
    return _finish(states)


@flow(name=WEEKLY_MAINTENANCE.flow)
def weekly_maintenance(environment: str = "development", config: str | None = None, emergency: bool = False) -> dict[str, str]:
    with routine_resources(environment, config):
        return _finish({CLEAR_CACHE.id: clear_cache(environment=environment, config=config, emergency=emergency,
                                                    return_state=True)})


@flow(name=MONTHLY_MAINTENANCE.flow)
def monthly_maintenance(environment: str = "development", config: str | None = None) -> dict[str, str]:
    with routine_resources(environment, config):
        return _finish({VERIFY_BACKUP.id: verify_backup(environment=environment, config=config, sample=1.0, return_state=True)})


@flow(name=QUARTERLY_MAINTENANCE.flow)
def quarterly_maintenance(environment: str = "development", config: str | None = None) -> dict[str, str]:
    with routine_resources(environment, config):
        return _finish({DR_TEST.id: dr_test(environment=environment, config=config, return_state=True)})


def _finish(states: dict[str, Any]) -> dict[str, str]:
    outcomes = {name: _outcome(state) for name, state in states.items()}
    failed = [name for name, state in states.items() if state.is_failed() or state.is_crashed()]
    if failed:
        raise MaintenanceFailed(f"failed: {', '.join(failed)} — " + "; ".join(f"{n}: {outcomes[n]}" for n in failed))
    return outcomes
