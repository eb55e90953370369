"""The probe agent's protocol and client side: messages, the inventory digest, asking the agent,
and `probe_resources`, which probes warm through the agent or cold without it (the server is
`upkeep.hosts.agent`, whose docstring tells the design)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from upkeep.config.models import Inventory, SSHSettings
from upkeep.errors import ConfigError, ProbeAgentError
from upkeep.hosts.base import DiskUsage, Host, IOCounters, ResourceUsage
from upkeep.hosts.fanout import fan_out
from upkeep.hosts.ssh import SSHHost

log = logging.getLogger("upkeep.probe_agent")

PROTOCOL = 1
MAX_MESSAGE = 4 * 1024 * 1024  # a probe answer is ~1 KB per host
REQUEST_READ_SECONDS = 10.0  # a client has this long to send its request line
ANSWER_MARGIN = 2.0  # the client waits the request's timeout plus this before it gives up on the agent
MAX_HOSTS = 1000

Result = ResourceUsage | str  # a host's usage, or why there is none


# -- the wire format ---------------------------------------------------------------------------------
def encode(message: Mapping[str, Any]) -> bytes:
    """One message as a JSON line."""
    return json.dumps({"v": PROTOCOL, **message}, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    """A JSON line as a message of this protocol's version (ProbeAgentError otherwise)."""
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProbeAgentError(f"not a JSON line: {exc}") from exc
    if not isinstance(value, dict):
        raise ProbeAgentError("not a JSON object")
    if value.get("v") != PROTOCOL:
        raise ProbeAgentError(f"protocol version {value.get('v')!r}, this side speaks {PROTOCOL}")
    return value


def read_line(sock: socket.socket, deadline: float) -> bytes:
    """Bytes up to the first newline, within `deadline` (time.monotonic) and MAX_MESSAGE."""
    buf = bytearray()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no complete line in time")
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ProbeAgentError("the connection closed before a complete line")
        buf += chunk
        if len(buf) > MAX_MESSAGE:
            raise ProbeAgentError(f"a line longer than {MAX_MESSAGE} bytes")
    return bytes(buf[:buf.index(b"\n")])


def usage_to_json(usage: ResourceUsage) -> dict[str, Any]:
    return dataclasses.asdict(usage)


def _num(d: Mapping[str, Any], key: str, kind: type[int] | type[float]) -> Any:
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not isinstance(value, int)):
        raise TypeError(f"{key} is {value!r}, not a number")
    return kind(value)


def usage_from_json(d: Any) -> ResourceUsage:
    """The inverse of `usage_to_json`; ProbeAgentError for anything else."""
    try:
        disks = [DiskUsage(mount=str(x["mount"]), total_bytes=_num(x, "total_bytes", int), used_bytes=_num(x, "used_bytes", int),
                           free_bytes=_num(x, "free_bytes", int), inodes_total=int(x.get("inodes_total", 0)),
                           inodes_used=int(x.get("inodes_used", 0))) for x in d["disks"]]
        io = d.get("io")
        return ResourceUsage(
            host=str(d["host"]), cpu_percent=_num(d, "cpu_percent", float), memory_percent=_num(d, "memory_percent", float),
            memory_total_bytes=_num(d, "memory_total_bytes", int), load_1m=_num(d, "load_1m", float), disks=disks,
            io=None if io is None else IOCounters(*(_num(io, k, int) for k in (
                "disk_read_bytes", "disk_write_bytes", "net_rx_bytes", "net_tx_bytes"))),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProbeAgentError(f"malformed resource usage: {exc!r}") from exc


def inventory_digest(inventory: Inventory, environment: str) -> str:
    """What a warm answer depends on: the environment's hosts and the SSH settings (references, never secrets)."""
    data = {"ssh": inventory.ssh.model_dump(mode="json"),
            "hosts": [h.model_dump(mode="json") for h in inventory.environment(environment).hosts]}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:32]


def probe_deadline(ssh: SSHSettings) -> float:
    """How long a probe request may take: what one cold probe may (connect, then the command's timeout)."""
    connect = ssh.connect_timeout.total_seconds()
    return connect + max(5.0, connect)


