"""Past one machine: for this module, a second Prefect server on PostgreSQL and two `process` workers, each its own
process and working directory, running the deployments `prefect deploy --all` registered from prefect.yaml (paused:
only the runs triggered here execute), with results in S3 (`upkeep results-block`). The runs work on the session
stack's hosts, S3 and database (its inventory); the session's SQLite server is left alone. Stopped by PID at the end."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from sandbox.engine import basic_auth
from sandbox.procs import free_port
from sandbox.stack import Stack, StackSettings
from tests.helpers import slack_calls, wait_for
from tests.integration.test_system_update import HOSTS, history, installed, seeded_fleet
from tests.integration.test_ui import CHROMIUM, SHOTS, chromium
from upkeep.hosts import HostPool
from upkeep.packages import set_fault

pytestmark = pytest.mark.stack


CRASHED_AFTER = "75s"  # the shortest the watchdog allows (two heartbeats and a margin); 90 s by default


@pytest.fixture(scope="module")
def scaled(stack: Stack) -> Iterator[Stack]:
    base = Path(tempfile.mkdtemp(prefix="upkeep-scaleout-"))
    base.chmod(0o755)
    engine = Stack(StackSettings(base, prefect_port=free_port(), components=("prefect",), engine="postgres",
                                 worker_limit=2, paused=True)).up()
    data = yaml.safe_load(stack.inventory_path.read_text())
    data["environments"]["development"]["monitoring"].setdefault("watchdog", {})["crashed_after"] = CRASHED_AFTER
    inventory = base / "upkeep.yaml"
    inventory.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        engine.start_workers(2, {**engine.prefect_env(), **stack.secrets(), "UPKEEP_CONFIG": str(inventory)})
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

    return SyncPrefectClient(stack.prefect_api_url, auth_string=stack.auth_string())


def ran_on(stack: Stack, run_id: Any) -> list[str]:
    """The workers that ran `run_id`: the run's own process writes to its worker's output ("View at …/<run id>");
    every worker may log "submitting" a run it then loses to another."""
    return [log.stem for log in sorted((stack.base / "logs").glob("worker-*.log"))
            if any(str(run_id) in line and "View at" in line for line in log.read_text(errors="replace").splitlines())]


def test_prefect_deploy_all_registered_prefect_yaml_as_it_is(scaled: Stack) -> None:
    """`prefect deploy --all` with prefect.yaml unchanged: every deployment, in the process pool, with the windows'
    schedules (the monthly one: the first Sunday, day_or false), and the job variables every run needs."""
    from deployments.specs import deployment_specs

    with client_of(scaled) as client:
        assert len(client.read_deployments(limit=200)) == len(deployment_specs())
        weekly = client.read_deployment_by_name("weekly-maintenance/weekly-maintenance-production")
        assert weekly.work_pool_name == "upkeep-process" and weekly.parameters == {"environment": "production"}
        assert [s.schedule.cron for s in weekly.schedules] == ["0 2 * * 0"]  # type: ignore[union-attr]
        monthly = client.read_deployment_by_name("monthly-maintenance/monthly-maintenance-production")
        assert [(s.schedule.cron, s.schedule.day_or) for s in monthly.schedules] == [("0 2 1-7 * 0", False)]  # type: ignore[union-attr]
        assert weekly.job_variables == {"env": {
            "PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK": "upkeep-s3-results/upkeep-results-production",
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}}


def test_the_server_refuses_calls_without_its_auth_string_and_they_change_nothing(scaled: Stack) -> None:
    """The production-shaped stack's server asks for an auth string (made for it, kept in a 0600 file, given to the
    workers and the watchdog through their environment): a call without it, or with a wrong one, gets 401 and
    changes nothing; the UI is told to ask for it (its login page); health stays open for probes."""
    api, auth = scaled.prefect_api_url, scaled.auth_string()
    assert auth and (scaled.base / "prefect-auth").stat().st_mode & 0o777 == 0o600
    with client_of(scaled) as client:
        deployment = client.read_deployment_by_name("disk-check/disk-check-development")
        runs_before = len(client.read_flow_runs(limit=200))
    for headers in ({}, basic_auth("upkeep:wrong"), {"Authorization": f"Bearer {auth}"}):
        triggered = httpx.post(f"{api}/deployments/{deployment.id}/create_flow_run", json={}, headers=headers, timeout=30)
        listed = httpx.post(f"{api}/deployments/filter", json={}, headers=headers, timeout=30)
        assert triggered.status_code == listed.status_code == 401, (headers.keys(), triggered.text)
        assert triggered.json() == {"exception_message": "Unauthorized"}
    with client_of(scaled) as client:
        assert len(client.read_flow_runs(limit=200)) == runs_before  # the refused trigger started nothing
    assert httpx.get(f"{api}/health", timeout=30).status_code == 200
    assert httpx.get(f"{api.removesuffix('/api')}/ui-settings", timeout=30).json()["auth"] == "BASIC"
    if CHROMIUM is None:  # everything above held; the page itself needs the browser (reported as skipped, with why)
        pytest.skip("Debian chromium is not installed (make test installs it): the UI's login page was not looked at")
    dom = chromium(f"{api.removesuffix('/api')}/dashboard", screenshot=SHOTS / "scaleout-login.png",
                   until='type="password"')
    assert 'type="password"' in dom and "admin:pass" in dom, dom[-2000:]  # the UI asks for the string first


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


@pytest.fixture
def fleet(stack: Stack, inventory: Any) -> Iterator[HostPool]:
    """The system update's hosts, seeded (tests/integration/test_system_update.py)."""
    yield from seeded_fleet(stack, inventory)


