"""Rolling update: orchestration overhead of `system_update` over N hosts vs the hosts' own work.

    PYTHONPATH=. .venv/bin/python -m benchmarks.rolling_update [--hosts 20] [--repeats 3] [--verbose]

Starts its own stack (Prefect server, an sshd fleet of N hosts, the Event Manager stand-in on the first two)
in a fresh 0755 temp dir and writes an inventory variant of the stack's (environment "development",
`updates.backup_first: false`, `max_concurrency: 5`, `approval_timeout: 2s`). Before every run each host's
sandbox package manager is (re-)seeded over SSH through a `HostPool` (files owned by the login user):
installed a 1.0.0, b 2.0.0; available a 1.0.1 (patch), b 2.1.0 (minor): nothing needs approval.

For every repeat (after one untimed warm-up of each side):

* `flow`:  `system_update(environment="development", config=VARIANT)` in this process, wall time;
* `plain`: the same per-host work with no Prefect, on fresh `SSHHost`s, phase by phase exactly as the flow's
  stages and with the same `fan_out(max_concurrency=5, max_errors=0)`: pre (`resources()` + `disk_verdicts`
  and `SandboxDriver.installed`, one pass per host), plan (`upgradable`), then per host: stop services
  (the configured argv over SSH), `apply` + `installed(names)`, start services, health probe (`probe_http`,
  2xx and under the response-time threshold) and smoke test.

Orchestration overhead = the flow run's wall time − plain wall (the plain run *is* the hosts' work at the same
concurrency, stragglers included, inventory load included as in the flow run). "The run" is the flow run as the
Prefect API and UI record it, Running → final state. The in-process call is printed beside it: it adds the
flow-run creation before the run (~0.1 s) and, after the final state, Prefect 3.8.8's join of the flow's
heartbeat thread (it sleeps in 1 s steps: 0–1 s of idle wait in the client, after the run is Completed; a run
started by a deployment pays it in its runner subprocess, after the UI shows it finished). The run also prints
the per-host sums / concurrency, the Prefect API's task-run sums and the CPU seconds of this process, the Prefect
server and the sshd fleet (all on the same 2 CPUs). Target: overhead ≤ 10 % of the run's wall time. The stack is
stopped by PID in `finally`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks._cpu import CpuMeter, tree_cpu
from benchmarks._report import begin_run, loadavg, target_check, write_results
from benchmarks.health_check import (
    ENVIRONMENT,
    breakdown,
    flow_run,
    median,
    parse_args,
    start_stack,
    stop_stack,
    task_runs,
    versions,
    write_variant,
)

CONCURRENCY = 5
TARGET_SHARE = 0.10
INSTALLED = {"a": "1.0.0", "b": "2.0.0"}
AVAILABLE = {"a": {"version": "1.0.1", "kind": "patch"}, "b": {"version": "2.1.0", "kind": "minor"}}
EXPECTED = {"a": "1.0.1", "b": "2.1.0"}


def variant_change(env: dict[str, Any]) -> None:
    env["updates"]["backup_first"] = False
    env["max_concurrency"] = CONCURRENCY
    env["approval_timeout"] = "2s"


def load(variant: Path) -> tuple[Any, Any]:
    from upkeep.config import load_inventory

    inv = load_inventory(variant)
    return inv, inv.environment(ENVIRONMENT)


def sandbox_roots(env: Any) -> dict[str, str]:
    """host → the sandbox package manager's root (the inventory's `updates.sources` entry, rendered)."""
    from upkeep.config.render import render

    (src,) = [s for s in env.updates.sources if s.manager == "sandbox"]
    return {h.name: render(src.root or "", h) for h in env.hosts}


def reseed(variant: Path) -> float:
    """Reset every host's sandbox over SSH (HostPool → SSHHost → SFTP as the login user); untimed."""
    from upkeep.hosts.fanout import fan_out
    from upkeep.hosts.pool import HostPool
    from upkeep.packages.sandbox import seed

    inv, env = load(variant)
    roots = sandbox_roots(env)
    started = time.perf_counter()
    with HostPool(env, inv.ssh) as pool:
        fan_out(pool.select(), lambda h: seed(h, roots[h.name], INSTALLED, AVAILABLE),
                max_concurrency=20, max_errors=0).raise_on_failure()
    return time.perf_counter() - started


