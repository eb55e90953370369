"""Durable run records in S3 and pruning of old health-check runs from the Prefect database: the
records outlive the runs; prune-runs deletes only the health checks' runs, dry run first."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound

from flows.disk_check import disk_check
from flows.prune_runs import prune_runs
from sandbox.procs import Proc
from sandbox.stack import Stack
from tests.helpers import inventory_variant, report_of
from upkeep.config.loader import load_inventory
from upkeep.resources import Resources
from upkeep.routines import DISK_CHECK, HEALTH_CHECK

pytestmark = pytest.mark.stack


def exists(run_id: UUID) -> bool:
    with get_client(sync_client=True) as client:
        try:
            client.read_flow_run(run_id)
        except ObjectNotFound:
            return False
    return True


def test_every_run_leaves_a_record_matching_its_report(stack: Stack) -> None:
    state = disk_check(environment="development", return_state=True)
    run_id = str(state.state_details.flow_run_id)
    with Resources(load_inventory(str(stack.inventory_path)), "development") as res:
        store = res.run_records()
        assert store is not None
        records = [r for r in store.list("development", DISK_CHECK.id) if r["flow_run_id"] == run_id]
    assert len(records) == 1
    record = records[0]
    assert record["status"] == "completed" and record["routine"] == "disk-check" and record["environment"] == "development"
    report = report_of(state.state_details.flow_run_id).data
    assert record["report_sha256"] == hashlib.sha256(report.encode()).hexdigest()  # the report as published


def test_prune_deletes_old_health_check_runs_only_dry_run_first(stack: Stack, served: Proc, tmp_path: Path) -> None:
    health = [run_deployment(HEALTH_CHECK.deployment_path("development"), timeout=120) for _ in range(2)]
    assert all(r.state is not None and r.state.is_final() for r in health)
    other = disk_check(environment="development", return_state=True).state_details.flow_run_id
    raw = yaml.safe_load(stack.inventory_path.read_text())["environments"]["development"]["monitoring"]
    monitoring = {**raw, "health_runs_kept": "1s"}
    config = inventory_variant(stack, tmp_path / "i.yaml", "development", monitoring=monitoring)
    time.sleep(1.5)  # both ended over a second ago

    planned = prune_runs(environment="development", config=config)  # the default: a dry run
    assert planned["planned"] >= 2 and planned["deleted"] == 0
    assert all(exists(r.id) for r in health)

    done = prune_runs(environment="development", config=config, dry_run=False)
    assert done["deleted"] >= 2
    assert not any(exists(r.id) for r in health)
    assert exists(other)  # a disk check (any routine but the health check) is never pruned
    with Resources(load_inventory(config), "development") as res:
        store = res.run_records()
        assert store is not None
        kept = {r["flow_run_id"] for r in store.list("development", HEALTH_CHECK.id)}
    assert {str(r.id) for r in health} <= kept  # their records outlive them
    again = prune_runs(environment="development", config=config, dry_run=False)
    assert again["planned"] == 0  # nothing left to do: idempotent
