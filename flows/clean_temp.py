"""Remove old temporary files (the guide's daily clean_temp_files): plan first, dry run unless the
directory is configured with `delete: true`."""

from __future__ import annotations

from prefect import flow

from flows._routine import Routine
from tasks.logs import clean_temp_files
from upkeep.routines import CLEAN_TEMP


@flow(name=CLEAN_TEMP.flow)
def clean_temp(environment: str = "development", config: str | None = None, hosts: list[str] | None = None,
               dry_run: bool | None = None) -> dict[str, str]:
    """execute: each host's temp directories listed, old files matching their patterns planned and
    logged, then removed where allowed. `dry_run`: None follows each directory's `delete`."""
    with Routine(CLEAN_TEMP, environment, config, dry_run=dry_run is True) as r:
        dirs = r.env.logs.temp_dirs if r.env.logs else []
        roles = {d.role for d in dirs}
        targets = [h for h in r.select_hosts(hosts) if None in roles or roles & set(r.resources.hosts.get_config(h).roles)]
        with r.stage("execute"):
            result = r.fan_out(clean_temp_files, targets, dry_run=dry_run)
        if not dirs:
            r.report.notes.append("no temp directories configured (logs.temp_dirs)")
        return {h: v.describe() for h, v in result.returned().items()}
