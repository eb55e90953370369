"""Orchestration per host-stage on both engines, side by side: SQLite server + `upkeep serve` vs PostgreSQL server + two
process workers; then scheduling under load on the PostgreSQL one.

    PYTHONPATH=. .venv/bin/python -m benchmarks.engines [--hosts 100] [--repeats 3] [--load-minutes 5] [--verbose]

Starts one stack (Prefect server on SQLite, SecantusDB, SeaweedFS, an sshd fleet of N hosts, the stand-in on the first
two) and, beside it, a second Prefect server on PostgreSQL with two `process` workers (`sandbox/engine.py`: deployments
from prefect.yaml by `prefect deploy --all`, paused; results in S3; the watchdog). `upkeep serve --paused` serves the
same deployments on the SQLite server. Both run the inventory variant written here (development: no backup first,
approvals held, `max_concurrency` 10).

Part 1, per engine and repeat: a run of `system-update-development` (every host: a patch and a minor update of the
sandbox package manager, re-seeded before each run) and one of `health-check-development`, created as the UI's Quick
run does and executed by that engine's runner (serve's subprocess, or a worker's); beside them, in this process, the same
work without Prefect (benchmarks.rolling_update.run_plain, benchmarks.health_check.run_plain). Orchestration cost =
the run's time as the API records it (Running → final state) − the plain time; per host-stage = that / (hosts × the
stages the run's report lists). Target: ≤ 15 ms per host-stage on both engines. The pick-up time (created → Running:
polling, the run's process start) is printed beside it, not counted.

Part 2 (`--load-minutes`, 0 to skip), PostgreSQL engine: the minutely health checks of the three environments resumed
(their schedules run) while rolling updates of all N hosts follow each other on the same two workers; then every
scheduled health-check run due in that time: lateness (start − expected start; target ≤ 30 s) and missed runs (due but
never started, or not Completed; target 0). Every process is stopped by PID in `finally`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._report import begin_run, loadavg, target_check, write_results
from benchmarks.health_check import median, start_stack, stop_stack, versions, write_variant

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 15.0
TARGET_LATE_S = 30.0
CONCURRENCY = 10
ENVIRONMENTS = ("development", "staging", "production")
ROUTINES = {"system-update": "system-update/system-update-development",
            "health-check": "health-check/health-check-development"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hosts", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--load-minutes", type=float, default=5.0)
    p.add_argument("--verbose", action="store_true")
    return p.parse_args(argv)


def variant_change(env: dict[str, Any]) -> None:
    """Development: the sandbox package manager only (what the plain side does too), no backup first, approvals held."""
    sandbox = [s for s in env["updates"]["sources"] if s["manager"] == "sandbox"]
    env["updates"] = {**env["updates"], "sources": sandbox, "backup_first": False, "approvals": "hold"}
    env["max_concurrency"] = CONCURRENCY
    env.setdefault("monitoring", {})["auto_recover"] = None


class Engine:
    """One Prefect server and what runs its deployments: a client of its API, its name."""

    def __init__(self, name: str, api_url: str, auth_string: str | None = None) -> None:
        from prefect.client.orchestration import SyncPrefectClient

        self.name, self.api_url = name, api_url
        self.client = SyncPrefectClient(api_url, auth_string=auth_string)  # the PostgreSQL stack's server asks for one
        self.client.__enter__()

    def close(self) -> None:
        self.client.__exit__(None, None, None)

    def run(self, deployment: str, parameters: dict[str, Any], timeout: float = 900) -> Any:
        """A run of `deployment` created as the UI's Quick run does; the flow run once final (RuntimeError unless
        Completed)."""
        d = self.client.read_deployment_by_name(deployment)
        created = self.client.create_flow_run_from_deployment(d.id, parameters=parameters)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fr = self.client.read_flow_run(created.id)
            if fr.state is not None and fr.state.is_final():
                if not fr.state.is_completed():
                    raise RuntimeError(f"{self.name}: {deployment} ended {fr.state.name}: {fr.state.message}")
                return fr
            time.sleep(0.2)
        raise RuntimeError(f"{self.name}: {deployment} did not finish in {timeout:.0f} s")

    def stages(self, flow_run_id: Any) -> dict[str, float]:
        """Seconds per stage of a run, from its report artifact (`## pre: done in 1.23s`)."""
        import re

        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        arts = self.client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
        text = str(next((a.data for a in arts if (a.key or "").endswith("-report")), "") or "")
        return {m[1]: float(m[2]) for m in re.finditer(r"^## (\w+): \w+ in ([\d.]+)s", text, re.M)}


def serve_sqlite(stack: Any, variant: Path) -> Any:
    """`upkeep serve --paused` on the stack's SQLite server, with the variant inventory; once its deployments exist."""
    from sandbox.procs import spawn, wait_until

    env = {**os.environ, **stack.prefect_env(), **stack.secrets(), "UPKEEP_CONFIG": str(variant), "PYTHONPATH": str(ROOT),
           "PREFECT_RUNNER_POLL_FREQUENCY": "2"}  # as the workers poll (sandbox/engine.py); pick-up is not counted
    proc = spawn("serve", [sys.executable, "-m", "deployments.cli", "serve", "--paused"], stack.base / "logs" / "serve.log",
                 env=env, cwd=ROOT)
    stack.procs.append(proc)
    from prefect.client.orchestration import SyncPrefectClient

    def served() -> bool:
        with SyncPrefectClient(stack.prefect_api_url) as client:
            try:
                client.read_deployment_by_name(ROUTINES["health-check"])
                return True
            except Exception:  # noqa: BLE001 - not registered yet
                return False

    wait_until(served, timeout=180, what="upkeep serve's deployments", proc=proc)
    return proc