def check_updated(variant: Path) -> None:
    """Every host ends with the expected versions (both sides must do the real work)."""
    from upkeep.hosts.fanout import fan_out
    from upkeep.hosts.pool import HostPool
    from upkeep.packages.sandbox import SandboxDriver

    inv, env = load(variant)
    roots = sandbox_roots(env)
    with HostPool(env, inv.ssh) as pool:
        got = fan_out(pool.select(), lambda h: SandboxDriver(h, roots[h.name]).installed(),
                      max_concurrency=20, max_errors=None)
    bad = {n: (o.value or o.message) for n, o in got.outcomes.items() if o.value != EXPECTED}
    if bad:
        raise RuntimeError(f"{len(bad)} host(s) not updated: {dict(list(bad.items())[:3])}")


# -- the two sides ----------------------------------------------------------------------------------
def run_flow(variant: Path) -> tuple[float, Any, Any]:
    from flows.system_update import system_update

    started = time.perf_counter()
    state = system_update(environment=ENVIRONMENT, config=str(variant), return_state=True)
    wall = time.perf_counter() - started
    if not state.is_completed():
        raise RuntimeError(f"system_update ended {state.type.value}: {state.message}")
    return wall, state.result(), state.state_details.flow_run_id


def run_plain(variant: Path) -> tuple[float, dict[str, float], dict[str, list[float]]]:
    """The flow's per-host work, phase by phase, no Prefect. Returns wall seconds, wall per phase and the
    per-host durations per phase."""
    from upkeep.config.render import render, render_argv
    from upkeep.decisions.disk import disk_verdicts
    from upkeep.errors import UpkeepError
    from upkeep.hosts.fanout import fan_out
    from upkeep.hosts.pool import build_host
    from upkeep.packages import split_plan
    from upkeep.packages.sandbox import SandboxDriver
    from upkeep.probes import probe_http

    started = time.perf_counter()
    inv, env = load(variant)  # timed, as the flow run loads it too
    roots = sandbox_roots(env)
    u = env.updates
    timeout = env.thresholds.probe_timeout.total_seconds()
    limit_ms = env.thresholds.response_time.total_seconds() * 1000
    cfgs = {h.name: h for h in env.hosts}
    services = {h.name: [n for n, s in env.services.items() if s.monitored and (s.role or n) in h.roles] for h in env.hosts}
    phase_wall: dict[str, float] = {}
    per_host: dict[str, list[float]] = defaultdict(list)

    hosts = {name: build_host(cfg, inv.ssh) for name, cfg in cfgs.items()}

    def phase(name: str, action: Callable[[Any], Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        result = fan_out(hosts, action, max_concurrency=env.max_concurrency, max_errors=env.max_errors).raise_on_failure()
        phase_wall[name] = time.perf_counter() - t0
        per_host[name] = [o.duration for o in result.outcomes.values()]
        return {n: o.value for n, o in result.succeeded.items()}

    def pre(h: Any) -> dict[str, str]:
        if not all(v.ok for v in disk_verdicts(h.resources(), u.min_free_percent)):
            raise UpkeepError(f"{h.name}: low disk")
        return SandboxDriver(h, roots[h.name]).installed()

    def probe(h: Any, service: str, url: str) -> None:
        r = probe_http(f"{h.name}/{service}", url, timeout)
        if not r.ok or r.latency_ms > limit_ms:
            raise UpkeepError(r.detail)

    def update(h: Any) -> dict[str, str]:
        cfg, drv, svcs = cfgs[h.name], SandboxDriver(h, roots[h.name]), services[h.name]
        chosen, _held = split_plan(plans[h.name], [])
        for s in svcs:
            h.run(render_argv(env.services[s].stop, cfg))
        try:
            drv.apply(chosen)
            after = drv.installed([x.name for x in chosen])
        finally:
            for s in svcs:
                h.run(render_argv(env.services[s].start, cfg))
        for s in svcs:
            probe(h, s, render(env.services[s].health_url, cfg))
        for t in u.smoke_tests:
            if t.service in svcs:
                base = render(env.services[t.service].health_url, cfg)
                scheme, rest = base.split("://", 1)
                r = probe_http(f"{h.name}/{t.name}", f"{scheme}://{rest.split('/', 1)[0]}{t.path}", timeout)
                if r.status != t.expect_status:
                    raise UpkeepError(r.detail)
        return after

    try:
        phase("pre", pre)  # reachability + disk + versions snapshot, one pass per host (as check_hosts)
        plans = phase("plan", lambda h: SandboxDriver(h, roots[h.name]).upgradable())
        phase("execute", update)
    finally:
        for h in hosts.values():
            h.close()
    return time.perf_counter() - started, phase_wall, dict(per_host)


def stage_seconds(flow_run_id: Any) -> dict[str, float]:
    """Seconds per stage of one flow run, from its report artifact (`## pre: done in 1.23s`)."""
    import re

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    text = next((a.data for a in arts if (a.key or "").endswith("-report")), "") or ""
    return {m[1]: float(m[2]) for m in re.finditer(r"^## (\w+): \w+ in ([\d.]+)s", text, re.M)}


def tag_slot_latency(n: int = 5) -> list[float]:
    """Seconds per `POST /v2/concurrency_limits/increment-with-lease` on an idle server, for a tag with no
    limit: the call the task engine makes before *every* task run with tags (`tag:stage:…`), unless the same
    tag set got a "no limits" answer in the last 5 s (Prefect's client-side TTL cache)."""
    import uuid

    from prefect.client.orchestration import get_client

    out = []
    with get_client(sync_client=True) as client:
        for _ in range(n):
            started = time.perf_counter()
            client.increment_concurrency_slots_with_lease(names=[f"tag:bench-{uuid.uuid4().hex[:8]}"], slots=1,
                                                          mode="concurrency", lease_duration=60)
            out.append(time.perf_counter() - started)
    return out


def cpu_text(cpu: dict[str, float]) -> str:
    return f"this process {cpu['client']:.2f}, Prefect server {cpu['server']:.2f}, sshd hosts {cpu['hosts']:.2f}"


# -- main -------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv, default_hosts=20, description=__doc__.split("\n")[0])
    print(f"rolling_update benchmark: {args.hosts} hosts, concurrency {CONCURRENCY}, {args.repeats} repeats "
          "(+1 warm-up each side)")
    load_before = begin_run(args.verbose)
    stack = None
    flows: list[float] = []
    runs: list[float] = []
    plains: list[float] = []
    ideal: list[float] = []
    api: list[dict[str, Any]] = []
    samples: list[dict[str, Any]] = []
    cpus: dict[str, list[dict[str, float]]] = {"flow": [], "plain": []}
    try:
        stack = start_stack("upkeep-bench-ru-", args.hosts, ("prefect", "sshd", "standin"))
        variant = write_variant(stack, "upkeep-bench-update.yaml", variant_change)

        server_pids = [p.pid for p in stack.procs if p.name == "prefect"]
        hosts_meter = CpuMeter(stack.fleet.pids())

        def cpu_split(run: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
            """`run()` and the CPU seconds it cost: this process, the Prefect server, the sshd fleet."""
            server0 = tree_cpu(server_pids)
            hosts_meter.start()
            out = run()
            time.sleep(0.3)  # let the server finish what the run sent it
            controller, hosts = hosts_meter.stop()
            return out, {"client": controller, "server": tree_cpu(server_pids) - server0, "hosts": hosts}

        def one(side: str, label: str, record: bool) -> None:
            seed_s = reseed(variant)
            if side == "flow":
                (wall, result, fr_id), cpu = cpu_split(lambda: run_flow(variant))
                check_updated(variant)
                bd = breakdown(task_runs(fr_id))
                fr = flow_run(fr_id)
                task_sum = sum(d["sum_s"] for d in bd.values())
                retries = sum(d["retries"] for d in bd.values())
                stages = stage_seconds(fr_id)
                run_s = fr.total_run_time.total_seconds()
                info = {"task_runs": sum(int(d["count"]) for d in bd.values()), "task_sum_s": task_sum, "stages_s": stages,
                        "task_sum_over_concurrency_s": task_sum / CONCURRENCY, "retries": retries,
                        "api_flow_total_run_time_s": fr.total_run_time.total_seconds(), "tasks": bd}
                print(f"  {label:<12} flow   {wall:7.3f}s  (run {run_s:.3f}s + {wall - run_s:.3f}s outside it)  stages "
                      + ", ".join(f"{k} {v:.2f}s" for k, v in stages.items())
                      + f"; {info['task_runs']} task runs, task time sum {task_sum:.2f}s, retries {retries}, hosts updated "
                      f"{len(result)}  (re-seed {seed_s:.2f}s)\n{'':<21}CPU-s " + cpu_text(cpu), flush=True)
                if record:
                    cpus["flow"].append(cpu)
                    flows.append(wall)
                    runs.append(run_s)
                    api.append(info)
                    samples.append({"side": "flow", "label": label, "wall": wall, "flow_run_id": str(fr_id), "cpu_s": cpu,
                                    **info})
            else:
                (wall, phases, per_host), cpu = cpu_split(lambda: run_plain(variant))
                check_updated(variant)
                busy = {p: sum(v) for p, v in per_host.items()}
                lower = sum(b / CONCURRENCY for b in busy.values())
                print(f"  {label:<12} plain  {wall:7.3f}s  phases "
                      + ", ".join(f"{p} {s:.2f}s" for p, s in phases.items())
                      + f"; per-host sum/{CONCURRENCY} {lower:.2f}s  (re-seed {seed_s:.2f}s)\n{'':<21}CPU-s " + cpu_text(cpu),
                      flush=True)
                if record:
                    cpus["plain"].append(cpu)
                    plains.append(wall)
                    ideal.append(lower)
                    samples.append({"side": "plain", "label": label, "wall": wall, "phase_wall": phases, "cpu_s": cpu,
                                    "per_host_busy_s": busy, "per_host_sum_over_concurrency_s": lower})

        one("flow", "warm-up", False)
        one("plain", "warm-up", False)
        for r in range(args.repeats):
            for side in (("flow", "plain") if r % 2 == 0 else ("plain", "flow")):
                one(side, f"repeat {r + 1}/{args.repeats}", True)
        time.sleep(3)
        slot_probe = tag_slot_latency()
        print(f"  idle server: increment-with-lease (a tag without limit) {', '.join(f'{x * 1000:.0f}' for x in slot_probe)} ms",
              flush=True)
        vers = versions()
    finally:
        stop_stack(stack)
    load_after = loadavg()

    flow_med, plain_med, ideal_med, run_med = median(flows), median(plains), median(ideal), median(runs)
    overhead = run_med - plain_med
    share = overhead / run_med
    call_share = (flow_med - plain_med) / flow_med
    alt_share = (run_med - ideal_med) / run_med
    task_sum_med = median([a["task_sum_s"] for a in api])
    print(f"\n{'side':<10} {'median s':>9} {'min s':>8} {'max s':>8}")
    print(f"{'flow run':<10} {run_med:>9.3f} {min(runs):>8.3f} {max(runs):>8.3f}   (Prefect API: Running -> final state)")
    print(f"{'plain':<10} {plain_med:>9.3f} {min(plains):>8.3f} {max(plains):>8.3f}")
    print(f"{'flow call':<10} {flow_med:>9.3f} {min(flows):>8.3f} {max(flows):>8.3f}   (the in-process call)")
    print(f"orchestration overhead = flow run - plain = {run_med:.3f} - {plain_med:.3f} = {overhead:.3f}s = {share:.1%}"
          " of the run's wall time")
    print(f"  the in-process call: {flow_med - plain_med:.3f}s = {call_share:.1%} of its {flow_med:.3f}s;"
          f" {flow_med - run_med:.3f}s of it is outside the run: flow-run creation before it and, after the final state,"
          f" the join of Prefect's heartbeat thread (sleeps in 1 s steps)")
    print(f"  (alternative: hosts' work as per-host sums / {CONCURRENCY} = {ideal_med:.3f}s -> overhead {alt_share:.1%};"
          f" stage tasks' run time sum (API) {task_sum_med:.3f}s: they run one after another, each over all hosts)")
    med_cpu = {side: {k: median([c[k] for c in cs]) for k in ("client", "server", "hosts")} for side, cs in cpus.items()}
    print("  CPU-s per run (median; 2 CPUs shared by all three): "
          + "; ".join(f"{side}: {cpu_text(c)}" for side, c in med_cpu.items()))
    print("\nflow task runs (last repeat; Prefect API total_run_time):")
    for n, d in sorted(api[-1]["tasks"].items(), key=lambda kv: -kv[1]["sum_s"]):
        print(f"  {n:<32} x{int(d['count']):<3} sum {d['sum_s']:7.3f}s  max {d['max_s']:6.3f}s  retries {int(d['retries'])}")
    print(f"load average after: {load_after}")
    check = target_check(f"orchestration overhead <= {TARGET_SHARE:.0%} of the run's wall time "
                         f"({args.hosts} hosts, concurrency {CONCURRENCY})",
                         round(share, 4), share <= TARGET_SHARE, f"measured {share:.1%}")
    path = write_results("rolling_update", {
        "hosts": args.hosts, "repeats": args.repeats, "concurrency": CONCURRENCY,
        "samples": samples, "flow_median": flow_med, "plain_median": plain_med, "overhead_s": overhead,
        "overhead_share": share, "call_overhead_share": call_share, "per_host_sum_over_concurrency_median": ideal_med,
        "overhead_share_vs_sum": alt_share, "api_task_sum_median": task_sum_med, "idle_tag_slot_call_s": slot_probe,
        "flow_run_median": run_med, "cpu_s_median": med_cpu, "checks": [check], "versions": vers,
        "loadavg_before": load_before, "loadavg_after": load_after,
    })
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
