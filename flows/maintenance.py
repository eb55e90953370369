"""The guide's composite schedules: daily and weekly maintenance call the routine subflows.

Each later routine adds itself here (daily: log rotation, backup verification; weekly:
security patches, database optimisation, ...).
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.clear_cache import clear_cache
from flows.disk_check import disk_check


@flow(name="daily-maintenance")
def daily_maintenance(environment: str = "development", config: str | None = None) -> dict[str, Any]:
    """Daily tasks: check disk space (more routines join as they are built)."""
    return {"disk_check": disk_check(environment=environment, config=config)}


@flow(name="weekly-maintenance")
def weekly_maintenance(environment: str = "development", config: str | None = None, emergency: bool = False) -> dict[str, Any]:
    """Weekly tasks, inside the window: clear stale cache (more routines join as they are built)."""
    state = clear_cache(environment=environment, config=config, emergency=emergency, return_state=True)
    return {"clear_cache": state.name}
