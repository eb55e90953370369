"""Clear a service's cache on its hosts (performance maintenance; the high-memory alert's action)."""

from __future__ import annotations

from prefect import State, flow

from flows._routine import Routine
from tasks.hosts import service_command
from tasks.services import verify_service
from upkeep.routines import CLEAR_CACHE


@flow(name=CLEAR_CACHE.flow, log_prints=False)
def clear_cache(
    environment: str = "development",
    config: str | None = None,
    service: str = "api",
    hosts: list[str] | None = None,
    emergency: bool = False,
    dry_run: bool = False,
) -> dict[str, str] | State:
    """pre: the service is healthy · execute: clear its cache, host by host · post: healthy again."""
    with Routine(CLEAR_CACHE, environment, config, dry_run=dry_run) as r:
        if not r.guard(emergency):
            return r.skipped()
        targets = r.select_hosts(hosts, role=r.env.service_role(service))
        with r.stage("pre"):
            r.fan_out(verify_service, targets, service=service)
        with r.stage("execute", disruptive=True):
            done = r.fan_out(service_command, targets, service=service, action="clear_cache", dry_run=dry_run)
        with r.stage("post"):
            r.fan_out(verify_service, targets, service=service)
            r.notify(f"{service} cache cleared on {len(targets)} host(s)" + (" (dry run)" if dry_run else ""))
        return {h: str(o.value) for h, o in done.succeeded.items()}
