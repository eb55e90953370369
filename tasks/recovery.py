"""Tasks that start and document emergency recovery (Prefect deployments, incident records)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from tasks._base import resources, step
from tasks.notify import run_url
from upkeep.monitoring.rules import AUTO_RECOVER, AlertState
from upkeep.notify import Message
from upkeep.routines import EMERGENCY_RECOVERY, HEALTH_CHECK

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

AUTO = AUTO_RECOVER


@step("auto-recover", retries=0, cache=False, run_name="auto-recover[{host}/{service}]")
def trigger_recovery(host: str, service: str, action: str, failures: int, after: int) -> str:
    """Start the emergency-recovery deployment once per incident, when a service failed `after`
    health checks in a row — not for a host under a maintenance lock (a running maintenance stopped
    it; the reason is returned: 'not recovered: under maintenance by system-update run …'); forget
    the incident when the service is up again."""
    from prefect.deployments import run_deployment

    res = resources()
    store = res.monitoring_store()
    subject = f"{host}/{service}"
    state = store.states(res.environment).get((AUTO, subject), AlertState(AUTO, subject))
    now = datetime.now(UTC)
    if failures == 0:
        if state.status != "ok":
            store.save_states(res.environment, [AlertState(AUTO, subject)])
        return "healthy"
    if failures < after or state.status == "firing":
        return "waiting" if failures < after else "recovery already started"
    locked = store.locked_hosts(res.environment)
    if host in locked:  # a running maintenance stopped it on purpose: not an outage to recover from
        reason = f"not recovered: under maintenance by {locked[host]}"
        get_run_logger().warning("%s failed %d checks in a row, %s", subject, failures, reason)
        return reason
    name = EMERGENCY_RECOVERY.deployment_path(res.environment)
    try:
        run = cast("FlowRun", run_deployment(name, timeout=0, parameters={  # a sync task gets the FlowRun, not a coroutine
            "environment": res.environment, "service": service, "action": action, "hosts": [host],
            "reason": f"{service} on {host} failed {failures} health checks in a row", "triggered_by": "health-check",
        }))
    except ObjectNotFound:
        res.notifier.send(Message(res.environment, HEALTH_CHECK.id, f"{subject} failed {failures} checks in a row, but "
                                  f"{name} is not deployed: recover by hand", "critical", run_url()))
        return "not deployed"
    store.save_states(res.environment, [AlertState(AUTO, subject, "firing", now, now, float(failures))])
    get_run_logger().warning("%s failed %d checks in a row: started %s (flow run %s)", subject, failures, name, run.id)
    res.notifier.send(Message(res.environment, HEALTH_CHECK.id, f"{subject} failed {failures} health checks in a row: "
                              f"emergency recovery ({action}) started", "critical", run_url()))
    return f"started {run.id}"


@step("timeline", retries=1, cache=False)
def run_timeline(flow_run_id: str) -> list[dict[str, Any]]:
    """The run's task states in time order, from the Prefect API (for the incident record)."""
    from uuid import UUID

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])))
    rows = [{"at": tr.start_time or tr.expected_start_time, "step": tr.name, "state": tr.state.name if tr.state else "?"}
            for tr in runs]
    return sorted(rows, key=lambda r: r["at"] or datetime.min.replace(tzinfo=UTC))