def start_postgres_engine(stack: Any, variant: Path) -> Any:
    """A second Prefect server on PostgreSQL with two process workers running the variant inventory (sandbox/engine.py)."""
    from sandbox.procs import free_port
    from sandbox.stack import Stack, StackSettings

    base = Path(tempfile.mkdtemp(prefix="upkeep-bench-pg-"))
    base.chmod(0o755)
    engine = Stack(StackSettings(base, prefect_port=free_port(), components=("prefect",), engine="postgres",
                                 worker_limit=4, paused=True))
    try:
        engine.up()
        engine.start_workers(2, {**engine.prefect_env(), **stack.secrets(), "UPKEEP_CONFIG": str(variant)})
    except BaseException:
        engine.down()
        shutil.rmtree(base, ignore_errors=True)
        raise
    return engine


def seconds(fr: Any) -> tuple[float, float]:
    """(Running → final, created → Running) of a flow run, from the API."""
    run = (fr.end_time - fr.start_time).total_seconds()
    return run, (fr.start_time - fr.created).total_seconds()


def part1(engines: list[Engine], variant: Path, hosts: int, repeats: int) -> dict[str, Any]:
    from benchmarks import health_check as hc
    from benchmarks import rolling_update as ru

    plains: dict[str, list[float]] = {"system-update": [], "health-check": []}
    runs: dict[tuple[str, str], list[float]] = {}
    pickups: dict[tuple[str, str], list[float]] = {}
    stages: dict[tuple[str, str], int] = {}
    params = {"config": str(variant)}

    def plain(routine: str) -> float:
        if routine == "system-update":
            ru.reseed(variant)
            wall, _phases, _per_host = ru.run_plain(variant)
            ru.check_updated(variant)
        else:
            wall, ok = hc.run_plain(variant)
            if ok["hosts_up"] != ok["hosts"]:
                raise RuntimeError(f"plain health check: {ok}")
        return wall

    def flow(engine: Engine, routine: str) -> tuple[float, float, int]:
        if routine == "system-update":
            ru.reseed(variant)
        fr = engine.run(ROUTINES[routine], params)
        if routine == "system-update":
            ru.check_updated(variant)
        run, pickup = seconds(fr)
        return run, pickup, len(engine.stages(fr.id))

    for routine in ROUTINES:  # one untimed warm-up of every side
        plain(routine)
        for warm in engines:
            flow(warm, routine)
    for r in range(repeats):
        for routine in ROUTINES:
            order: list[Engine | None] = [None, *engines] if r % 2 == 0 else [*reversed(engines), None]
            for engine in order:
                if engine is None:
                    wall = plain(routine)
                    plains[routine].append(wall)
                    print(f"  repeat {r + 1}/{repeats} {routine:<13} plain      {wall:7.3f}s", flush=True)
                    continue
                run, pickup, n = flow(engine, routine)
                runs.setdefault((engine.name, routine), []).append(run)
                pickups.setdefault((engine.name, routine), []).append(pickup)
                stages[(engine.name, routine)] = n
                print(f"  repeat {r + 1}/{repeats} {routine:<13} {engine.name:<10} {run:7.3f}s (picked up after "
                      f"{pickup:.2f}s; {n} stages)", flush=True)
    out: dict[str, Any] = {"rows": []}
    print(f"\n{'routine':<14}{'engine':<11}{'run s':>8}{'plain s':>9}{'orch. s':>9}{'host-stages':>12}{'ms/host-stage':>15}"
          f"{'pick-up s':>11}")
    for (engine_name, routine), xs in runs.items():
        run_med, plain_med = median(xs), median(plains[routine])
        host_stages = hosts * stages[(engine_name, routine)]
        per = (run_med - plain_med) / host_stages * 1000
        row = {"routine": routine, "engine": engine_name, "run_median_s": run_med, "plain_median_s": plain_med,
               "orchestration_s": run_med - plain_med, "host_stages": host_stages, "ms_per_host_stage": per,
               "pickup_median_s": median(pickups[(engine_name, routine)]), "runs_s": xs, "plains_s": plains[routine]}
        out["rows"].append(row)
        print(f"{routine:<14}{engine_name:<11}{run_med:>8.3f}{plain_med:>9.3f}{run_med - plain_med:>9.3f}{host_stages:>12}"
              f"{per:>15.2f}{row['pickup_median_s']:>11.2f}")
    ratios = {}
    for routine in ROUTINES:
        by = {r["engine"]: r for r in out["rows"] if r["routine"] == routine}
        if {"sqlite", "postgres"} <= by.keys() and by["sqlite"]["orchestration_s"] > 0:
            ratios[routine] = by["postgres"]["orchestration_s"] / by["sqlite"]["orchestration_s"]
            print(f"  {routine}: orchestration postgres+workers / sqlite+serve = {ratios[routine]:.2f}")
    out["ratios"] = ratios
    return out


