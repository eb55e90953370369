"""Warm probes: a probe agent that keeps the SSH connections between health checks.

Why a process of its own: Prefect 3.9 runs every served or worker-run flow run in a new process, so
a connection a health check opens dies with it, and every minute each host paid a full SSH login
(TCP, key exchange, user auth, a forked sshd session) before its probe. The agent is a long-lived
process beside the serving one (`upkeep probe-agent`, started and stopped by `upkeep serve`) that
holds one `SSHHost` per host and environment — the runs' own class: host keys checked against
known_hosts with RejectPolicy, the same key file or secret, paramiko keepalive — connected on first
use, reconnected once when a kept connection broke, closed after `idle_close` without a probe or when
the host leaves the inventory (the file is re-read when its mtime changes). It only ever runs the
constant `PROBE_ARGV`: a request names an environment and hosts, never a command.

Why not OpenSSH connection sharing (`ControlMaster=auto`, `ControlPersist`): Upkeep's SSH is
paramiko. Sharing would need a second SSH stack for one routine — the `ssh` binary, the key as a
file (a `block:` / `env:` key would have to be written to disk), OpenSSH's known_hosts handling
instead of ours, errors parsed from stderr — and a fork+exec of `ssh` per host per probe (~100
processes a minute), with a master process per host that nothing supervises.

Protocol (one request per connection, one JSON object per line, at most `MAX_MESSAGE` bytes):
request ``{"v": 1, "op": "probe", "environment": E, "hosts": [names], "timeout": s, "digest": d}``
→ ``{"v": 1, "ok": true, "results": {name: {"usage": ResourceUsage as JSON} | {"error": text}}}``;
``{"v": 1, "op": "status"}`` → counters; a refusal is ``{"v": 1, "ok": false, "error": text}``.
`digest` (of the environment's hosts and the SSH settings) makes the agent refuse a run whose
inventory differs from its own, so warm answers are always about the hosts the run would probe.

Security: the socket is mode 0600 in a directory only the agent's user can enter (created 0700,
refused otherwise), and a peer of another user is refused (SO_PEERCRED). Secrets are resolved by
the inventory's resolvers and never logged.

When the agent is down, refuses, is slow or answers nonsense, `probe_resources` probes cold, as
before, and says why in its `note`: a dead agent never blinds monitoring.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import stat
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import SecretStr

from upkeep.config.loader import config_path, load_inventory
from upkeep.config.models import HostConfig, Inventory, SSHSettings
from upkeep.config.secrets import resolve_secret
from upkeep.errors import CommandError, CommandTimeoutError, ConfigError, HostError, PermanentError, ProbeAgentError, UpkeepError
from upkeep.hosts.agent_client import (
    MAX_HOSTS,
    REQUEST_READ_SECONDS,
    agent_sockets,
    ask,
    decode,
    encode,
    inventory_digest,
    private_directory,
    read_line,
    usage_to_json,
)
from upkeep.hosts.base import Host, ResourceUsage
from upkeep.hosts.pool import build_host
from upkeep.hosts.procfs import PROBE_ARGV, SNAPSHOT_ARGV, comparable, last_stat_line, parse_probe, parse_snapshot

log = logging.getLogger("upkeep.probe_agent")
STAT_MIN_SECONDS = 1.0  # two readings closer than this give a CPU share of a few jiffies: probe in full
STAT_FRESH_SECONDS = 600.0  # an older /proc/stat reading is not a CPU average anyone asked for: probe in full


@dataclass
class _Held:
    host: Host
    cfg: HostConfig
    ssh: SSHSettings
    last_used: float = field(default_factory=time.monotonic)
    open: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    stat: tuple[float, str] | None = None  # (monotonic time, the /proc/stat cpu line) of the last probe


def _peer_uid(sock: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class ProbeAgent:
    """Holds the SSH connections of the environments whose `monitoring.probe_agent` is `socket_path`
    and answers probe requests on it (`serve_forever`; `shutdown` from another thread)."""

    def __init__(self, config: str | os.PathLike[str] | None = None, socket_path: Path | None = None, *,
                 idle_close: float = 600.0, resolve: Callable[[str], SecretStr] = resolve_secret) -> None:
        self.config = config_path(config).resolve()
        self._inventory = load_inventory(self.config)
        self._mtime = self.config.stat().st_mtime_ns
        sockets = agent_sockets(self._inventory)
        if socket_path is None:
            if len(sockets) != 1:
                raise ConfigError(f"{self.config}: " + ("no environment sets monitoring.probe_agent: set it, or pass --socket"
                                  if not sockets else "environments name different monitoring.probe_agent sockets "
                                  f"({', '.join(map(str, sockets))}): start one agent per socket with --socket"))
            socket_path = next(iter(sockets))
        self.socket_path = socket_path.expanduser()
        self.idle_close, self._resolve = idle_close, resolve
        self._held: dict[tuple[str, str], _Held] = {}
        self._lock = threading.Lock()
        counters = ("requests", "connects", "reconnects", "idle_closed", "reloads", "full_probes", "snapshots",
                    "stale_readings")
        self._stats = dict.fromkeys(counters, 0)
        self._started = time.monotonic()
        self._server: _Server | None = None
        self._stop = threading.Event()

    # -- inventory ---------------------------------------------------------------------------------
    def inventory(self) -> Inventory:
        """The inventory, re-read when its file changed (an invalid edit keeps the previous one, logged)."""
        try:
            mtime = self.config.stat().st_mtime_ns
        except OSError as exc:
            log.warning("inventory %s: %s; keeping the one loaded", self.config, exc.strerror)
            return self._inventory
        with self._lock:
            if mtime == self._mtime:
                return self._inventory
            self._mtime = mtime
            try:
                inventory = load_inventory(self.config)
            except UpkeepError as exc:
                log.warning("inventory %s changed but does not load, keeping the previous one: %s", self.config, exc)
                return self._inventory
            self._inventory = inventory
            self._stats["reloads"] += 1
            stale = [k for k, h in self._held.items() if not self._still(inventory, k, h)]
            for key in stale:
                self._held.pop(key).host.close()
        log.info("inventory %s reloaded; %d connection(s) of changed or removed hosts closed", self.config, len(stale))
        return inventory

    @staticmethod
    def _still(inventory: Inventory, key: tuple[str, str], held: _Held) -> bool:
        env = inventory.environments.get(key[0])
        return env is not None and held.ssh == inventory.ssh and any(h == held.cfg for h in env.hosts)

    def serves(self, inventory: Inventory, environment: str) -> bool:
        env = inventory.environments.get(environment)
        return bool(env and env.monitoring and env.monitoring.probe_agent
                    and env.monitoring.probe_agent.expanduser() == self.socket_path)

    # -- probing -----------------------------------------------------------------------------------
    def _get(self, environment: str, cfg: HostConfig, ssh: SSHSettings) -> _Held:
        with self._lock:
            held = self._held.get((environment, cfg.name))
            if held is None:
                held = self._held[(environment, cfg.name)] = _Held(build_host(cfg, ssh, resolve=self._resolve), cfg, ssh)
            return held

    def _count(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    def _probe_one(self, environment: str, cfg: HostConfig, ssh: SSHSettings) -> ResourceUsage:
        held = self._get(environment, cfg, ssh)
        with held.lock:  # one probe of a host at a time: a second request waits and reuses the connection
            held.last_used = time.monotonic()
            was_open = held.open
            if not was_open:
                self._count("connects")
            try:
                usage = self._measure(held)
            except HostError as exc:
                held.open, held.stat = False, None
                held.host.close()
                if not was_open or isinstance(exc, PermanentError | CommandError | CommandTimeoutError):
                    raise
                # the kept connection broke (host rebooted, connection dropped): one fresh login
                log.info("%s/%s: kept connection lost (%s); reconnecting", environment, cfg.name, exc)
                self._count("reconnects")
                usage = self._measure(held)
            except UpkeepError as exc:  # not a broken connection (a secret, output not understood): said as it is
                held.open, held.stat = False, None
                held.host.close()
                log.warning("%s/%s: %s", environment, cfg.name, exc)
                raise
            held.open = True
            held.last_used = time.monotonic()
            return usage

    def _measure(self, held: _Held) -> ResourceUsage:
        """One probe of a kept host: a snapshot (no sleep, two `df` processes) with the CPU share since the
        previous probe when that was recent, else the full probe (two /proc/stat readings 0.2 s apart).
        Output the parsers do not understand is a ProbeAgentError naming the host."""
        try:
            return self._read(held)
        except (ValueError, IndexError, KeyError) as exc:  # what the /proc parsers raise on output they do not expect
            raise ProbeAgentError(f"{held.cfg.name}: probe output not understood ({type(exc).__name__}: {exc}); "
                                  "is /proc mounted and df on the PATH there?") from exc

    def _read(self, held: _Held) -> ResourceUsage:
        timeout, now = max(5.0, held.ssh.connect_timeout.total_seconds()), time.monotonic()
        if held.stat is not None and STAT_MIN_SECONDS <= now - held.stat[0] <= STAT_FRESH_SECONDS:
            out = held.host.run(SNAPSHOT_ARGV, timeout=timeout).stdout
            if comparable(held.stat[1], last_stat_line(out)):
                usage, line = parse_snapshot(held.cfg.name, out, held.stat[1])
                self._count("snapshots")
                held.stat = (now, line)
                return usage
            self._count("stale_readings")  # rebooted, or another machine: probe in full
        out = held.host.run(PROBE_ARGV, timeout=timeout).stdout
        usage, line = parse_probe(held.cfg.name, out), last_stat_line(out)
        self._count("full_probes")
        held.stat = (now, line)
        return usage

    def probe(self, environment: str, hosts: Sequence[str], timeout: float, digest: str | None = None) -> dict[str, Any]:
        """Per host `{"usage": ...}` or `{"error": ...}` within `timeout` (hosts still running then: an error)."""
        inventory = self.inventory()
        if not self.serves(inventory, environment):
            raise ProbeAgentError(f"environment {environment!r} of {self.config} does not name this agent's socket "
                                  f"{self.socket_path} in monitoring.probe_agent")
        if digest is not None and digest != inventory_digest(inventory, environment):
            raise ProbeAgentError(f"the run's inventory differs from the agent's ({self.config}) in the hosts of "
                                  f"{environment!r} or the SSH settings")
        env = inventory.environment(environment)
        configs = {h.name: h for h in env.hosts}
        limit = env.monitoring.max_concurrency if env.monitoring else 50
        self._count("requests")
        results: dict[str, Any] = {}
        jobs: dict[str, Future[ResourceUsage]] = {}
        pool = ThreadPoolExecutor(max_workers=max(1, min(limit, len(hosts))), thread_name_prefix="probe")
        try:
            for name in hosts:
                cfg = configs.get(name)
                if cfg is None or cfg.transport != "ssh":
                    results[name] = {"error": f"{name}: not an SSH host of environments.{environment}.hosts"}
                else:
                    jobs[name] = pool.submit(self._probe_one, environment, cfg, inventory.ssh)
            done, _ = wait(jobs.values(), timeout=timeout)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # stragglers finish in the background, their hosts stay held
        for name, fut in jobs.items():
            if fut not in done:
                results[name] = {"error": f"{name}: no answer from the probe agent within {timeout:g}s"}
            elif (exc := fut.exception()) is not None:
                results[name] = {"error": str(exc)}
            else:
                results[name] = {"usage": usage_to_json(fut.result())}
        return {n: results[n] for n in hosts}

    def status(self) -> dict[str, Any]:
        with self._lock:
            held = list(self._held.values())
            stats = dict(self._stats)
        return {"pid": os.getpid(), "inventory": str(self.config), "socket": str(self.socket_path),
                "uptime": round(time.monotonic() - self._started, 1), "hosts": len(held),
                "open": sum(h.open for h in held), **stats}

    def handle(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """One decoded request → its answer (a refusal for anything malformed)."""
        op = message.get("op")
        if op == "status":
            return {"ok": True, **self.status()}
        if op != "probe":
            raise ProbeAgentError(f"unknown op {op!r}: probe or status")
        environment, hosts, timeout, digest = (message.get(k) for k in ("environment", "hosts", "timeout", "digest"))
        if not isinstance(environment, str) or not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
            raise ProbeAgentError("probe needs environment (a string) and hosts (a list of names)")
        if len(hosts) > MAX_HOSTS or not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 600:
            raise ProbeAgentError(f"probe takes at most {MAX_HOSTS} hosts and a timeout of 0–600 s")
        if digest is not None and not isinstance(digest, str):
            raise ProbeAgentError("digest must be a string")
        return {"ok": True, "results": self.probe(environment, hosts, float(timeout), digest)}

    # -- lifecycle ---------------------------------------------------------------------------------
    def close_idle(self) -> int:
        """Close the connections not used for `idle_close` seconds; how many."""
        now, closed = time.monotonic(), 0
        with self._lock:
            idle = [h for h in self._held.values() if h.open and now - h.last_used > self.idle_close]
        for held in idle:
            if held.lock.acquire(blocking=False):
                try:
                    held.host.close()
                    held.open = False
                    closed += 1
                finally:
                    held.lock.release()
        if closed:
            self._count("idle_closed")
            log.info("closed %d idle connection(s)", closed)
        return closed

    def _reaper(self) -> None:
        while not self._stop.wait(min(60.0, max(1.0, self.idle_close / 4))):
            self.close_idle()

    def listen(self) -> None:
        """Bind the socket (0600, in a 0700 directory of this user; a stale socket is replaced)."""
        path = self.socket_path
        private_directory(path.parent)
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise ConfigError(f"monitoring.probe_agent: {path} exists and is not a socket")
            try:
                ask(path, {"op": "status"}, 2.0)
            except ProbeAgentError:
                path.unlink()  # left by an agent that died
            else:
                raise ProbeAgentError(f"another probe agent already answers on {path}")
        old = os.umask(0o177)
        try:
            self._server = _Server(str(path), _Handler)
        finally:
            os.umask(old)
        path.chmod(0o600)
        self._server.agent = self

    def serve_forever(self) -> None:
        """Listen and answer until `shutdown` (or an exception in the calling thread); then close everything."""
        if self._server is None:
            self.listen()
        assert self._server is not None
        reaper = threading.Thread(target=self._reaper, name="probe-agent-idle", daemon=True)
        reaper.start()
        envs = agent_sockets(self._inventory).get(self.socket_path, [])
        log.info("probe agent (pid %d) listening on %s for %s; inventory %s", os.getpid(), self.socket_path,
                 ", ".join(envs) or "no environment yet", self.config)
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._stop.set()
            self._server.server_close()
            self.socket_path.unlink(missing_ok=True)
            with self._lock:
                held, self._held = list(self._held.values()), {}
            for h in held:
                h.host.close()
            log.info("probe agent stopped; %d connection(s) closed", len(held))

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    agent: ProbeAgent


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        agent = cast(_Server, self.server).agent
        try:
            uid = _peer_uid(sock)
            if uid is not None and uid not in (os.getuid(), 0):
                raise ProbeAgentError(f"uid {uid} may not use this agent")
            reply = agent.handle(decode(read_line(sock, time.monotonic() + REQUEST_READ_SECONDS)))
        except ProbeAgentError as exc:
            reply = {"ok": False, "error": str(exc)}
        except (TimeoutError, OSError) as exc:
            log.info("request dropped: %s", exc)
            return
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the agent; the client falls back to cold
            log.exception("request failed")
            reply = {"ok": False, "error": f"agent error: {type(exc).__name__}"}
        try:
            sock.sendall(encode(reply))
        except OSError:
            pass  # the client gave up waiting (and probed cold)
