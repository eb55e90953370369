"""Warm probes: the health check's host probes cold (a login per host per run) vs through the probe agent.

    PYTHONPATH=. .venv/bin/python -m benchmarks.health_check_warm [--sizes 100,240] [--repeats 5] [--verbose]

Starts its own stack (Prefect server, SecantusDB, an sshd fleet of max(--sizes) hosts, the stand-in) in a fresh
0755 temp dir and, for every size N, two inventory variants of environment "development" with its first N hosts
(`monitoring.auto_recover: null`): `cold` (no probe agent) and `warm` (`monitoring.probe_agent` set, an
`upkeep probe-agent` child started for it, stopped by PID before the next size). Then, after one untimed warm-up
of each side, `--repeats` rounds (order swapped every round) of:

* probe stage (at the first size only): `upkeep.hosts.agent.probe_resources` over the N hosts, no Prefect —
  `cold` on a fresh HostPool per repeat (closed after, as a run does), `warm` asking the agent;
* flow: `health_check(environment="development", config=VARIANT)` called in this process — wall time of the whole
  run, the probe stage's time (from the run's report: the probes run inside the flow) and the growth of the Prefect database files
  (prefect.db + -wal) per run.

In-process flow calls reuse this process's parsed known_hosts and key; a served run is a new process
that parses them again, so a real cold run pays somewhat more than measured here. Results:
`benchmarks/results/health_check_warm-<UTC time>.json`; the stack is stopped by PID in `finally`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._report import loadavg, quiet_prefect_console, target_check, write_results
from benchmarks.health_check import ENVIRONMENT, median, run_flow, start_stack, stop_stack, versions, write_variant

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 3.0


def variants(stack: Any, n: int, socket_path: Path) -> dict[str, Path]:
    def change(warm: bool) -> Any:
        def apply(env: dict[str, Any]) -> None:
            env["hosts"] = env["hosts"][:n]
            mon = env.setdefault("monitoring", {})
            mon["auto_recover"] = None
            mon["probe_agent"] = str(socket_path) if warm else None  # cold: no agent at all (the sandbox names one)
        return apply
    return {side: write_variant(stack, f"upkeep-bench-{side}-{n}.yaml", change(side == "warm")) for side in ("cold", "warm")}


def start_agent(config: Path, log: Path, socket_path: Path) -> subprocess.Popen[bytes]:
    from upkeep.errors import ProbeAgentError
    from upkeep.hosts.agent_client import ask

    sock = socket_path  # the development environment's (the others name the sandbox's, which nothing serves here)
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "deployments.cli", "--config", str(config), "probe-agent",
                                 "--socket", str(socket_path)],
                                cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            ask(sock, {"op": "status"}, 1)
            return proc
        except ProbeAgentError:
            time.sleep(0.2)
    stop_agent(proc)
    raise RuntimeError(f"probe agent did not answer on {sock}; see {log}")


def stop_agent(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def agent_status(config: Path) -> dict[str, Any]:
    from upkeep.config import load_inventory
    from upkeep.hosts.agent_client import agent_sockets, ask

    return ask(next(iter(agent_sockets(load_inventory(config)))), {"op": "status"}, 2)


def probe_stage(config: Path) -> tuple[float, int, int]:
    """One probe of every host with the health check's core function; (seconds, hosts up, hosts answered warm)."""
    from upkeep.config import load_inventory
    from upkeep.hosts.agent_client import inventory_digest, probe_deadline, probe_resources
    from upkeep.hosts.pool import HostPool

    inv = load_inventory(config)
    env = inv.environment(ENVIRONMENT)
    mon = env.monitoring
    assert mon is not None
    started = time.perf_counter()
    with HostPool(env, inv.ssh) as pool:
        run = probe_resources(pool.select(), environment=ENVIRONMENT, agent=mon.probe_agent, timeout=probe_deadline(inv.ssh),
                              max_concurrency=mon.max_concurrency, digest=inventory_digest(inv, ENVIRONMENT))
    wall = time.perf_counter() - started
    if run.note:
        raise RuntimeError(run.note)
    return wall, sum(not isinstance(v, str) for v in run.results.values()), run.warm


def db_bytes() -> int:
    home = Path(os.environ["PREFECT_HOME"])
    return sum(p.stat().st_size for p in (home / "prefect.db", home / "prefect.db-wal") if p.exists())


def probe_stage_seconds(flow_run_id: Any) -> float:
    """The probe stage's seconds, from the run's report artifact (`## probe: done in 1.23s (…)`)."""
    import re

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    for a in arts:
        found = re.search(r"^## probe: \w+ in ([0-9.]+)s", str(a.data or ""), re.M)
        if found:
            return float(found.group(1))
    return float("nan")


