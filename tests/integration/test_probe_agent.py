"""Warm probes (upkeep/hosts/agent.py) on the real stack: the health check asks a running probe agent,
gets the same host samples as cold probes, the agent keeps one connection per host across runs, and
with the agent killed the next health check probes every host cold and says so in its log."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil
import pymongo
import pytest
import yaml

from flows.health_check import health_check
from sandbox.procs import Proc, spawn
from sandbox.stack import Stack
from tests.helpers import wait_for
from upkeep.errors import ProbeAgentError
from upkeep.hosts.agent import STAT_MIN_SECONDS
from upkeep.hosts.agent_client import ask
from upkeep.monitoring.store import MonitoringStore

pytestmark = pytest.mark.stack
ROOT = Path(__file__).resolve().parents[2]
DB = "mon_probe_agent"


@dataclass
class Setup:
    cold: str
    warm: str
    socket: Path
    agent: Proc


def variant(stack: Stack, path: Path, socket_path: Path | None) -> str:
    """The stack's inventory with every environment's probe agent at `socket_path` (None: cold probes,
    whatever agent the session's serving process runs), development's own monitoring database."""
    data = yaml.safe_load(stack.inventory_path.read_text())
    for env in data["environments"].values():
        if "monitoring" in env:
            env["monitoring"] = {**env["monitoring"], "probe_agent": str(socket_path) if socket_path else None}
    monitoring = data["environments"]["development"]["monitoring"]
    data["environments"]["development"]["monitoring"] = {**monitoring, "auto_recover": None,
                                                         "store": {**monitoring["store"], "databases": [DB]}}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


@pytest.fixture(scope="module")
def setup(stack: Stack) -> Iterator[Setup]:
    socket_path = stack.base / "pa" / "probe.sock"
    warm = variant(stack, stack.base / "upkeep-probe-warm.yaml", socket_path)
    agent = spawn("probe-agent", [sys.executable, "-m", "deployments.cli", "--config", warm, "probe-agent"],
                  stack.base / "logs" / "probe-agent.log", env={"PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        try:
            wait_for(lambda: agent_status(socket_path), timeout=30, what="the probe agent's socket")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; its log: {(stack.base / 'logs' / 'probe-agent.log').read_text()[-2000:]}") from exc
        yield Setup(variant(stack, stack.base / "upkeep-probe-cold.yaml", None), warm, socket_path, agent)
    finally:
        agent.stop()


def agent_status(path: Path) -> dict[str, Any] | None:
    try:
        return ask(path, {"op": "status"}, 2)
    except ProbeAgentError:
        return None


def host_samples(stack: Stack, config: str) -> tuple[set[tuple[str, str]], dict[str, float], UUID]:
    """One health check: its host samples as (host, metric) pairs, each host's `up`, and the flow run's id."""
    start = datetime.now(UTC)
    state = health_check(environment="development", config=config, return_state=True)
    assert state.is_completed(), state.message
    with pymongo.MongoClient(stack.mongo_uri) as client:
        docs = [d for d in MonitoringStore(client, DB).since("development", start) if d["meta"]["target"] == "host"]
    pairs = {(d["meta"]["host"], d["meta"]["metric"]) for d in docs}
    up = {d["meta"]["host"]: d["value"] for d in docs if d["meta"]["metric"] == "up"}
    return pairs, up, state.state_details.flow_run_id


def agent_connections(pid: int, port: int) -> set[int]:
    """The local ports of the agent's established TCP connections to the sshd hosts."""
    return {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.raddr and c.raddr.port == port}


def run_logs(run_id: UUID) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        return [log.message for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))]


def test_warm_probes_match_cold_and_keep_their_connections(stack: Stack, setup: Setup) -> None:
    assert stack.fleet is not None
    names = {h.name for h in stack.fleet.hosts}
    host_samples(stack, setup.cold)  # the first run has no I/O counters to take rates from
    cold, cold_up, _ = host_samples(stack, setup.cold)
    assert cold_up == dict.fromkeys(names, 1.0)

    warm1, warm_up, run1 = host_samples(stack, setup.warm)
    ports1 = agent_connections(setup.agent.pid, stack.fleet.port)
    # readings closer than STAT_MIN_SECONDS are probed in full by design; a fast machine gets there sooner
    time.sleep(STAT_MIN_SECONDS)
    warm2, _, _ = host_samples(stack, setup.warm)
    ports2 = agent_connections(setup.agent.pid, stack.fleet.port)
    assert warm1 == cold and warm2 == cold and warm_up == cold_up  # the same samples, host by host
    status = agent_status(setup.socket)
    assert status is not None
    assert status["requests"] == 2 and status["connects"] == len(names) and status["reconnects"] == 0, status
    # the first probe of a host reads /proc/stat twice (0.2 s apart); the second, a snapshot against the first
    assert status["full_probes"] == len(names) and status["snapshots"] == len(names), status
    assert len(ports1) == len(names) and ports2 == ports1  # the same TCP connections: one login per host in all
    wait_for(lambda: [m for m in run_logs(run1) if f"{len(names)} by the probe agent, 0 cold" in m], timeout=30,
             what="the warm run's log line")

    os.kill(setup.agent.pid, signal.SIGKILL)  # a crash: the socket file stays, nothing listens
    setup.agent.popen.wait(10)
    started = time.monotonic()
    after, after_up, run3 = host_samples(stack, setup.warm)
    assert after == cold and after_up == cold_up  # still every host, probed cold
    assert time.monotonic() - started < 30

    def fallback_logged() -> list[str]:
        return [m for m in run_logs(run3) if "probe agent" in m and f"probed {len(names)} hosts cold" in m]

    lines = wait_for(fallback_logged, timeout=30, what="the cold fallback's warning")
    assert "nothing listens" in lines[0]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_an_agent_stops_when_the_serving_process_that_started_it_dies(stack: Stack, tmp_path: Path) -> None:
    """`upkeep serve` starts its agent in a session of its own with `--parent`: serve killed (no clean-up runs), the
    agent notices it was handed to init and stops, removing its socket, instead of holding SSH connections forever."""
    socket_path = stack.base / "pa-parent" / "probe.sock"
    config = variant(stack, tmp_path / "upkeep.yaml", socket_path)
    parent = spawn("fake-serve", [sys.executable, "-c", (
        "import os, subprocess, sys, time\n"
        "agent = subprocess.Popen([sys.executable, '-m', 'deployments.cli', '--config', sys.argv[1], 'probe-agent',"
        " '--parent', str(os.getpid())], start_new_session=True)\n"
        "print(agent.pid, flush=True)\n"
        "time.sleep(600)\n"), config], tmp_path / "fake-serve.log", env={"PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        wait_for(lambda: agent_status(socket_path), timeout=30, what="the probe agent's socket")
        agent = int((tmp_path / "fake-serve.log").read_text().split()[0])
        os.kill(parent.pid, signal.SIGKILL)
        parent.popen.wait(10)
        wait_for(lambda: gone(agent), timeout=15, what="the orphaned agent to stop")
        assert not socket_path.exists()
    finally:
        parent.stop()
