"""Tasks that touch the hosts' package managers: snapshot, plan, apply, roll back."""

from __future__ import annotations

from collections import defaultdict

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.config.models import PackageSource
from upkeep.config.render import render
from upkeep.packages import AptDriver, NpmDriver, PackageDriver, PackageUpdate, SandboxDriver


def _drivers(host: str) -> dict[str, PackageDriver]:
    res = resources()
    h, cfg = res.hosts.get(host), res.hosts.get_config(host)

    def build(src: PackageSource) -> PackageDriver:
        if src.manager == "apt":
            return AptDriver(h, simulate_only=src.simulate_only)
        if src.manager == "npm":
            return NpmDriver(h, render(src.app_dir or "", cfg))
        return SandboxDriver(h, render(src.root or "", cfg))

    return {src.manager: build(src) for src in res.env.updates.sources}


@step("pre", "snapshot", run_name="snapshot[{host}]")
def snapshot_packages(host: str) -> dict[str, dict[str, str]]:
    """Installed versions per package manager: what a rollback returns to."""
    out = {manager: driver.installed() for manager, driver in _drivers(host).items()}
    get_run_logger().info("%s: snapshot of %s", host, ", ".join(f"{m} ({len(v)} packages)" for m, v in out.items()))
    return out


@step("plan", "updates", run_name="plan[{host}]")
def plan_updates(host: str, scope: str) -> list[PackageUpdate]:
    """What would change on the host, classified (security / patch / minor / major / kernel)."""
    updates = [u for driver in _drivers(host).values() for u in driver.upgradable()]
    if scope == "security":
        updates = [u for u in updates if u.kind == "security"]
    get_run_logger().info("%s: %d update(s) in scope %s", host, len(updates), scope)
    return updates


@step("execute", "apply", retries=0, run_name="apply[{host}]")
def apply_updates(host: str, updates: list[PackageUpdate]) -> dict[str, dict[str, str]]:
    """Apply the approved updates; return the versions installed afterwards."""
    drivers = _drivers(host)
    by_manager: dict[str, list[PackageUpdate]] = defaultdict(list)
    for u in updates:
        by_manager[u.manager].append(u)
    logger = get_run_logger()
    for manager, items in by_manager.items():
        logger.info("%s: %s: applying %s", host, manager, ", ".join(u.describe() for u in items))
        drivers[manager].apply(items)
    return {m: d.installed([u.name for u in by_manager[m]]) for m, d in drivers.items() if by_manager.get(m)}


@step("rollback", "packages", retries=1, run_name="rollback[{host}]")
def rollback_updates(host: str, before: dict[str, dict[str, str]], updates: list[PackageUpdate]) -> dict[str, dict[str, str]]:
    """Return the updated packages to their exact versions before the run."""
    drivers = _drivers(host)
    touched: dict[str, dict[str, str]] = defaultdict(dict)
    for u in updates:
        if u.name in before.get(u.manager, {}):
            touched[u.manager][u.name] = before[u.manager][u.name]
    for manager, versions in touched.items():
        get_run_logger().warning("%s: %s: rolling back %s", host, manager, ", ".join(f"{n}={v}" for n, v in versions.items()))
        drivers[manager].rollback(versions)
    return {m: drivers[m].installed(list(v)) for m, v in touched.items()}
