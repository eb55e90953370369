"""Emergency recovery (the guide's Emergency Maintenance): identify the issue, stop the affected
services, apply the fix, verify it holds, restart what was stopped, notify; an incident record
and a post-mortem draft for every run. Started from the UI, or by the health check after N
failed checks in a row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import State, flow
from prefect.artifacts import create_markdown_artifact

from flows._routine import Routine
from tasks._base import run_key
from tasks.hosts import recent_errors, service_command
from tasks.mongo import restore_into_primary
from tasks.monitoring import record_incident
from tasks.notify import run_url
from tasks.recovery import run_timeline
from tasks.s3 import latest_verified_backup
from tasks.services import probe_once, settle
from upkeep.errors import ConfigError, RecoveryFailed, UpkeepError
from upkeep.incident import Incident, new_incident_id
from upkeep.routines import EMERGENCY_RECOVERY

ACTIONS = ("restart", "clear_cache", "rollback", "restore")


def _apply(action: str, host: str, service: str, restartable: bool) -> str:
    """The fix behind one interface: each action ends with the service started."""
    if action == "restart":
        return service_command(host, service, "restart" if restartable else "start", purpose="fix")
    if action == "clear_cache":
        service_command(host, service, "clear_cache", purpose="fix")
    elif action == "rollback":
        service_command(host, service, "rollback", purpose="fix")
    return service_command(host, service, "start", purpose="fix")


@flow(name=EMERGENCY_RECOVERY.flow)
def emergency_recovery(environment: str = "development", service: str = "api", action: str = "restart",
                       hosts: list[str] | None = None, reason: str = "", triggered_by: str = "manual",
                       settle_checks: int = 3, settle_interval_s: float = 2.0,
                       config: str | None = None) -> dict[str, Any] | State:
    with Routine(EMERGENCY_RECOVERY, environment, config) as r:
        if action not in ACTIONS:
            raise ConfigError(f"action {action!r} is not one of {', '.join(ACTIONS)}")
        if service not in r.env.services:
            raise ConfigError(f"service {service!r} is not in environments.{environment}.services")
        if not r.guard(emergency=True, preapproved=action in r.env.emergency_preapproved):
            return r.skipped()
        svc = r.env.services[service]
        targets = r.select_hosts(hosts, role=r.env.service_role(service))
        incident = Incident(new_incident_id(), environment, service, action, reason, triggered_by, datetime.now(UTC))
        monitored = r.env.monitoring is not None
        with r.stage("identify"):
            for host in targets:
                probe = probe_once(host, service)
                if not probe.ok:
                    incident.failing[host] = probe.detail
                incident.recent_errors[host] = recent_errors(host, service)
            affected = [h for h in targets if h in incident.failing] or targets
            if monitored:
                record_incident(incident.incident_id, incident.record(), new=True)
            r.notify(f"{incident.incident_id}: {service} on {', '.join(affected)} — "
                   f"{'; '.join(incident.failing.values()) or 'no failing check; acting on request'}; action {action}",
                   "critical")
        stopped: list[str] = []
        try:
            with r.stage("stop"):
                for host in affected:
                    service_command(host, service, "stop")
                    stopped.append(host)
                    incident.actions.append(f"stopped {service} on {host}")
            with r.stage("fix"):
                if action == "restore":
                    backup_id = latest_verified_backup()
                    if backup_id is None:
                        raise RecoveryFailed("no verified backup to restore from")
                    restore_into_primary(backup_id)
                    incident.actions.append(f"restored the database from verified backup {backup_id}")
                for host in affected:
                    _apply(action, host, service, svc.restart is not None)
                    incident.actions.append(f"{action} of {service} on {host}")
            with r.stage("verify"):
                for host in affected:
                    settle(host, service, settle_checks, settle_interval_s)
                incident.actions.append(f"verified: {settle_checks} healthy checks in a row on {', '.join(affected)}")
            incident.outcome = "resolved"
        except Exception as exc:  # noqa: BLE001 - every failure of the fix escalates: notified, then re-raised as RecoveryFailed
            incident.outcome = f"escalated: {str(exc)[:300]}"
            r.notify(f"{incident.incident_id}: {action} did not fix {service} ({str(exc)[:200]}); "
                   "ESCALATED to the on-call engineer", "critical")
            raise RecoveryFailed(f"{incident.incident_id}: {exc}") from exc
        finally:
            with r.stage("restart"):
                # nothing stays stopped that was running before: when the fix was not verified,
                # start (idempotently) every service this run stopped
                if incident.outcome == "resolved":
                    stopped.clear()  # verified running
                for host in list(stopped):
                    try:
                        service_command(host, service, "start", purpose="restart after a failed fix")
                        stopped.remove(host)
                        incident.actions.append(f"started {service} on {host} again")
                    except UpkeepError as exc:
                        incident.left_stopped.append(f"{service} on {host}: start failed: {exc}")
            incident.closed_at = datetime.now(UTC)
            _close(r, incident, monitored)
        r.notify(f"{incident.incident_id}: RESOLVED — {service} healthy on {', '.join(affected)} after {action}",
                 "resolved")
        return {"incident_id": incident.incident_id, "outcome": incident.outcome, "hosts": affected}


def _close(r: Routine, incident: Incident, monitored: bool) -> None:
    """Record the incident and publish the post-mortem draft (also when the recovery failed)."""
    if monitored:
        record_incident(incident.incident_id, incident.record())
    timeline = run_timeline(run_key())
    create_markdown_artifact(incident.postmortem(timeline, run_url()), key=f"postmortem-{r.environment}",
                             description=f"post-mortem draft of {incident.incident_id}")
    r.report.notes.append(f"incident {incident.incident_id}: {incident.outcome}")
    r.report.notes += [f"left stopped: {x}" for x in incident.left_stopped]