def flow_sample(config: Path) -> dict[str, Any]:
    before = db_bytes()
    wall, result, fr_id = run_flow(config)
    hosts_task = probe_stage_seconds(fr_id)
    return {"wall": wall, "probe_hosts_task": hosts_task, "db_bytes": db_bytes() - before, "samples": result["samples"],
            "healthy": result["healthy"], "flow_run_id": str(fr_id)}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100,240", help="host counts, comma-separated (default 100,240; the first one also "
                                                      "gets the probe-stage comparison)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of each side per size (default 5)")
    p.add_argument("--verbose", action="store_true", help="keep Prefect's console logs (default: warnings only)")
    args = p.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if not all(1 <= s <= 240 for s in args.sizes) or args.repeats < 1:
        p.error("--sizes must be 1..240 and --repeats positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.verbose:
        quiet_prefect_console()
    print(f"health_check_warm benchmark: sizes {args.sizes}, {args.repeats} repeats; load {loadavg()} on {os.cpu_count()} CPUs",
          flush=True)
    load_before = loadavg()
    stack = agent = None
    probe: dict[str, list[float]] = {"cold": [], "warm": []}
    flows: dict[int, dict[str, list[dict[str, Any]]]] = {}
    statuses: dict[int, dict[str, Any]] = {}
    db_growth: dict[int, float] = {}
    try:
        stack = start_stack("upkeep-bench-warm-", max(args.sizes), ("prefect", "mongo", "sshd", "standin"))
        socket_path = stack.base / "pa" / "probe.sock"
        for i, n in enumerate(args.sizes):
            paths = variants(stack, n, socket_path)
            agent = start_agent(paths["warm"], stack.base / "logs" / f"probe-agent-{n}.log", socket_path)
            if i == 0:
                for side in ("cold", "warm"):
                    wall, up, warm = probe_stage(paths[side])
                    print(f"  {n:>3} hosts  warm-up  probe {side:<4} {wall:7.3f}s  up {up}, via agent {warm}", flush=True)
            for side in ("cold", "warm"):
                s = flow_sample(paths[side])
                print(f"  {n:>3} hosts  warm-up  flow  {side:<4} {s['wall']:7.3f}s  probe stage {s['probe_hosts_task']:.3f}s",
                      flush=True)
            flows[n] = {"cold": [], "warm": []}
            db_start = db_bytes()
            for r in range(args.repeats):
                order = ("cold", "warm") if r % 2 == 0 else ("warm", "cold")
                if i == 0:
                    for side in order:
                        wall, up, warm = probe_stage(paths[side])
                        probe[side].append(wall)
                        print(f"  {n:>3} hosts  {r + 1}/{args.repeats}  probe {side:<4} {wall:7.3f}s  up {up}, via agent {warm}",
                              flush=True)
                for side in order:
                    s = flow_sample(paths[side])
                    flows[n][side].append(s)
                    print(f"  {n:>3} hosts  {r + 1}/{args.repeats}  flow  {side:<4} {s['wall']:7.3f}s  probe stage "
                          f"{s['probe_hosts_task']:.3f}s  db +{s['db_bytes'] / 1024:.0f} KiB  samples {s['samples']}, "
                          f"healthy {s['healthy']}", flush=True)
            db_growth[n] = (db_bytes() - db_start) / (2 * args.repeats)
            statuses[n] = agent_status(paths["warm"])
            stop_agent(agent)
            agent = None
        vers = versions()
    finally:
        stop_agent(agent)
        stop_stack(stack)
    load_after = loadavg()

    first = args.sizes[0]
    cold_med, warm_med = median(probe["cold"]), median(probe["warm"])
    ratio = cold_med / warm_med
    print(f"\nprobe stage at {first} hosts (no Prefect): cold {cold_med:.3f}s (min {min(probe['cold']):.3f}), warm "
          f"{warm_med:.3f}s (min {min(probe['warm']):.3f}) → {ratio:.2f}× faster warm")
    summary: dict[str, Any] = {}
    print(f"\n{'hosts':>5} {'side':<5} {'flow median s':>13} {'probe stage s':>13} {'db bytes/run':>12}")
    for n, sides in flows.items():
        for side, runs in sides.items():
            row = {"flow_median": median([s["wall"] for s in runs]),
                   "probe_hosts_median": median([s["probe_hosts_task"] for s in runs]),
                   "db_bytes_median": median([s["db_bytes"] for s in runs])}
            summary[f"{n}-{side}"] = row
            print(f"{n:>5} {side:<5} {row['flow_median']:>13.3f} {row['probe_hosts_median']:>13.3f} "
                  f"{row['db_bytes_median']:>12.0f}")
        c, w = summary[f"{n}-cold"], summary[f"{n}-warm"]
        print(f"{n:>5} Prefect database growth over the {2 * args.repeats} timed runs: {db_growth[n]:,.0f} bytes per run "
              "(prefect.db + -wal; per-run figures above are file growth, page- and checkpoint-grained)")
        print(f"{n:>5} ratio cold/warm: flow {c['flow_median'] / w['flow_median']:.2f}×, probe stage "
              f"{c['probe_hosts_median'] / w['probe_hosts_median']:.2f}×; agent {statuses[n]}")
    print(f"load average before {load_before}, after {load_after}")
    check = target_check(f"warm probe stage ≥ {TARGET_RATIO:g}× faster than cold at {first} hosts", round(ratio, 2),
                         ratio >= TARGET_RATIO, f"cold {cold_med:.3f}s / warm {warm_med:.3f}s = {ratio:.2f}×")
    path = write_results("health_check_warm", {
        "sizes": args.sizes, "repeats": args.repeats, "probe_stage": {"hosts": first, **probe, "cold_median": cold_med,
                                                                       "warm_median": warm_med, "ratio": ratio},
        "flows": flows, "summary": summary, "db_bytes_per_run": db_growth, "agent_status": statuses, "checks": [check],
        "versions": vers,
        "loadavg_before": load_before, "loadavg_after": load_after,
    })
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
