"""System update (the guide's Update Procedure and Dependency Management; the Event Editor's
SystemUpdater): rolling across hosts in batches, inside the window, with approvals for major
and kernel updates, verification after each host, and rollback of a host whose checks fail.

pre: window guard · disk space and reachability · backup · snapshot of versions · notify
plan: what would change, classified; approvals asked once; dry_run stops here
execute + post, host by host (max_concurrency at once, error budget max_errors):
    stop services → apply → start → verify (health within 200 ms, smoke tests)
    → on failure: rollback to the exact previous versions → verify again
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import State

from flows._routine import Routine
from flows.backup import backup
from tasks.hosts import check_disk_space, service_command
from tasks.notify import notify
from tasks.packages import apply_updates, plan_updates, rollback_updates, snapshot_packages
from tasks.services import smoke_test, verify_service
from upkeep.errors import FanOutError, UpkeepError
from upkeep.packages import split_plan


class HostRolledBack(UpkeepError):
    """A host failed its post-update checks and was returned to its previous versions."""


@flow(name="system-update")
def system_update(environment: str = "development", config: str | None = None, hosts: list[str] | None = None,
                  scope: str = "all", emergency: bool = False, dry_run: bool = False) -> dict[str, Any] | State:
    with Routine("system_update", environment, config, dry_run=dry_run, disruptive=True) as r:
        if not r.guard(emergency):
            return r.skipped()
        u = r.env.updates
        targets = r.select_hosts(hosts, role=u.role)
        with r.stage("pre"):
            targets = _ready_hosts(r, targets, u.min_free_percent, u.on_unreachable)
            if u.backup_first and r.env.mongodb is not None and not dry_run:
                backup(environment=environment, config=config)
            before = r.fan_out("pre", snapshot_packages, targets).succeeded
            notify("system_update", f"{'planning' if dry_run else 'updating'} {len(targets)} host(s) ({scope}): "
                   f"{', '.join(targets)}; services restart host by host")
        with r.stage("plan"):
            plans = {h: o.value for h, o in r.fan_out("plan", plan_updates, targets, scope=scope).succeeded.items()}
            asking = {u_.item_id: u_.describe() for ups in plans.values() for u_ in ups if u_.needs_approval}
            approved = [] if dry_run or u.approvals == "hold" else r.approve_items(asking)
            chosen = {}
            for host, updates in plans.items():
                chosen[host], held = split_plan(updates, approved)
                for x in chosen[host]:
                    r.report.add("plan", x.manager, "planned", host=host, detail=x.describe())
                for hb in held:
                    r.report.add("plan", hb.update.manager, "skipped", host=host, detail=f"{hb.update.describe()}: {hb.reason}")
            if dry_run:
                r.report.outcome = "dry run: plan published, nothing changed"
                return {"plan": {h: [x.describe() for x in ups] for h, ups in plans.items()}}
        with r.stage("execute", disruptive=True):
            services = {h: _services_on(r, h) for h in targets}

            def update_host(host: str) -> dict[str, Any]:
                return _update_one(r, host, services[host], chosen[host], before[host].value)

            try:
                done = r.fan_out("execute", update_host, [h for h in targets if chosen[h]], label="update")
            except FanOutError as exc:
                _report_versions(r, before, chosen, exc.result)  # type: ignore[arg-type]
                raise
            _report_versions(r, before, chosen, done)
        notify("system_update", f"update complete on {len(done.succeeded)} host(s)")
        return {h: o.value for h, o in done.succeeded.items()}


def _ready_hosts(r: Routine, targets: list[str], min_free: float, on_unreachable: str) -> list[str]:
    """Hosts reachable and with enough free disk; an unreachable host stops the run before any
    change (`on_unreachable: stop`) or is left out and reported (`skip`)."""
    try:
        result = r.fan_out("pre", check_disk_space, targets, min_free_percent=min_free)
    except FanOutError as exc:
        if on_unreachable == "stop":
            raise
        result = exc.result  # type: ignore[assignment]
        r.report.notes.append("left out (unreachable): " + ", ".join(result.failed))  # type: ignore[attr-defined]
    low = [h for h, o in result.succeeded.items() if not all(v.ok for v in o.value)]
    if low:
        raise UpkeepError(f"not enough free disk (< {min_free:g}%) on {', '.join(low)}: free space first; nothing was changed")
    return [h for h in targets if h in result.succeeded]


def _services_on(r: Routine, host: str) -> list[str]:
    roles = set(r.res.hosts.get_config(host).roles)  # type: ignore[union-attr]
    return [name for name, svc in r.env.services.items() if svc.monitored and (svc.role or name) in roles]


def _update_one(r: Routine, host: str, services: list[str], updates: list[Any], before: dict[str, dict[str, str]]) -> dict[str, Any]:
    """stop → apply → start → verify; on failure roll back and verify again (then report the host failed)."""
    for s in services:
        service_command(host, s, "stop", purpose="update")
    try:
        after = apply_updates(host, updates)
    finally:
        for s in services:
            service_command(host, s, "start", purpose="update")
    try:
        _verify(r, host, services, "post")
    except UpkeepError as exc:
        for s in services:
            service_command(host, s, "stop", purpose="rollback")
        try:
            rollback_updates(host, before, updates)
        finally:
            for s in services:
                service_command(host, s, "start", purpose="rollback")
        _verify(r, host, services, "rollback")
        raise HostRolledBack(f"{host}: post-update checks failed ({exc}); rolled back to the previous versions and verified") from exc
    return after


def _verify(r: Routine, host: str, services: list[str], stage: str) -> None:
    for s in services:
        verify_service(host, s, stage=stage)
    for t in r.env.updates.smoke_tests:
        if t.service in services:
            smoke_test(host, t.name, t.service, t.path, t.expect_status, stage=stage)


def _report_versions(r: Routine, before: dict[str, Any], chosen: dict[str, list[Any]], result: Any) -> None:
    """Every item per host with its versions before and after (or why it did not change)."""
    for host, updates in chosen.items():
        outcome = result.outcomes.get(host)
        for x in updates:
            old = before[host].value.get(x.manager, {}).get(x.name, x.current) if host in before else x.current
            if outcome is not None and outcome.status.value == "succeeded":
                new = outcome.value.get(x.manager, {}).get(x.name, "?")
                r.report.add("execute", x.name, "done", host=host, detail=f"{x.manager}: {old} → {new}")
            elif outcome is not None and outcome.status.value == "failed":
                r.report.add("execute", x.name, "rolled back", host=host, detail=f"{x.manager}: back to {old}")
            else:
                r.report.add("execute", x.name, "skipped", host=host, detail=f"{x.manager}: still {old} (host not started)")
