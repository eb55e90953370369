"""Tasks that touch the Prefect API's flow runs: the old runs of a deployment, deleted in batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterEndTime,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound

from tasks._base import step

PAGE = 200  # the Prefect API's largest page
FINAL = [StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED]


@step("old-runs", retries=1, cache=False)
def old_runs(deployment: str, before: datetime, limit: int) -> list[str]:
    """The ids of the finished runs of `deployment` (`flow/name`) that ended before `before`, oldest
    first, at most `limit`; none when the deployment does not exist."""
    with get_client(sync_client=True) as client:
        try:
            found = client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            get_run_logger().info("no deployment %s: nothing to prune", deployment)
            return []
        flt = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[found.id]),
                            end_time=FlowRunFilterEndTime(before_=before),
                            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=FINAL)))
        runs: list[Any] = []
        while len(runs) < limit:  # the API returns at most PAGE runs a call
            page = client.read_flow_runs(flow_run_filter=flt, sort=FlowRunSort.START_TIME_ASC,
                                         limit=min(PAGE, limit - len(runs)), offset=len(runs))
            runs += page
            if len(page) < PAGE:
                break
    return [str(r.id) for r in runs]


@step("delete-runs", retries=1, cache=False)
def delete_runs(run_ids: list[str], dry_run: bool = True) -> int:
    """Delete these flow runs (their task runs, states and logs go with them); a run already gone
    counts as deleted, so a retried or repeated prune finishes what an interrupted one began."""
    logger = get_run_logger()
    if dry_run:
        logger.info("dry run: would delete %d flow run(s)", len(run_ids))
        return 0
    deleted = 0
    with get_client(sync_client=True) as client:
        for run_id in run_ids:
            try:
                client.delete_flow_run(UUID(run_id))
            except ObjectNotFound:
                pass  # deleted by an earlier attempt
            deleted += 1
    logger.info("deleted %d flow run(s)", deleted)
    return deleted
