"""The probe agent's wire format, its refusals, and the health check's choice between warm and cold probes
(upkeep/hosts/agent.py); a real agent on a Unix socket in a temp dir, no SSH server."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes import FakeHost
from upkeep.config import load_inventory
from upkeep.errors import ConfigError, ProbeAgentError
from upkeep.hosts import agent_client as agent_mod
from upkeep.hosts.agent import ProbeAgent
from upkeep.hosts.agent_client import (
    ask,
    decode,
    encode,
    inventory_digest,
    probe_resources,
    results_from_answer,
    usage_from_json,
    usage_to_json,
    warm_candidates,
)
from upkeep.hosts.base import DiskUsage, IOCounters, ResourceUsage
from upkeep.hosts.ssh import SSHHost

USAGE = ResourceUsage("h1", 12.5, 40.0, 8 * 1024**3, 0.3, [DiskUsage("/", 100, 40, 60)], IOCounters(1, 2, 3, 4))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short temp dir (a Unix socket's path is at most 107 bytes; pytest's tmp_path can be longer)."""
    d = Path(tempfile.mkdtemp(prefix="pa-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_inventory(base: Path, *, agent: bool = True, hosts: int = 1) -> Path:
    (base / "known_hosts").write_text("")
    monitoring: dict[str, Any] = {"store": {"uri": "env:NOPE", "databases": ["m"]}}
    if agent:
        monitoring["probe_agent"] = str(base / "agent" / "probe.sock")
    data = {"version": 1, "ssh": {"known_hosts": str(base / "known_hosts"), "connect_timeout": "1s"},
            "environments": {"development": {
                "window": {"always": True}, "emergency": "anytime", "monitoring": monitoring,
                "hosts": [{"name": f"h{i + 1}", "address": "127.0.0.1", "port": 1} for i in range(hosts)]}}}
    path = base / "upkeep.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def running(short_dir: Path) -> Iterator[ProbeAgent]:
    agent = ProbeAgent(write_inventory(short_dir))
    agent.listen()
    thread = threading.Thread(target=agent.serve_forever, daemon=True)
    thread.start()
    yield agent
    agent.shutdown()
    thread.join(5)


# -- wire format -------------------------------------------------------------------------------------
def test_usage_round_trips_through_json() -> None:
    line = encode({"usage": usage_to_json(USAGE)})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert usage_from_json(decode(line.rstrip(b"\n"))["usage"]) == USAGE
    no_io = ResourceUsage("h2", 1.0, 2.0, 3, 0.0)
    assert usage_from_json(usage_to_json(no_io)) == no_io


@pytest.mark.parametrize("bad", [b"not json", b"[1, 2]", b'{"v": 2, "ok": true}', b'{"ok": true}'])
def test_decode_refuses_what_is_not_a_message_of_this_version(bad: bytes) -> None:
    with pytest.raises(ProbeAgentError):
        decode(bad)


@pytest.mark.parametrize("change", [{"cpu_percent": True}, {"cpu_percent": "12"}, {"memory_total_bytes": 1.5},
                                    {"disks": [{"mount": "/"}]}, {"io": {"disk_read_bytes": 1}}, {"host": None, "load_1m": None}])
def test_malformed_usage_is_a_protocol_error(change: dict[str, Any]) -> None:
    with pytest.raises(ProbeAgentError, match="malformed"):
        usage_from_json({**usage_to_json(USAGE), **change})


def test_answers_are_checked_host_by_host() -> None:
    answer = {"ok": True, "results": {"h1": {"usage": usage_to_json(USAGE)}, "h2": {"error": "h2: refused"}}}
    assert results_from_answer(answer, ["h1", "h2"]) == {"h1": USAGE, "h2": "h2: refused"}
    with pytest.raises(ProbeAgentError, match="no result for h3"):
        results_from_answer(answer, ["h1", "h3"])
    with pytest.raises(ProbeAgentError, match="refused: busy"):
        results_from_answer({"ok": False, "error": "busy"}, ["h1"])


# -- warm or cold ------------------------------------------------------------------------------------
def ssh_hosts(n: int, known_hosts: Path) -> dict[str, SSHHost]:
    return {f"h{i + 1}": SSHHost(f"h{i + 1}", "127.0.0.1", port=1, known_hosts=known_hosts, connect_timeout=0.5)
            for i in range(n)}


def test_no_agent_configured_probes_cold_without_a_note() -> None:
    hosts = {"a": FakeHost("a"), "b": FakeHost("b")}
    run = probe_resources(hosts, environment="dev", agent=None, timeout=5, max_concurrency=5)
    assert set(run.results) == {"a", "b"} and run.warm == 0 and run.note is None
    assert all(isinstance(v, ResourceUsage) for v in run.results.values())


def test_only_ssh_hosts_built_from_the_inventory_are_asked(tmp_path: Path) -> None:
    hosts: dict[str, Any] = {"fake": FakeHost("fake"), **ssh_hosts(2, tmp_path / "kh")}
    assert warm_candidates(hosts, None) == []
    assert warm_candidates(hosts, Path("/s")) == ["h1", "h2"]
    asked: list[dict[str, Any]] = []

    def asker(path: Path, message: Any, timeout: float) -> dict[str, Any]:
        asked.append(dict(message))
        return {"ok": True, "results": {n: {"usage": usage_to_json(USAGE)} for n in message["hosts"]}}

    run = probe_resources(hosts, environment="dev", agent=Path("/s"), timeout=5, max_concurrency=5, digest="d", asker=asker)
    assert asked[0]["hosts"] == ["h1", "h2"] and asked[0]["digest"] == "d" and asked[0]["op"] == "probe"
    assert list(run.results) == ["fake", "h1", "h2"] and run.warm == 2 and run.note is None
    assert all(isinstance(v, ResourceUsage) for v in run.results.values())


@pytest.mark.parametrize("failure", ["no socket at /s (agent not running)", "no answer within 7s", "no result for h2"])
def test_an_agent_that_fails_means_cold_probes_and_a_note(tmp_path: Path, failure: str) -> None:
    (tmp_path / "kh").write_text("")

    def asker(path: Path, message: Any, timeout: float) -> dict[str, Any]:
        raise ProbeAgentError(failure)

    run = probe_resources(ssh_hosts(2, tmp_path / "kh"), environment="dev", agent=Path("/s"), timeout=5, max_concurrency=5,
                          asker=asker)
    assert run.warm == 0 and set(run.results) == {"h1", "h2"}
    assert all(isinstance(v, str) and "127.0.0.1:1" in v for v in run.results.values())  # probed cold: refused port
    assert run.note == f"probe agent /s: {failure}; probed 2 hosts cold"


def test_ask_says_why_there_is_no_answer(short_dir: Path) -> None:
    with pytest.raises(ProbeAgentError, match="no socket"):
        ask(short_dir / "none.sock", {"op": "status"}, 1)
    dead = short_dir / "dead.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(dead))
    s.close()  # the file stays, nothing listens: an agent that died
    with pytest.raises(ProbeAgentError, match="nothing listens"):
        ask(dead, {"op": "status"}, 1)
    mute = short_dir / "mute.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(mute))
        server.listen()
        started = time.monotonic()
        with pytest.raises(ProbeAgentError, match="no answer within 0.5s"):
            ask(mute, {"op": "status"}, 0.5)
        assert time.monotonic() - started < 2


def test_garbage_from_the_socket_is_a_protocol_error(short_dir: Path) -> None:
    path = short_dir / "g.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        server.listen()

        def reply() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(1000)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n\n")

        threading.Thread(target=reply, daemon=True).start()
        with pytest.raises(ProbeAgentError, match="not a JSON line"):
            ask(path, {"op": "status"}, 2)


# -- the agent ---------------------------------------------------------------------------------------
def test_agent_socket_is_private_and_answers(running: ProbeAgent) -> None:
    path = running.socket_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    status = ask(path, {"op": "status"}, 2)
    assert status["ok"] and status["pid"] == os.getpid() and status["hosts"] == 0
    inv = load_inventory(running.config)
    answer = ask(path, {"op": "probe", "environment": "development", "hosts": ["h1", "nope"], "timeout": 5,
                        "digest": inventory_digest(inv, "development")}, 7)
    results = results_from_answer(answer, ["h1", "nope"])
    assert "127.0.0.1:1" in str(results["h1"]) and "not an SSH host" in str(results["nope"])  # a per-host error, not a refusal
    assert ask(path, {"op": "status"}, 2)["connects"] == 1


@pytest.mark.parametrize(("request_", "refusal"), [
    ({"op": "run", "argv": ["rm", "-rf", "/"]}, "unknown op"),
    ({"op": "probe", "environment": "development", "hosts": "h1", "timeout": 5}, "hosts"),
    ({"op": "probe", "environment": "development", "hosts": ["h1"], "timeout": 0}, "timeout"),
    ({"op": "probe", "environment": "staging", "hosts": ["h1"], "timeout": 5}, "does not name this agent"),
    ({"op": "probe", "environment": "development", "hosts": ["h1"], "timeout": 5, "digest": "other"}, "differs"),
])
def test_agent_refuses_what_it_should_not_do(running: ProbeAgent, request_: dict[str, Any], refusal: str) -> None:
    answer = ask(running.socket_path, request_, 3)
    assert answer["ok"] is False and refusal in answer["error"]


def test_agent_reloads_a_changed_inventory(running: ProbeAgent) -> None:
    inv = load_inventory(running.config)
    old = inventory_digest(inv, "development")
    write_inventory(running.config.parent, hosts=2)
    os.utime(running.config, ns=(time.time_ns(), time.time_ns() + 10**9))
    new = inventory_digest(load_inventory(running.config), "development")
    assert new != old
    answer = ask(running.socket_path, {"op": "probe", "environment": "development", "hosts": ["h1", "h2"], "timeout": 5,
                                       "digest": new}, 7)
    assert answer["ok"] and set(answer["results"]) == {"h1", "h2"}
    assert ask(running.socket_path, {"op": "status"}, 2)["reloads"] == 1


def test_agent_refuses_a_directory_others_can_enter(short_dir: Path) -> None:
    path = write_inventory(short_dir)
    (short_dir / "agent").mkdir(mode=0o755)
    (short_dir / "agent").chmod(0o755)
    with pytest.raises(ConfigError, match="mode 0700"):
        ProbeAgent(path).listen()


def test_agent_needs_a_socket(short_dir: Path) -> None:
    with pytest.raises(ConfigError, match="no environment sets monitoring.probe_agent"):
        ProbeAgent(write_inventory(short_dir, agent=False))


def test_a_second_agent_on_the_same_socket_is_refused(running: ProbeAgent) -> None:
    with pytest.raises(ProbeAgentError, match="already answers"):
        ProbeAgent(running.config).listen()


def test_socket_path_must_be_absolute_and_short(short_dir: Path) -> None:
    path = write_inventory(short_dir)
    for bad in ("relative/probe.sock", "/" + "x" * 120):
        data = yaml.safe_load(path.read_text())
        data["environments"]["development"]["monitoring"]["probe_agent"] = bad
        path.write_text(yaml.safe_dump(data))
        with pytest.raises(ConfigError, match="probe_agent"):
            load_inventory(path)


def test_idle_connections_are_closed(running: ProbeAgent) -> None:
    ask(running.socket_path, {"op": "probe", "environment": "development", "hosts": ["h1"], "timeout": 5}, 7)
    held = next(iter(running._held.values()))
    held.open, held.last_used = True, time.monotonic() - 10_000  # as if a probe had succeeded long ago
    assert running.close_idle() == 1 and not held.open
    assert agent_mod.MAX_MESSAGE > 240 * 2000  # an answer for 240 hosts fits a line


def test_serve_starts_an_agent_beside_it_and_stops_it_by_pid(short_dir: Path) -> None:
    from deployments.serve import probe_agents

    path = write_inventory(short_dir)
    with probe_agents(path) as procs:
        ((sock, proc),) = procs.items()
        status = wait_status(sock)
        assert status["pid"] == proc.pid and status["inventory"] == str(path.resolve())
    assert proc.poll() is not None and not sock.exists()  # stopped, and its socket removed


def wait_status(sock: Path, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ask(sock, {"op": "status"}, 2)
        except ProbeAgentError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_probe_output_the_parsers_do_not_understand_is_named_and_drops_the_connection(short_dir: Path) -> None:
    from upkeep.hosts.agent import _Held

    agent = ProbeAgent(write_inventory(short_dir))
    inventory = load_inventory(agent.config)
    env_name, env = next(iter(inventory.environments.items()))
    cfg = env.hosts[0]
    host = FakeHost(cfg.name)  # answers every command with empty output: nothing a /proc parser can read
    held = _Held(host, cfg, inventory.ssh, open=True)
    with pytest.raises(ProbeAgentError, match=rf"{cfg.name}: probe output not understood \(ValueError"):
        agent._measure(held)
    assert held.stat is None and host.commands  # it ran the probe, kept no reading