def results_from_answer(answer: Mapping[str, Any], hosts: Sequence[str]) -> dict[str, Result]:
    """The per-host results of a probe answer, for exactly `hosts` (ProbeAgentError on a refusal or a gap)."""
    if answer.get("ok") is not True:
        raise ProbeAgentError(f"refused: {answer.get('error') or 'no reason given'}")
    results = answer.get("results")
    if not isinstance(results, dict):
        raise ProbeAgentError("an answer without results")
    out: dict[str, Result] = {}
    for name in hosts:
        entry = results.get(name)
        if isinstance(entry, dict) and isinstance(entry.get("error"), str):
            out[name] = entry["error"]
        elif isinstance(entry, dict) and "usage" in entry:
            out[name] = usage_from_json(entry["usage"])
        else:
            raise ProbeAgentError(f"no result for {name}")
    return out


# -- the client --------------------------------------------------------------------------------------
def ask(path: Path, message: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """Send one request to the agent at `path`, return its answer; ProbeAgentError saying why not."""
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(min(timeout, 2.0))
            sock.connect(str(path))
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            sock.sendall(encode(message))
            return decode(read_line(sock, deadline))
    except FileNotFoundError as exc:
        raise ProbeAgentError(f"no socket at {path} (agent not running)") from exc
    except ConnectionRefusedError as exc:
        raise ProbeAgentError(f"nothing listens on {path} (agent not running)") from exc
    except TimeoutError as exc:
        raise ProbeAgentError(f"no answer within {timeout:g}s") from exc
    except OSError as exc:
        raise ProbeAgentError(f"{path}: {exc.strerror or exc}") from exc


@dataclass
class ProbeRun:
    """Every host's usage or error; how many the agent answered; why it was not used, when configured."""

    results: dict[str, Result]
    warm: int = 0
    note: str | None = None


def cold_probe(hosts: Mapping[str, Host], max_concurrency: int) -> dict[str, Result]:
    """`resources()` of every host on a connection of its own (what the health check did before the agent)."""
    result = fan_out(hosts, lambda h: h.resources(), max_concurrency=max_concurrency, max_errors=None)
    return {n: o.value if o.value is not None else (o.message or "no answer") for n, o in result.outcomes.items()}


def warm_candidates(hosts: Mapping[str, Host], agent: Path | None) -> list[str]:
    """The hosts to ask the agent about: SSH hosts built from the inventory (not a test's given ones), when configured."""
    return [n for n, h in hosts.items() if type(h) is SSHHost] if agent is not None else []


def probe_resources(hosts: Mapping[str, Host], *, environment: str, agent: Path | None, timeout: float, max_concurrency: int,
                    digest: str | None = None, asker: Callable[[Path, Mapping[str, Any], float], dict[str, Any]] = ask,
                    ) -> ProbeRun:
    """Usage of every host: the SSH ones from the agent when one is configured and answers, the rest (and
    all of them when it does not) probed cold here; `note` says why the agent was not used."""
    names = warm_candidates(hosts, agent)
    if agent is None or not names:
        return ProbeRun(cold_probe(hosts, max_concurrency))
    socket_path = agent.expanduser()
    request = {"op": "probe", "environment": environment, "hosts": names, "timeout": timeout, "digest": digest}
    try:
        warm = results_from_answer(asker(socket_path, request, timeout + ANSWER_MARGIN), names)
    except ProbeAgentError as exc:
        return ProbeRun(cold_probe(hosts, max_concurrency),
                        note=f"probe agent {socket_path}: {exc}; probed {len(hosts)} hosts cold")
    rest = {n: h for n, h in hosts.items() if n not in warm}
    results = {**warm, **(cold_probe(rest, max_concurrency) if rest else {})}
    return ProbeRun({n: results[n] for n in hosts}, warm=len(warm))


# -- the agent ---------------------------------------------------------------------------------------
def agent_sockets(inventory: Inventory) -> dict[Path, list[str]]:
    """Socket path → the environments whose `monitoring.probe_agent` names it."""
    out: dict[Path, list[str]] = {}
    for name, env in inventory.environments.items():
        if env.monitoring is not None and env.monitoring.probe_agent is not None:
            out.setdefault(env.monitoring.probe_agent.expanduser(), []).append(name)
    return out


def private_directory(directory: Path) -> None:
    """Create `directory` 0700, or accept it only when this user owns it and nobody else may enter it."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise ConfigError(f"monitoring.probe_agent: {directory} is mode {oct(stat.S_IMODE(st.st_mode))} owned by uid "
                          f"{st.st_uid}; the socket's directory must be this user's (uid {os.getuid()}) and mode 0700: "
                          f"`chmod 700 {directory}` or choose another path")
