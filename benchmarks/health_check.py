"""Health check at scale: one `health_check` flow run vs the same probes by plain threads (no Prefect).

    PYTHONPATH=. .venv/bin/python -m benchmarks.health_check [--hosts 100] [--repeats 3] [--verbose]

Starts its own stack (Prefect server, SecantusDB, an sshd fleet of N hosts, the Event Manager stand-in) in a
fresh 0755 temp dir, writes an inventory variant of the stack's (environment "development",
`monitoring.auto_recover: null`), then for every repeat (after one untimed warm-up of each side):

* `flow`:  `health_check(environment="development", config=VARIANT)` called in this process — wall time of the
  whole flow run (flow-run creation, the three probe tasks, storing samples, evaluating alerts, the report
  artifacts, every Prefect API call);
* `plain`: the same probes with no Prefect: `upkeep.probes.probe_http` on every monitored service URL,
  `SSHHost.resources()` on every host (fresh `SSHHost` objects, closed afterwards) and a pymongo `ping`
  (fresh client), all in one `ThreadPoolExecutor(50)`.

Prints the medians, the Prefect overhead share `(flow - plain) / flow`, the flow's task-run breakdown (from the
Prefect API) and the target check "one run < 10 s at 100 hosts". The stack is stopped by PID in `finally`.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from benchmarks._fleet import make_base
from benchmarks._report import loadavg, quiet_prefect_console, target_check, write_results

if TYPE_CHECKING:
    from sandbox.stack import Stack

ENVIRONMENT = "development"
TARGET_SECONDS = 10.0
TARGET_HOSTS = 100
PLAIN_WORKERS = 50


# -- stack ----------------------------------------------------------------------------------------
def start_stack(prefix: str, hosts: int, components: tuple[str, ...]) -> Stack:
    """A stack in a fresh 0755 temp dir. Prefect's settings are exported *before* prefect is imported
    (it reads them at import), the sandbox secrets after `up()` (the Mongo port is known only then)."""
    from sandbox.procs import free_port
    from sandbox.stack import Stack, StackSettings

    if "prefect" in sys.modules:
        raise RuntimeError("prefect was imported before the stack's settings were exported")
    base = make_base(prefix)
    stack = Stack(StackSettings(base, ssh_hosts=hosts, app_hosts=2, prefect_port=free_port(), components=components))
    os.environ.update({**stack.prefect_env(), "PREFECT_UI_URL": f"http://127.0.0.1:{stack.ports['prefect']}"})
    started = time.perf_counter()
    try:
        stack.up()
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise
    os.environ.update(stack.secrets())
    print(f"  stack up in {time.perf_counter() - started:.1f}s: {', '.join(components)}; {hosts} sshd hosts; base {base}",
          flush=True)
    return stack


def stop_stack(stack: Any) -> None:
    """Every process by PID (Stack.down), then the temp dir."""
    if stack is None:
        return
    stack.down()
    shutil.rmtree(stack.base, ignore_errors=True)


def write_variant(stack: Any, name: str, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of the inventory the stack wrote, with `change` applied to environments.development."""
    data = yaml.safe_load(stack.inventory_path.read_text())
    change(data["environments"][ENVIRONMENT])
    path = stack.base / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def task_runs(flow_run_id: Any) -> list[Any]:
    """Every task run of one flow run (from the Prefect API)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    out: list[Any] = []
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                         limit=200, offset=len(out))
            out += page
            if len(page) < 200:
                return out


def flow_run(flow_run_id: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(flow_run_id)


def breakdown(runs: list[Any]) -> dict[str, dict[str, float]]:
    """task name → count, summed and max run time (seconds), and summed retries."""
    out: dict[str, dict[str, float]] = {}
    for tr in runs:
        name = tr.name.split("[")[0] if tr.name else tr.task_key
        d = out.setdefault(name, {"count": 0, "sum_s": 0.0, "max_s": 0.0, "retries": 0})
        secs = tr.total_run_time.total_seconds()
        d["count"] += 1
        d["sum_s"] += secs
        d["max_s"] = max(d["max_s"], secs)
        d["retries"] += max(0, (tr.run_count or 1) - 1)
    return out


def versions() -> dict[str, str]:
    import paramiko
    import prefect
    import pymongo

    return {"python": platform.python_version(), "prefect": prefect.__version__, "paramiko": paramiko.__version__,
            "pymongo": pymongo.version, "cpus": str(os.cpu_count()), "platform": platform.platform()}


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


# -- the two sides ----------------------------------------------------------------------------------
def run_flow(variant: Path) -> tuple[float, dict[str, Any], Any]:
    """One health_check flow run, in this process; returns wall seconds, its result and the flow run id."""
    from flows.health_check import health_check

    started = time.perf_counter()
    state = health_check(environment=ENVIRONMENT, config=str(variant), return_state=True)
    wall = time.perf_counter() - started
    if not state.is_completed():
        raise RuntimeError(f"health_check ended {state.type.value}: {state.message}")
    return wall, state.result(), state.state_details.flow_run_id


def run_plain(variant: Path) -> tuple[float, dict[str, int]]:
    """The same probes, no Prefect: service URLs, host resources and a Mongo ping in one pool of 50."""
    import pymongo

    from upkeep.config import load_inventory
    from upkeep.config.render import render
    from upkeep.config.secrets import resolve_secret
    from upkeep.hosts.pool import build_host
    from upkeep.probes import probe_http

    inv = load_inventory(variant)  # parsed outside the timed region (the flow parses it inside)
    env = inv.environment(ENVIRONMENT)
    timeout = env.thresholds.probe_timeout.total_seconds()
    urls = [(f"{h.name}/{name}", render(svc.health_url, h)) for name, svc in env.services.items() if svc.monitored
            for h in env.hosts_with_role(svc.role or name)]
    assert env.mongodb is not None
    mongo_uri = resolve_secret(env.mongodb.uri).get_secret_value()
    ms = int(env.mongodb.timeout.total_seconds() * 1000)

    started = time.perf_counter()
    hosts = [build_host(cfg, inv.ssh) for cfg in env.hosts]
    mongo = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms)

    def host_job(h: Any) -> bool:
        try:
            h.resources()
            return True
        except Exception:  # noqa: BLE001 - counted as down, like probe_hosts
            return False

    def url_job(t: tuple[str, str]) -> bool:
        return probe_http(t[0], t[1], timeout).ok

    def mongo_job() -> bool:
        try:
            mongo.admin.command("ping")
            return True
        except pymongo.errors.PyMongoError:
            return False

    try:
        with ThreadPoolExecutor(max_workers=PLAIN_WORKERS, thread_name_prefix="plain") as pool:
            fut_db = pool.submit(mongo_job)
            fut_urls = [pool.submit(url_job, t) for t in urls]
            fut_hosts = [pool.submit(host_job, h) for h in hosts]
            ok = {"services_up": sum(f.result() for f in fut_urls), "services": len(urls),
                  "hosts_up": sum(f.result() for f in fut_hosts), "hosts": len(hosts), "db_up": int(fut_db.result())}
    finally:
        for h in hosts:
            h.close()
        mongo.close()
    return time.perf_counter() - started, ok


# -- main -------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None, *, default_hosts: int = TARGET_HOSTS,
               description: str | None = None) -> argparse.Namespace:
    """--hosts / --repeats / --verbose, shared with benchmarks.rolling_update."""
    p = argparse.ArgumentParser(description=description or __doc__.split("\n")[0])
    p.add_argument("--hosts", type=int, default=default_hosts, help=f"sshd hosts (default {default_hosts}, at most 240)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each side (default 3)")
    p.add_argument("--verbose", action="store_true", help="keep Prefect's console logs (default: warnings only)")
    args = p.parse_args(argv)
    if not 1 <= args.hosts <= 240 or args.repeats < 1:
        p.error("--hosts must be 1..240 and --repeats positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"health_check benchmark: {args.hosts} hosts, {args.repeats} repeats (+1 warm-up each side)")
    load_before = loadavg()
    print(f"  load average before: {load_before} on {os.cpu_count()} CPUs", flush=True)
    stack = None
    flows: list[float] = []
    plains: list[float] = []
    samples: list[dict[str, Any]] = []
    breakdowns: list[dict[str, Any]] = []
    if not args.verbose:
        quiet_prefect_console()
    try:
        stack = start_stack("upkeep-bench-hc-", args.hosts, ("prefect", "mongo", "sshd", "standin"))
        variant = write_variant(stack, "upkeep-bench-health.yaml",
                                lambda env: env.setdefault("monitoring", {}).__setitem__("auto_recover", None))
        wall, result, fr_id = run_flow(variant)
        print(f"  warm-up      flow   {wall:7.3f}s  samples {result['samples']}, healthy {result['healthy']}", flush=True)
        wall, ok = run_plain(variant)
        print(f"  warm-up      plain  {wall:7.3f}s  {ok}", flush=True)
        for r in range(args.repeats):
            order = ("flow", "plain") if r % 2 == 0 else ("plain", "flow")
            for side in order:
                if side == "flow":
                    wall, result, fr_id = run_flow(variant)
                    fr = flow_run(fr_id)
                    bd = breakdown(task_runs(fr_id))
                    flows.append(wall)
                    breakdowns.append(bd)
                    samples.append({"side": "flow", "repeat": r + 1, "wall": wall, "samples": result["samples"],
                                    "healthy": result["healthy"], "breaches": result["breaches"][:10],
                                    "flow_run_id": str(fr_id), "api_total_run_time": fr.total_run_time.total_seconds(),
                                    "tasks": bd})
                    print(f"  repeat {r + 1}/{args.repeats}   flow   {wall:7.3f}s  samples {result['samples']}, "
                          f"healthy {result['healthy']}, Prefect total_run_time {fr.total_run_time.total_seconds():.3f}s",
                          flush=True)
                else:
                    wall, ok = run_plain(variant)
                    plains.append(wall)
                    samples.append({"side": "plain", "repeat": r + 1, "wall": wall, **ok})
                    print(f"  repeat {r + 1}/{args.repeats}   plain  {wall:7.3f}s  {ok}", flush=True)
        vers = versions()
    finally:
        stop_stack(stack)
    load_after = loadavg()

    flow_med, plain_med = median(flows), median(plains)
    share = (flow_med - plain_med) / flow_med
    print(f"\n{'side':<6} {'median s':>9} {'min s':>8} {'max s':>8}")
    print(f"{'flow':<6} {flow_med:>9.3f} {min(flows):>8.3f} {max(flows):>8.3f}")
    print(f"{'plain':<6} {plain_med:>9.3f} {min(plains):>8.3f} {max(plains):>8.3f}")
    print(f"Prefect overhead share (flow - plain) / flow = ({flow_med:.3f} - {plain_med:.3f}) / {flow_med:.3f} = {share:.1%}")
    print("\nflow task runs (median over repeats of summed run time; Prefect API total_run_time):")
    names = sorted({n for bd in breakdowns for n in bd})
    table = {}
    for n in names:
        sums = [bd[n]["sum_s"] for bd in breakdowns if n in bd]
        table[n] = {"count": breakdowns[-1].get(n, {}).get("count", 0), "sum_s_median": median(sums),
                    "retries": sum(bd.get(n, {}).get("retries", 0) for bd in breakdowns)}
        print(f"  {n:<40} x{table[n]['count']:<3} {table[n]['sum_s_median']:7.3f}s  retries {table[n]['retries']}")
    print(f"load average after: {load_after}")
    check = target_check(f"one health_check run < {TARGET_SECONDS:g} s at {args.hosts} hosts"
                         + ("" if args.hosts == TARGET_HOSTS else f" (target defined at {TARGET_HOSTS})"),
                         round(flow_med, 3), flow_med < TARGET_SECONDS, f"median {flow_med:.3f}s")
    path = write_results("health_check", {
        "hosts": args.hosts, "repeats": args.repeats, "plain_workers": PLAIN_WORKERS,
        "samples": samples, "flow_median": flow_med, "plain_median": plain_med, "prefect_overhead_share": share,
        "task_breakdown": table, "checks": [check], "versions": vers,
        "loadavg_before": load_before, "loadavg_after": load_after,
    })
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
