"""The guides' composite schedules call the routine subflows that exist.

daily (Event Manager guide): check disk space, back up and verify the backup;
weekly (in the window): clear stale cache;
monthly (Event Editor guide, "Backup Verification: test backup systems, verify data integrity"):
read every object of the newest backup, not a sample;
quarterly (Event Manager guide): disaster-recovery test.
Each later routine adds itself here (log rotation, security patches, system updates, audits, ...).
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


def _outcome(state: Any) -> str:
    return f"{state.name}: {state.message}" if state.message else state.name


@flow(name="daily-maintenance")
def daily_maintenance(environment: str = "development", config: str | None = None) -> dict[str, str]:
    """Each routine runs even when an earlier one failed; the run fails if any did."""
    states = {
        "disk_check": disk_check(environment=environment, config=config, return_state=True),
        "backup": backup(environment=environment, config=config, return_state=True),
    }
    return _finish(states)


@flow(name="weekly-maintenance")
def weekly_maintenance(environment: str = "development", config: str | None = None, emergency: bool = False) -> dict[str, str]:
    return _finish({"clear_cache": clear_cache(environment=environment, config=config, emergency=emergency, return_state=True)})


@flow(name="monthly-maintenance")
def monthly_maintenance(environment: str = "development", config: str | None = None) -> dict[str, str]:
    return _finish({"verify_backup": verify_backup(environment=environment, config=config, sample=1.0, return_state=True)})


@flow(name="quarterly-maintenance")
def quarterly_maintenance(environment: str = "development", config: str | None = None) -> dict[str, str]:
    return _finish({"dr_test": dr_test(environment=environment, config=config, return_state=True)})


def _finish(states: dict[str, Any]) -> dict[str, str]:
    outcomes = {name: _outcome(state) for name, state in states.items()}
    failed = [name for name, state in states.items() if state.is_failed() or state.is_crashed()]
    if failed:
        raise MaintenanceFailed(f"failed: {', '.join(failed)} — " + "; ".join(f"{n}: {outcomes[n]}" for n in failed))
    return outcomes
