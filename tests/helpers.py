"""Small helpers for the integration tests: the stand-in's state, flow runs through the API."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import yaml

from sandbox.stack import Stack


def standin(stack: Stack, i: int, control: str | None = None, **body: Any) -> dict[str, Any]:
    """GET the stand-in's state on app host i, or POST a control action."""
    url = f"{stack.standin_url(i)}/_control/{control or 'state'}"
    data = json.dumps(body).encode() if control else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def slack_calls(stack: Stack) -> list[dict[str, Any]]:
    with urllib.request.urlopen(stack.slack_url.replace("/api/", "/_calls"), timeout=5) as resp:
        return json.load(resp)


def inventory_variant(stack: Stack, path: Path, env: str, **changes: Any) -> str:
    """The stack's inventory with `changes` merged into one environment, written to `path`."""
    data = yaml.safe_load(stack.inventory_path.read_text())
    data["environments"][env].update(changes)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def wait_for(check: Callable[[], Any], timeout: float = 60, interval: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def flow_run_state(run_id: UUID) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(run_id).state


def latest_flow_run(flow_name: str, state_type: str | None = None, after: datetime | None = None) -> Any:
    """The newest run of a flow (in a state type; started after `after`)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterStartTime,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    run_filter = None
    if state_type or after:
        run_filter = FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[state_type])) if state_type else None,
            start_time=FlowRunFilterStartTime(after_=after) if after else None)
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow_name])),
                                     flow_run_filter=run_filter, sort=FlowRunSort.START_TIME_DESC, limit=1)
    return runs[0] if runs else None


def artifacts_of(run_id: UUID) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))


def task_runs_of(run_id: UUID) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))


def deployment_exists(client: Any, name: str) -> bool:
    from prefect.exceptions import ObjectNotFound

    try:
        return bool(client.read_deployment_by_name(name))
    except ObjectNotFound:
        return False


def report_of(run_id: UUID) -> Any:
    """The routine report (markdown artifact keyed `<routine>-<env>-report`) of a flow run: the newest
    one (a retried run publishes one per attempt)."""
    reports = [a for a in artifacts_of(run_id) if a.type == "markdown" and (a.key or "").endswith("-report")]
    return max(reports, key=lambda a: a.created)


def settled_task_runs(run_id: UUID, timeout: float = 60) -> list[Any]:
    """The flow run's task runs once the server has caught up with their events: every one in a
    final state (the server records task runs from events, asynchronously, after the flow ended)."""
    def settled() -> list[Any] | None:
        runs = task_runs_of(run_id)
        return runs if runs and all(tr.state is not None and tr.state.is_final() for tr in runs) else None

    return wait_for(settled, timeout=timeout, interval=1, what="task runs recorded by the server")


def answered(run: Callable[[], Any], flow_name: str, answer: dict[str, Any], timeout: float = 90) -> Any:
    """Run a flow that asks for an approval (in a thread); answer it through Prefect's run input, as the UI does;
    its final state."""
    import threading

    from prefect.flow_runs import resume_flow_run

    box: dict[str, Any] = {}
    since = datetime.now(UTC) - timedelta(seconds=1)  # not a paused run an earlier test left behind
    thread = threading.Thread(target=lambda: box.update(state=run()), daemon=True)
    thread.start()
    paused = wait_for(lambda: latest_flow_run(flow_name, "PAUSED", after=since), timeout=timeout,
                      what=f"a paused {flow_name} run")
    resume_flow_run(paused.id, run_input=answer)
    thread.join(timeout + 30)
    return box["state"]


def findings_of(state: Any) -> str:
    """The findings report (markdown artifact `<routine>-<env>-findings`) of a security run."""
    arts = [a for a in artifacts_of(state.state_details.flow_run_id) if (a.key or "").endswith("-findings")]
    assert arts, "no findings artifact"
    return str(max(arts, key=lambda a: a.created).data)


def clear_security_store(stack: Stack) -> None:
    """No security findings and no approved baseline in the stack's monitoring store."""
    import pymongo

    with pymongo.MongoClient(stack.mongo_uri) as client:
        db = client["upkeep_monitoring"]
        db.security_findings.delete_many({})
        db.security_baselines.delete_many({})
