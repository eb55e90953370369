"""Tasks that touch the hosts' package managers: snapshot, plan, and the rolling update itself.

Each is one task over a group of hosts (a per-host outcome map, like Fabric's GroupResult): the
per-host detail goes to the run's report and log, and the Prefect cost stays per stage, not per
host and command. The rolling update checkpoints every host it finishes, so retrying a failed
run resumes at the hosts that did not.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from prefect import get_run_logger

from tasks._base import Checkpoints, group_result, resources, retry_delay_factor, step
from tasks.reports import Progress
from upkeep.decisions.guard import step_allowed
from upkeep.errors import UpkeepError
from upkeep.hosts.fanout import FanOutResult, Outcome, Status, error_allowance, fan_out
from upkeep.operations import services_on
from upkeep.packages import PackageUpdate, Scope, in_scope, manager_in_scope
from upkeep.packages.hosts import HostReadiness, InventoryHostOps, drivers_for, readiness
from upkeep.packages.rolling import Versions, update_host
from upkeep.resources import Resources
from upkeep.routines import SYSTEM_UPDATE
from upkeep.windows import Window

T = TypeVar("T")
VERIFY_ATTEMPTS = 4  # the first probe and 3 retries with backoff, as the guide's "retried a few times"


def _group(res: Resources, hosts: Iterable[str], action: Callable[[str], T],
           max_errors: int | str | None = None) -> FanOutResult[T]:
    """`action(host)` on every host with the environment's concurrency (every host tried unless `max_errors`)."""
    return fan_out({h: h for h in hosts}, action, max_concurrency=res.env.max_concurrency, max_errors=max_errors)


@step("hosts", retries=1)
def check_hosts(hosts: list[str], min_free_percent: float) -> FanOutResult[HostReadiness]:
    """Every host reachable, its free disk space, and a snapshot of its installed versions (what a
    rollback returns to), in one pass; fails, with every host's outcome, when a host cannot be reached."""
    res = resources()
    result = _group(res, hosts, lambda host: readiness(res, host, min_free_percent))
    low = [h for h, ready in result.returned().items() if not ready.ok]
    get_run_logger().log(30 if low else 20, "hosts checked (min %g%% free disk; versions snapshot): %s%s", min_free_percent,
                         result.summary(), f"; low on disk: {', '.join(low)}" if low else "")
    return group_result(result)


@step("updates")
def plan_updates(hosts: list[str], scope: Scope) -> FanOutResult[list[PackageUpdate]]:
    """What would change on each host, classified (security / patch / minor / major / kernel)."""
    res = resources()

    def one(host: str) -> list[PackageUpdate]:
        updates = []
        for manager, driver in drivers_for(res, host).items():
            if not manager_in_scope(manager, scope):
                continue
            get_run_logger().info("%s: %s: %s", host, manager, driver.refresh())
            updates += driver.upgradable()
        return in_scope(updates, scope)

    result = _group(res, hosts, one)
    count = sum(len(o.value or []) for o in result.succeeded.values())
    get_run_logger().info("plan (scope %s): %d update(s) on %d host(s) (report: per host); %s", scope, count,
                          len(result.succeeded), result.summary())
    return group_result(result)


@step("clean-up")
def clean_up(hosts: list[str], managers: list[str]) -> FanOutResult[str]:
    """After the hosts updated well (a rollback may still have needed the downloaded packages): each manager's
    clean-up on each host (apt: autoremove, listed first, and clean; npm: prune); a sentence per host."""
    res = resources()

    def one(host: str) -> str:
        drivers = drivers_for(res, host)
        return "; ".join(f"{m}: {drivers[m].cleanup()}" for m in managers if m in drivers)

    result = _group(res, hosts, one)
    get_run_logger().info("clean-up (%s): %s", ", ".join(managers), result.summary())
    return group_result(result)


@step("rolling-update", retries=0)
def rolling_update(chosen: dict[str, list[PackageUpdate]], before: dict[str, Versions],
                   window: Window | None = None) -> FanOutResult[Versions]:
    """Update every host in `chosen` (with its approved updates), `max_concurrency` at once, within the
    error budget: stop → apply → start → verify, rolled back and re-verified when its checks fail.

    A host finished by an earlier attempt of this flow run (same plan) is not touched again. With a
    `window`, no host starts once its cutoff has passed (the host fails "not started"); the error
    budget counts over every host of the plan, also when a retry resumes with fewer."""
    res, logger = resources(), get_run_logger()
    plan_digest = hashlib.sha256(repr(sorted((h, [u.versioned_id for u in us]) for h, us in chosen.items())).encode()).hexdigest()
    checkpoints = Checkpoints(f"rolling-update/{plan_digest}")
    earlier: dict[str, Outcome[Versions]] = {}
    for host in chosen:
        done, value = checkpoints.get(host)
        if done:
            earlier[host] = Outcome(host, Status.SUCCEEDED, value=value, reason="done in an earlier attempt of this run")
            logger.info("%s: updated in an earlier attempt of this run; not touched again", host)
    pending = [h for h in chosen if h not in earlier]
    progress = Progress.start(SYSTEM_UPDATE.id, res.environment, len(chosen), done=len(earlier)) if len(chosen) >= 10 else None

    def one(host: str) -> Versions:
        if window is not None:
            allowed, why = step_allowed(window, datetime.now(UTC), override=False)
            if not allowed:
                raise UpkeepError(f"not started: {why}")
        try:
            ops = InventoryHostOps(res, host, attempts=VERIFY_ATTEMPTS, base_delay=retry_delay_factor())
            after = update_host(ops, services_on(res, host), chosen[host], before.get(host, {}))
            checkpoints.put(host, after)
            return after
        finally:
            if progress:
                progress.advance()

    started = time.monotonic()
    result = _group(res, pending, one, max_errors=error_allowance(res.env.max_errors, len(chosen)))
    if progress:
        progress.finish()
    logger.info("rolling update: %s in %.1fs", result.summary(), time.monotonic() - started)
    return group_result(result.merged(earlier, chosen))