def test_result_block_serves_prefects_sync_and_async_callers(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The block as Prefect's ResultStore uses it from sync code (a step's checkpoints: `_sync=True` calls) and from
    async code (persisted task results): written, found and read back from S3 both ways; a missing key is absent."""
    import asyncio

    from prefect.results import ResultStore

    from upkeep.blocks import S3ResultStorage

    monkeypatch.setenv("UPKEEP_SANDBOX_S3_KEY", stack.secrets()["UPKEEP_SANDBOX_S3_KEY"])
    monkeypatch.setenv("UPKEEP_SANDBOX_S3_SECRET", stack.secrets()["UPKEEP_SANDBOX_S3_SECRET"])
    block = S3ResultStorage(bucket="upkeep-backups", prefix="tests/result-block/", endpoint_url=stack.s3_url,
                            access_key_id="env:UPKEEP_SANDBOX_S3_KEY", secret_access_key="env:UPKEEP_SANDBOX_S3_SECRET")
    block.save("upkeep-results-test", overwrite=True)  # as a run finds it: saved on the server, loaded by name
    block = S3ResultStorage.load("upkeep-results-test")
    store = ResultStore(result_storage=block)
    store.write({"host1": {"openssl": "3.0.15-1"}}, key="checkpoint-1")
    assert store.exists("checkpoint-1") and not store.exists("checkpoint-2")
    assert store.read("checkpoint-1").result == {"host1": {"openssl": "3.0.15-1"}}

    async def round_trip() -> bytes:
        await block.write_path("async-1", b"written awaited")
        return await block.read_path("async-1")

    assert asyncio.run(round_trip()) == b"written awaited"
    listed = stack.s3_client().list_objects_v2(Bucket="upkeep-backups", Prefix="tests/result-block/")
    keys = {o["Key"] for o in listed["Contents"]}
    assert keys == {"tests/result-block/checkpoint-1", "tests/result-block/async-1"}


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children first), from /proc."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in (task / "children").read_text().split() if (task / "children").exists() else []:
            out += [int(child), *descendants(int(child))]
    return out


def runs_in(pid: int, run_id: Any) -> bool:
    """Whether process `pid` executes flow run `run_id` (the worker passes it in the run's environment)."""
    try:
        return f"PREFECT__FLOW_RUN_ID={run_id}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def test_a_run_killed_with_its_worker_crashes_and_its_retry_resumes_on_the_other_at_the_undone_host(
        scaled: Stack, stack: Stack, fleet: HostPool) -> None:
    """A rolling update of four hosts, one at a time, stopped at the third host's apply by killing its worker and the
    run's process together (the worker's machine dying): the watchdog marks the run Crashed from its missing heartbeats,
    and says so in Slack; the UI's Retry (its REST call) resumes it on the surviving worker, which skips the two hosts
    already updated (their package managers' histories: one apply each, over both attempts) and updates the others."""
    root = {h: fleet.get_config(h).vars["root"] for h in HOSTS}
    set_fault(fleet.get("host4"), root["host4"], kind="hold")
    data = yaml.safe_load(stack.inventory_path.read_text())
    data["environments"]["development"].update(max_concurrency=1, updates={
        **data["environments"]["development"]["updates"], "backup_first": False, "approvals": "hold"})
    cfg = scaled.base / "one-at-a-time.yaml"
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    since = datetime.now(UTC)
    with client_of(scaled) as client:
        deployment = client.read_deployment_by_name("system-update/system-update-development")
        run = client.create_flow_run_from_deployment(deployment.id, parameters={
            "hosts": HOSTS, "scope": "security", "config": str(cfg)})
        holding = f"{root['host4']}/packages/holding-apply"


        def at_host4() -> bool:
            state = client.read_flow_run(run.id).state
            assert state is None or not state.is_final(), f"the run ended before host4: {state.name}: {state.message}"
            return fleet.get("host4").run(["test", "-e", holding], check=False).exit_code == 0

        wait_for(at_host4, timeout=240, what="the update to reach host4's apply")
        workers = {p.name: p for p in scaled.procs if p.name.startswith("worker-")}
        (victim,) = [name for name, w in workers.items() if any(runs_in(c, run.id) for c in descendants(w.pid))]
        doomed = [workers[victim].pid, *descendants(workers[victim].pid)]
        for pid in doomed:  # the machine dies: the worker and the run's process, no chance to report anything
            os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        set_fault(fleet.get("host4"), root["host4"], kind="hold", enabled=False)
        assert [[h["action"] for h in history(fleet, x)] for x in HOSTS] == [["apply"], ["apply"], [], []]

        crashed = wait_for(lambda: (s := client.read_flow_run(run.id).state) and s.is_crashed() and s, timeout=240,
                           what="the watchdog to mark the run Crashed")
        took = time.monotonic() - killed
        assert crashed.message and crashed.message.startswith("no heartbeat for 1 min 15 s"), crashed.message
        assert took < 120, f"marked Crashed {took:.0f} s after the kill"
        notice = wait_for(lambda: [c["args"]["text"] for c in slack_calls(stack) if c["method"] == "chat.postMessage"
                                   and datetime.fromisoformat(c["recorded_at"]) > since
                                   and f"Run `{run.name}` of `system-update-development`" in c["args"].get("text", "")],
                          timeout=30, what="the crash notice in Slack")
        assert "a run in development crashed (no heartbeat)" in notice[0] and "Retry" in notice[0], notice

        # the UI's Retry: POST /api/flow_runs/{id}/set_state, AwaitingRetry, forced
        answer = httpx.post(f"{scaled.prefect_api_url}/flow_runs/{run.id}/set_state", timeout=30, json={
            "state": {"type": "SCHEDULED", "name": "AwaitingRetry", "message": "Retry from the UI"}, "force": True},
            headers=basic_auth(scaled.auth_string() or ""))  # as the UI sends it, logged in
        assert answer.status_code in (200, 201) and answer.json()["status"] == "ACCEPT", answer.text
        final = wait_for(lambda: (s := client.read_flow_run(run.id).state) and s.is_final() and s, timeout=300,
                         what="the retried run")
        assert final.is_completed(), final.message
        reports = [a for a in client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
            any_=[run.id]))) if (a.key or "").endswith("-report")]
        report = str(max(reports, key=lambda a: a.created).data)  # the retry's: the killed attempt published none
        for host in ("host1", "host2"):
            assert f"| update | {host} | done |  | done in an earlier attempt of this run |" in report, report
        assert "| openssl | host4 | done | " in report and "| openssl | host5 | done | " in report, report
    survivor = next(name for name in workers if name != victim)
    assert survivor in ran_on(scaled, run.id)
    assert [[h["action"] for h in history(fleet, x)] for x in HOSTS] == [["apply"]] * 4  # host1, host2 not again
    assert all(installed(fleet, h)["openssl"] == "3.0.15-1" for h in HOSTS)
