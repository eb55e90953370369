"""`upkeep demo` (the README's run command): the local stack, the Prefect UI, every deployment
served, and the first routines run against the sandbox."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

from sandbox.procs import spawn
from sandbox.stack import Stack, StackSettings, stop_from_state
from upkeep.decisions.server_access import server_access
from upkeep.routines import BACKUP, CLEAR_CACHE, DISK_CHECK

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

ROOT = Path(__file__).resolve().parent.parent
# a backup first: verification and the DR test, run from the UI, find a verified one
FIRST_RUNS = tuple(spec.deployment_path("development") for spec in (BACKUP, DISK_CHECK, CLEAR_CACHE))


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _wait_for_deployments(names: tuple[str, ...], timeout: float = 120) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        for name in names:
            while True:
                try:
                    client.read_deployment_by_name(name)
                    break
                except ObjectNotFound:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"deployment {name} was not registered within {timeout:g}s") from None
                    time.sleep(1)


def run_demo(base: Path, *, prefect_port: int = 4200, hosts: int = 3, once: bool = False) -> int:
    from prefect.deployments import run_deployment

    if stopped := stop_from_state(base):
        _say(f"stopped {len(stopped)} process(es) left by an earlier demo in {base}")
    _say(f"starting the local stack in {base} (Prefect, SeaweedFS, SecantusDB, {hosts} sshd hosts, stand-in, Slack recorder)…")
    stack = Stack(StackSettings(base, ssh_hosts=hosts, prefect_port=prefect_port)).up()
    ui = f"http://127.0.0.1:{stack.ports['prefect']}"
    env = {**stack.prefect_env(), **stack.secrets(), "UPKEEP_CONFIG": str(stack.inventory_path), "PREFECT_UI_URL": ui}
    os.environ.update(env)
    # a Quick run from the UI starts within 2 s (Prefect's default: the runner looks for work every 10 s)
    server = spawn("serve", [sys.executable, "-m", "deployments.cli", "serve"], base / "logs" / "serve.log",
                   env={**env, "PYTHONPATH": str(ROOT), "PREFECT_RUNNER_POLL_FREQUENCY": "2"}, cwd=ROOT)
    stack.procs.append(server)
    stack.write_state()
    try:
        _wait_for_deployments(FIRST_RUNS)
        _say(f"deployments registered; Prefect UI: {ui}")
        _say(server_access(stack.prefect_api_url, auth_string=False, api_key=False).message)  # the demo's server is open
        ok = True
        for name in FIRST_RUNS:
            run = cast("FlowRun", run_deployment(name, timeout=180))  # a sync caller gets the FlowRun, not a coroutine
            state = run.state
            ok &= bool(state and state.is_completed())
            _say(f"  {name}: {state.name if state else '?'} — {ui}/runs/flow-run/{run.id}")
        _say(f"inventory: {stack.inventory_path}; Slack messages recorded in {base / 'slack-calls.jsonl'}; "
             f"logs in {base / 'logs'}")
        if once:
            return 0 if ok else 1
        _say("open the UI to trigger, inspect, approve or retry runs. Ctrl-C stops everything.")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(1):
                if not server.alive():
                    _say(f"the serving process exited; see {server.log}")
                    return 1
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        _say("stopping the stack…")
        stack.down()
