"""Serve every deployment from one process (the embedded default used by `make run`).

The schedules come from the inventory the process runs against (`--config`, $UPKEEP_CONFIG or ./upkeep.yaml),
so the served schedules open with the windows its window guard enforces. The serving process only watches
the schedules: every run it starts executes in a process of its own (as with workers), so nothing a run
holds in memory — a connection, a cache — outlives it. The probe agent (`probe_agents`) is what keeps the
health check's SSH connections from one run to the next."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.schedules import Cron

from deployments.limits import ensure_limits
from deployments.specs import DeploymentSpec, deployment_specs
from deployments.watchdog import watch_while_serving
from upkeep.config.loader import config_path, load_inventory
from upkeep.config.models import RUN_HEARTBEAT
from upkeep.decisions.server_access import server_access
from upkeep.errors import ConfigError
from upkeep.hosts.agent_client import agent_sockets

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


def _stop_agent(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the agent's process group (by its PID), SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def probe_agents(config: str | os.PathLike[str] | None = None) -> Iterator[dict[Path, subprocess.Popen[bytes]]]:
    """One `upkeep probe-agent` child per socket the inventory's `monitoring.probe_agent` names (usually one),
    restarted when it dies (after 10 s, doubling up to 5 min while it keeps dying), stopped by PID on exit.
    While one is down the health checks probe cold (upkeep/hosts/agent.py)."""
    path = config_path(config).resolve()
    sockets = agent_sockets(load_inventory(path))
    log = logging.getLogger("upkeep.serve")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    procs: dict[Path, subprocess.Popen[bytes]] = {}
    lock, done = threading.Lock(), threading.Event()

    def start(sock: Path) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "deployments.cli", "--config", str(path), "probe-agent", "--socket", str(sock),
                "--parent", str(os.getpid())]  # its own session (a Ctrl-C is for serve), so it watches serve instead
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)

    def supervise() -> None:
        delay = dict.fromkeys(procs, 10.0)
        due = dict.fromkeys(procs, 0.0)
        while not done.wait(2.0):
            with lock:
                for sock, proc in list(procs.items()):
                    if proc.poll() is None or done.is_set():
                        continue
                    if not due[sock]:
                        due[sock] = time.monotonic() + delay[sock]
                        log.warning("probe agent for %s exited with %s; restarting in %.0f s (health checks probe cold)",
                                    sock, proc.returncode, delay[sock])
                    elif time.monotonic() >= due[sock]:
                        procs[sock], due[sock], delay[sock] = start(sock), 0.0, min(300.0, delay[sock] * 2)

    with lock:
        for sock in sockets:
            procs[sock] = start(sock)
    if procs:
        threading.Thread(target=supervise, name="probe-agents", daemon=True).start()
    try:
        yield procs
    finally:
        with lock:
            done.set()
            for proc in procs.values():
                _stop_agent(proc)


@contextmanager
def approval_relay(config: str | os.PathLike[str] | None = None) -> Iterator[subprocess.Popen[bytes] | None]:
    """`upkeep approvals` beside this process when an environment takes approvals from Slack (one Socket Mode
    connection per app, whatever number of runs wait), stopped by PID on exit, and by itself if this process dies."""
    from deployments.approvals import apps

    path = config_path(config).resolve()
    if not apps(load_inventory(path)):
        yield None
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen([sys.executable, "-m", "deployments.cli", "--config", str(path), "approvals", "--parent",
                             str(os.getpid())], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        _stop_agent(proc)


def check_server_access() -> None:
    """Refuse to serve against a Prefect server others can reach without auth (upkeep.decisions.server_access); say
    so when the loopback one is open."""
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY, PREFECT_API_URL

    def given(value: Any) -> bool:  # a SecretStr from the environment, a str from temporary settings
        return bool(value.get_secret_value() if hasattr(value, "get_secret_value") else value)

    access = server_access(PREFECT_API_URL.value(), auth_string=given(PREFECT_API_AUTH_STRING.value()),
                           api_key=given(PREFECT_API_KEY.value()))
    log = logging.getLogger("upkeep.serve")
    if access.access == "refused":
        raise ConfigError(access.message)
    log.log(logging.WARNING if access.access == "open-loopback" else logging.INFO, "%s", access.message)


def serve_all(*, limit: int | None = None, paused: bool = False) -> None:
    """Register and serve all deployments until interrupted; each run executes in a process of its own, the probe
    agents (`probe_agents`) run beside this process and stop with it."""
    from prefect import serve

    check_server_access()
    os.environ.setdefault("PREFECT_RESULTS_PERSIST_BY_DEFAULT", "true")  # rerun-failed-steps needs results
    # each run's process sends heartbeats this often: the watchdog marks a run Crashed after `crashed_after` without one
    os.environ["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] = str(int(RUN_HEARTBEAT.total_seconds()))
    ensure_limits(load_inventory())  # one disruptive routine per environment at a time (deployments/limits.py)
    watch_while_serving(paused=paused)  # automations the Prefect server runs: missed health checks, late runs
    with probe_agents(), approval_relay():  # warm SSH connections (upkeep/hosts/agent.py); Slack's approval clicks
        serve(*runner_deployments(paused=paused), limit=limit, print_starting_message=False)
