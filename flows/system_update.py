"""System update (the guide's Update Procedure and Dependency Management; the Event Editor's
SystemUpdater): rolling across hosts in batches, inside the window, with approvals for major
and kernel updates, verification after each host, and rollback of a host whose checks fail.

pre: window guard · reachability, disk space and a snapshot of versions (one pass) · backup · notify
plan: what would change, classified; the promotion gate (versions another environment proved); approvals
asked once; dry_run stops here
execute + post, host by host (max_concurrency at once, error budget max_errors; none starts after
the window's cutoff):
    stop services → apply → start → verify (health within 200 ms, smoke tests)
    → on any failure after the first change: rollback to the exact previous versions → verify again
post: each updated host's clean-up (apt autoremove, listed first, and clean)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import State, flow

from flows._routine import Routine
from flows.backup import backup
from tasks.packages import check_hosts, clean_up, plan_updates, rolling_update
from tasks.s3 import promotion_evidence
from upkeep.errors import FanOutError, UpkeepError
from upkeep.humanize import duration
from upkeep.packages import PackageUpdate, Scope, approval_request, split_plan
from upkeep.packages.promotion import promotion_gate
from upkeep.packages.rolling import HostRolledBack
from upkeep.routines import SYSTEM_UPDATE, update_routine


@flow(name=SYSTEM_UPDATE.flow)
def system_update(environment: str = "development", config: str | None = None, hosts: list[str] | None = None,
                  scope: Scope = "all", emergency: bool = False, dry_run: bool = False) -> dict[str, Any] | State:
    with Routine(update_routine(scope), environment, config, dry_run=dry_run) as r:
        if not r.guard(emergency):
            return r.skipped()
        u = r.env.updates
        targets = r.select_hosts(hosts, role=u.role)
        with r.stage("pre"):
            ready = _ready_hosts(r, targets, u.min_free_percent, u.on_unreachable)
            targets, before = list(ready), {h: x.installed for h, x in ready.items()}
            if u.backup_first and r.env.mongodb is not None and not dry_run:
                backup(environment=environment, config=config)
            r.notify(f"{'planning' if dry_run else 'updating'} {len(targets)} host(s) "
                   f"({scope}): {', '.join(targets)}; services restart host by host")
        with r.stage("plan"):
            plans = r.group(plan_updates, targets, scope=scope).returned()
            gated = _promotion_gate(r, plans) if u.promotion is not None else {}
            plans = {h: [x for x in ups if x.versioned_id not in gated] for h, ups in plans.items()}
            asking, valid = approval_request(plans)
            approved = [] if dry_run or u.approvals == "hold" else r.approve_items(asking, "updates", valid)
            chosen = {}
            for host, updates in plans.items():
                chosen[host], held = split_plan(updates, approved)
                for x in chosen[host]:
                    why = _why(x, approved)
                    r.report.add("plan", x.manager, "planned", host=host, detail=f"{x.describe()}{_origin(x)}: {why}")
                for hb in held:
                    r.report.add("plan", hb.update.manager, "skipped", host=host, detail=f"{hb.update.describe()}: {hb.reason}")
            if dry_run:
                r.report.outcome = "dry run: plan published, nothing changed"
                return {"plan": {h: [x.describe() for x in ups] for h, ups in plans.items()}}
        with r.stage("execute", disruptive=True):
            jobs = {h: chosen[h] for h in targets if chosen[h]}
            try:
                window = None if r.override else r.env.window.to_window()  # no host starts after its cutoff
                done = r.group(rolling_update, jobs, label="update", before=before, window=window)
            except FanOutError as exc:
                _report_versions(r, before, jobs, exc.result)
                r.report.facts["applied"] = _applied(jobs, exc.result)
                r.notify(_failure_notice(exc.result), "critical")
                raise
            _report_versions(r, before, jobs, done)
            r.report.facts["applied"] = _applied(jobs, done)
        with r.stage("post"):
            updated = [h for h in jobs if h in done.succeeded]
            r.group(clean_up, updated, managers=sorted({x.manager for h in updated for x in jobs[h]}))
        r.notify(f"update complete on {len(done.succeeded)} host(s)")
        return {h: o.value for h, o in done.succeeded.items()}


def _promotion_gate(r: Routine, plans: dict[str, list[PackageUpdate]]) -> dict[str, str]:
    """The planned versions another environment has not proven long enough ago (versioned id → why held),
    each reported as held on its hosts with the date it becomes eligible."""
    gate_cfg = r.env.updates.promotion
    assert gate_cfg is not None
    evidence = {k: datetime.fromisoformat(v) for k, v in promotion_evidence(gate_cfg.from_environment).items()}
    held: dict[str, str] = {}
    for host, updates in plans.items():
        gate = promotion_gate(updates, evidence, datetime.now(UTC), gate_cfg.min_age, gate_cfg.from_environment)
        for h in gate.held:
            held[h.update.versioned_id] = h.reason
            r.report.add("plan", h.update.manager, "skipped", host=host, detail=f"{h.update.describe()}: {h.reason}")
    if held:
        r.report.notes.append(f"held by the promotion gate ({gate_cfg.from_environment} first, "
                              f"{duration(gate_cfg.min_age)}): " + ", ".join(sorted(held)))
    return held


def _origin(x: PackageUpdate) -> str:
    """` from stable-security`: where the version comes from, when the source says (apt's suite)."""
    return f" from {x.source}" if x.source else ""


def _why(x: PackageUpdate, approved: list[str]) -> str:
    """Why a planned item goes ahead: the policy lets its kind through, or it was approved in this run."""
    if x.item_id in approved or x.versioned_id in approved:
        return "approved in this run (who and why: the report's approval note)"
    return f"automatic: the policy applies {x.kind} updates without an approval"


def _applied(jobs: dict[str, list[PackageUpdate]], result: Any) -> list[str]:
    """The versions this run applied successfully: on every host that succeeded, and on no host that failed
    or was rolled back (what a promotion gate elsewhere may cite)."""
    good = {x.versioned_id for h, ups in jobs.items() if h in result.succeeded for x in ups}
    bad = {x.versioned_id for h, ups in jobs.items() if h in result.failed for x in ups}
    return sorted(good - bad)


def _ready_hosts(r: Routine, targets: list[str], min_free: float, on_unreachable: str) -> dict[str, Any]:
    """host → HostReadiness of the hosts reachable and with enough free disk; an unreachable host
    stops the run before any change (`on_unreachable: stop`) or is left out and reported (`skip`)."""
    try:
        result = r.group(check_hosts, targets, min_free_percent=min_free)
    except FanOutError as exc:
        if on_unreachable == "stop":
            raise
        result = exc.result
        r.report.notes.append("left out (unreachable): " + ", ".join(result.failed))
    low = [h for h, ready in result.returned().items() if not ready.ok]
    if low:
        raise UpkeepError(f"not enough free disk (< {min_free:g}%) on {', '.join(low)}: free space first; nothing was changed")
    return {h: result.succeeded[h].value for h in targets if h in result.succeeded}


def _failure_notice(result: Any) -> str:
    """Which hosts failed, which of them are back on their previous versions, how many were updated."""
    rolled = [h for h, o in result.failed.items() if isinstance(o.error, HostRolledBack)]
    return (f"update FAILED on {len(result.failed)} host(s): {', '.join(result.failed)}"
            + (f"; rolled back and verified: {', '.join(rolled)}" if rolled else "")
            + f"; {len(result.succeeded)} updated; see the run's report")


def _report_versions(r: Routine, before: dict[str, Any], chosen: dict[str, list[Any]], result: Any) -> None:
    """Every item per host with its versions before and after (or why it did not change)."""
    for host, updates in chosen.items():
        outcome = result.outcomes.get(host)
        for x in updates:
            old = before.get(host, {}).get(x.manager, {}).get(x.name, x.current)
            if outcome is not None and outcome.status.value == "succeeded":
                new = outcome.value.get(x.manager, {}).get(x.name, "?")
                r.report.add("execute", x.name, "done", host=host, detail=f"{x.manager}: {old} → {new}{_origin(x)}")
            elif outcome is not None and isinstance(outcome.error, HostRolledBack):
                r.report.add("execute", x.name, "rolled back", host=host, detail=f"{x.manager}: back to {old}")
            elif outcome is not None and outcome.status.value == "failed":
                r.report.add("execute", x.name, "failed", host=host,
                             detail=f"{x.manager}: was {old}; not rolled back: {outcome.message}"[:300])
            else:
                r.report.add("execute", x.name, "skipped", host=host, detail=f"{x.manager}: still {old} (host not started)")