def part2(engine: Engine, variant: Path, minutes: float) -> dict[str, Any]:
    """Minutely health checks of three environments resumed while 100-host rolling updates follow each other."""
    from benchmarks import rolling_update as ru

    ids = {env: engine.client.read_deployment_by_name(f"health-check/health-check-{env}").id for env in ENVIRONMENTS}
    for d in ids.values():
        engine.client.update_deployment(d, _paused(False))
    resumed = datetime.now(UTC)
    until = resumed + timedelta(minutes=minutes)
    updates: list[float] = []
    try:
        while datetime.now(UTC) < until:
            ru.reseed(variant)
            fr = engine.run(ROUTINES["system-update"], {"config": str(variant)})
            updates.append(seconds(fr)[0])
            print(f"  under load: rolling update of every host in {updates[-1]:.1f}s", flush=True)
    finally:
        for d in ids.values():
            engine.client.update_deployment(d, _paused(True))
    time.sleep(90)  # the runs due in the last minute start and end
    return lateness(engine, ids, resumed + timedelta(seconds=60), until, updates)


def _paused(value: bool) -> Any:
    from prefect.client.schemas.actions import DeploymentUpdate

    return DeploymentUpdate(paused=value)


def lateness(engine: Engine, ids: dict[str, Any], start: datetime, end: datetime, updates: list[float]) -> dict[str, Any]:
    """Every minute slot in [start, end) of the three health-check deployments: the run due then, how late it started;
    missed = a slot with no run, or whose run never started or did not complete."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter, FlowRunFilterExpectedStartTime

    runs: list[Any] = []
    while True:  # the API serves at most 200 per call
        page = engine.client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=list(ids.values()))),
            flow_run_filter=FlowRunFilter(expected_start_time=FlowRunFilterExpectedStartTime(after_=start, before_=end)),
            limit=200, offset=len(runs))
        runs += page
        if len(page) < 200:
            break
    env_of = {v: k for k, v in ids.items()}
    first = start.replace(second=0, microsecond=0) + (timedelta(minutes=1) if start.second or start.microsecond else timedelta())
    minutes = [first + timedelta(minutes=i) for i in range(int((end - first).total_seconds() // 60))]
    due = {(env_of[r.deployment_id], r.expected_start_time.replace(second=0, microsecond=0)): r for r in runs
           if r.expected_start_time is not None and r.expected_start_time < end}
    late, missed = [], []
    for env in ids:
        for minute in minutes:
            r = due.get((env, minute))
            if r is None:
                missed.append(f"{env} {minute:%H:%M}: no run")
            elif r.start_time is None or r.state is None or not r.state.is_completed():
                missed.append(f"{env} {minute:%H:%M}: {r.state.name if r.state else '?'}")
            if r is not None and r.start_time is not None and r.expected_start_time is not None:
                late.append((r.start_time - r.expected_start_time).total_seconds())
    slots = len(ids) * len(minutes)
    late_sorted = sorted(late)
    p95 = late_sorted[int(0.95 * (len(late_sorted) - 1))] if late_sorted else float("nan")
    print(f"\nscheduling under load: {slots} minute slots ({len(minutes)} minutes x {len(ids)} environments), "
          f"{len(updates)} rolling updates of every host meanwhile (median {median(updates) if updates else 0:.1f}s)")
    print(f"  lateness (start - expected start): median {median(late) if late else float('nan'):.1f}s, p95 {p95:.1f}s, "
          f"max {max(late) if late else float('nan'):.1f}s; missed or not completed: {len(missed)}")
    for m in missed[:10]:
        print(f"    {m}")
    return {"slots": slots, "late_s": late, "missed": missed, "updates_s": updates,
            "max_late_s": max(late) if late else None, "p95_late_s": p95}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"engines benchmark: {args.hosts} hosts, {args.repeats} repeats (+1 warm-up each side), "
          f"load {args.load_minutes:g} min")
    load_before = begin_run(args.verbose)
    stack = pg = None
    engines: list[Engine] = []
    checks, results = [], {}
    try:
        stack = start_stack("upkeep-bench-engines-", args.hosts, ("prefect", "mongo", "s3", "sshd", "standin"))
        variant = write_variant(stack, "upkeep-bench-engines.yaml", variant_change)
        started = time.perf_counter()
        serve_sqlite(stack, variant)
        pg = start_postgres_engine(stack, variant)
        print(f"  upkeep serve on SQLite and PostgreSQL + 2 workers up in {time.perf_counter() - started:.1f}s", flush=True)
        engines = [Engine("sqlite", stack.prefect_api_url), Engine("postgres", pg.prefect_api_url, pg.auth_string())]
        results["part1"] = part1(engines, variant, args.hosts, args.repeats)
        for row in results["part1"]["rows"]:
            checks.append(target_check(f"{row['routine']} on {row['engine']}: orchestration <= {TARGET_MS:g} ms per host-stage",
                                       round(row["ms_per_host_stage"], 3), row["ms_per_host_stage"] <= TARGET_MS,
                                       f"{row['ms_per_host_stage']:.2f} ms"))
        if args.load_minutes > 0:
            results["part2"] = load = part2(engines[1], variant, args.load_minutes)
            worst = load["max_late_s"] if load["max_late_s"] is not None else float("inf")
            checks.append(target_check(f"minutely health checks of 3 environments under load: none late > {TARGET_LATE_S:g} s",
                                       worst, worst <= TARGET_LATE_S, f"max {worst:.1f} s"))
            checks.append(target_check("none missed", len(load["missed"]), not load["missed"], f"{len(load['missed'])} missed"))
        vers = versions()
    finally:
        for e in engines:
            e.close()
        if pg is not None:
            pg.down()
            shutil.rmtree(pg.base, ignore_errors=True)
        stop_stack(stack)
    path = write_results("engines", {"hosts": args.hosts, "repeats": args.repeats, "concurrency": CONCURRENCY, **results,
                                     "checks": checks, "versions": vers, "loadavg_before": load_before,
                                     "loadavg_after": loadavg()})
    print(f"results: {path}")
    return 0 if all(c["pass"] for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())

