"""Past one machine: for this module, a second Prefect server on PostgreSQL and two `process` workers, each its own
process and working directory, running the deployments `prefect deploy --all` registered from prefect.yaml (paused:
only the runs triggered here execute), with results in S3 (`upkeep results-block`). The runs work on the session
stack's hosts, S3 and database (its inventory); the session's SQLite server is left alone. Stopped by PID at the end."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.procs import free_port
from sandbox.stack import Stack, StackSettings

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def scaled(stack: Stack) -> Iterator[Stack]:
    base = Path(tempfile.mkdtemp(prefix="upkeep-scaleout-"))
    base.chmod(0o755)
    engine = Stack(StackSettings(base, prefect_port=free_port(), components=("prefect",), engine="postgres",
                                 worker_limit=2, paused=True)).up()
    try:
        engine.start_workers(2, {**engine.prefect_env(), **stack.secrets(), "UPKEEP_CONFIG": str(stack.inventory_path)})
        yield engine
    finally:
        pids = engine.pids()
        engine.down()
        shutil.rmtree(base, ignore_errors=True)
        left = [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text()]
        assert not left, f"scale-out processes left running: {left}"


def client_of(stack: Stack) -> Any:
    """A Prefect client of this stack's server (the session's tests talk to the other one)."""
    from prefect.client.orchestration import SyncPrefectClient

    return SyncPrefectClient(stack.prefect_api_url)


def ran_on(stack: Stack, run_id: Any) -> list[str]:
    """The workers that ran `run_id`: the run's own process writes to its worker's output ("View at …/<run id>");
    every worker may log "submitting" a run it then loses to another."""
    return [log.stem for log in sorted((stack.base / "logs").glob("worker-*.log"))
            if any(str(run_id) in line and "View at" in line for line in log.read_text(errors="replace").splitlines())]


def test_runs_go_to_whichever_worker_is_free_both_used(scaled: Stack) -> None:
    """Four runs, two workers taking two at a time: each run ran once, and both workers ran some."""
    with client_of(scaled) as client:
        assert client.read_work_pool("upkeep-process").type == "process"
        deployment = client.read_deployment_by_name("disk-check/disk-check-development")
        assert deployment.paused and deployment.work_pool_name == "upkeep-process"
        runs = [client.create_flow_run_from_deployment(deployment.id) for _ in range(4)]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            states = [client.read_flow_run(r.id).state for r in runs]
            if all(s is not None and s.is_final() for s in states):
                break
            time.sleep(1)
        assert all(s is not None and s.is_completed() for s in states), [s and s.name for s in states]
    assert all(len(ran_on(scaled, r.id)) == 1 for r in runs), {str(r.id): ran_on(scaled, r.id) for r in runs}
    used = {w for r in runs for w in ran_on(scaled, r.id)}
    assert used == {"worker-1", "worker-2"}, {str(r.id): ran_on(scaled, r.id) for r in runs}
    assert (scaled.base / "workers" / "worker-1").is_dir() and (scaled.base / "workers" / "worker-2").is_dir()


def test_results_of_worker_runs_are_in_s3(scaled: Stack, stack: Stack) -> None:
    """The deployments name each environment's result block (prefect.yaml's job variables): the runs above stored their
    task results as objects under the run records' prefix, where a worker on another machine finds them."""
    with client_of(scaled) as client:
        block = client.read_block_document_by_name("upkeep-results-development", "upkeep-s3-results")
        assert block.data["bucket"] == "upkeep-backups" and block.data["access_key_id"] == "env:UPKEEP_SANDBOX_S3_KEY"
    listed = stack.s3_client().list_objects_v2(Bucket="upkeep-backups", Prefix="event-manager/_runs/development/results/")
    assert listed.get("KeyCount", 0) >= 4, listed.get("KeyCount")  # at least one result per run
