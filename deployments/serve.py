"""Serve every deployment from one process (the embedded default used by `make run`).

The schedules come from the inventory the process runs against (`--config`, $UPKEEP_CONFIG or ./upkeep.yaml),
so the served schedules open with the windows its window guard enforces."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.schedules import Cron

from deployments.specs import DeploymentSpec, deployment_specs
from upkeep.config.loader import load_inventory

ROOT = Path(__file__).resolve().parent.parent


def served_specs(config: str | os.PathLike[str] | None = None) -> list[DeploymentSpec]:
    """The deployments of the inventory this process runs against: `config`, else $UPKEEP_CONFIG, else ./upkeep.yaml
    (ConfigError without one: the served routines could not run either)."""
    return deployment_specs(load_inventory(config))


def runner_deployments(specs: list[DeploymentSpec] | None = None, *, paused: bool = False) -> list[Any]:
    """RunnerDeployments for `prefect.serve`, loaded from the same entrypoints as prefect.yaml (default: `served_specs()`)."""
    out = []
    for spec in specs if specs is not None else served_specs():
        flow: Flow[..., Any] = load_flow_from_entrypoint(str(ROOT / spec.routine.entrypoint), use_placeholder_flow=False)
        out.append(flow.to_deployment(
            name=spec.name,
            schedules=[Cron(spec.cron, timezone=spec.timezone, day_or=spec.day_or)] if spec.cron else [],
            parameters=spec.parameters,
            tags=spec.tags,
            description=spec.routine.description,
            paused=paused,
        ))
    return out


def serve_all(*, limit: int | None = None, paused: bool = False) -> None:
    """Register and serve all deployments until interrupted (runs are executed in this process)."""
    from prefect import serve

    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")  # rerun-failed-steps needs results
    serve(*runner_deployments(paused=paused), limit=limit, print_starting_message=False)
