"""What a health check leaves in the Prefect database, and that pruning keeps it flat.

    PYTHONPATH=. .venv/bin/python -m benchmarks.prefect_db [--rounds 3] [--runs 60] [--hosts 5] [--event-retention 240]

Starts its own stack (Prefect server on SQLite, SeaweedFS, SecantusDB, an sshd fleet, the stand-in) with the
event settings Upkeep recommends (events kept `--event-retention` seconds here in place of days; the vacuum
service removing expired events and the logs/artifacts of deleted runs every 10 s). Registers the
health-check deployment of "development" (not served) and, per round, creates `--runs` runs from it and
executes each in this process (as a worker would in its subprocess), then measures the bytes the database
uses (pages in use, free pages left out) and runs `prune_runs` with a retention of one second.

Prints bytes per health-check run (target ≤ 50 KB) beside the peer, an empty Prefect flow run from a deployment
(Prefect's own floor per run) and their ratio, the bytes and rows per run of the largest tables, and the used
size after each round's pruning (flat when pruning works). The stack is stopped by PID in `finally`.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._report import quiet_prefect_console, target_check, write_results
from benchmarks.health_check import ENVIRONMENT, start_stack, stop_stack, versions, write_variant

TARGET_BYTES = 50_000
TABLES = ("events", "event_resources", "log", "task_run", "task_run_state", "flow_run", "flow_run_state", "artifact",
          "artifact_collection")


def used_bytes(db: Path) -> int:
    """Bytes of the database's pages in use (the WAL's committed pages included, free pages not)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        pages, free, size = (con.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count", "page_size"))
    return int((pages - free) * size)


def table_bytes(db: Path) -> dict[str, int]:
    """Bytes per table, its indexes included (SQLite's dbstat: pages in use)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        owner = dict(con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')").fetchall())
        out: dict[str, int] = {}
        for name, size in con.execute("SELECT name, sum(pgsize - unused) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            out[table] = out.get(table, 0) + int(size)
    return out


def event_names(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return {str(e): int(n) for e, n in con.execute("SELECT event, count(*) FROM events GROUP BY event")}


def rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        return {t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in TABLES if t in names}


def empty_flow() -> None:
    """The peer: Prefect's own floor, a flow run that does nothing (decorated in `peer_flow`)."""


def peer_flow() -> Any:
    from prefect import flow

    return flow(name="empty-peer")(empty_flow)


def register_deployment() -> Any:
    """The health-check flow as a deployment (not served: this process executes its runs)."""
    from flows.health_check import health_check
    from upkeep.routines import HEALTH_CHECK

    deployment_id = health_check.to_deployment(name=HEALTH_CHECK.deployment_name(ENVIRONMENT)).apply()
    return deployment_id


def run_from_deployment(deployment_id: Any, variant: Path | None, peer: Any = None) -> None:
    """Create a run of the deployment and execute it here, as `prefect flow-run execute` does (the
    health check; with `peer`, that flow without parameters)."""
    from prefect.client.orchestration import get_client
    from prefect.flow_engine import run_flow

    from flows.health_check import health_check

    params: dict[str, Any] = {} if peer is not None else {"environment": ENVIRONMENT, "config": str(variant)}
    with get_client(sync_client=True) as client:
        flow_run = client.create_flow_run_from_deployment(deployment_id, parameters=params)
    state = run_flow(peer if peer is not None else health_check, flow_run=flow_run, parameters=params, return_type="state")
    if not state.is_completed():
        raise RuntimeError(f"health_check ended {state.type.value}: {state.message}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=60, help="health-check runs per round")
    p.add_argument("--hosts", type=int, default=5)
    p.add_argument("--event-retention", type=int, default=240,
                   help="seconds events are kept (production: days); longer than a round, so a round's events are all counted")
    args = p.parse_args(argv)

    quiet_prefect_console()
    os.environ.update({
        "PREFECT_SERVER_EVENTS_RETENTION_PERIOD": f"PT{args.event_retention}S",  # ISO 8601; production: days
        "PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "events,orphans",
        "PREFECT_SERVER_SERVICES_DB_VACUUM_LOOP_SECONDS": "10",
        "PREFECT_SERVER_SERVICES_DB_VACUUM_ORPHAN_CLEANUP_LOOP_SECONDS": "10",
    })
    stack = None
    try:
        stack = start_stack("upkeep-bench-db-", args.hosts, ("prefect", "s3", "mongo", "sshd", "standin"))
        db = stack.base / "prefect" / "prefect.db"

        def keep_one_second(env: dict[str, Any]) -> None:
            env["monitoring"] = {**env["monitoring"], "auto_recover": None, "health_runs_kept": "1s", "probe_agent": None}

        variant = write_variant(stack, "bench-db.yaml", keep_one_second)
        from flows.prune_runs import prune_runs

        deployment_id = register_deployment()
        run_from_deployment(deployment_id, variant)  # warm-up: imports, first connections, tables created
        prune_runs(environment=ENVIRONMENT, config=str(variant), dry_run=False)
        time.sleep(args.event_retention + 15)  # the warm-up's events expire and are vacuumed
        baseline = used_bytes(db)
        print(f"  baseline: {baseline / 1e6:.2f} MB used", flush=True)
        rounds = []
        for n in range(args.rounds):
            before, before_rows, before_tables, before_events = used_bytes(db), rows(db), table_bytes(db), event_names(db)
            started = time.perf_counter()
            for _ in range(args.runs):
                run_from_deployment(deployment_id, variant)
            time.sleep(10)  # the server persists events in batches: let the last runs' land before measuring
            grown, after_rows, after_tables = used_bytes(db), rows(db), table_bytes(db)
            events = {e: round((n - before_events.get(e, 0)) / args.runs, 1) for e, n in event_names(db).items()}
            by_table = {t: round((b - before_tables.get(t, 0)) / args.runs) for t, b in after_tables.items()}
            by_table = dict(sorted(((t, b) for t, b in by_table.items() if b > 100), key=lambda x: -x[1]))
            per_run = (grown - before) / args.runs
            per_table = {t: round((after_rows.get(t, 0) - before_rows.get(t, 0)) / args.runs, 1) for t in after_rows}
            pruned = prune_runs(environment=ENVIRONMENT, config=str(variant), dry_run=False)
            time.sleep(args.event_retention + 15)  # events expire; the vacuum takes them and the deleted runs' logs
            settled = used_bytes(db)
            rounds.append({"round": n + 1, "seconds": round(time.perf_counter() - started, 1), "bytes_per_run": per_run,
                           "rows_per_run": per_table, "bytes_per_run_by_table": by_table, "events_per_run": events,
                           "pruned": pruned["deleted"], "used_after_prune": settled})
            print(f"  round {n + 1}: {per_run / 1e3:.1f} KB per run ({args.runs} runs), bytes per run by table {by_table}, "
                  f"rows per run {per_table}, events per run {events}; "
                  f"pruned {pruned['deleted']}; used after pruning and vacuum {settled / 1e6:.2f} MB", flush=True)
        peer = peer_flow()
        peer_id = peer.to_deployment(name="empty-peer").apply()
        run_from_deployment(peer_id, None, peer)
        before = used_bytes(db)
        for _ in range(args.runs):
            run_from_deployment(peer_id, None, peer)
        time.sleep(10)
        peer_per_run = (used_bytes(db) - before) / args.runs
        per_run = sorted(r["bytes_per_run"] for r in rounds)[len(rounds) // 2]
        print(f"\n  peer, an empty Prefect flow run from a deployment: {peer_per_run / 1e3:.1f} KB per run; "
              f"health check / empty flow run = {per_run / peer_per_run:.2f}×")
        flat = [r["used_after_prune"] for r in rounds]
        checks = [
            target_check("bytes of Prefect database per health-check run ≤ 50 KB", per_run, per_run <= TARGET_BYTES,
                         f"{per_run / 1e3:.1f} KB (median of {len(rounds)} rounds)"),
            target_check("size after pruning stays flat (last round within 10 % of the first)", flat[-1],
                         flat[-1] <= flat[0] * 1.10, " → ".join(f"{b / 1e6:.2f} MB" for b in flat)),
        ]
        path = write_results("prefect_db", {"args": vars(args), "baseline": baseline, "rounds": rounds, "checks": checks,
                                            "peer_empty_flow_bytes_per_run": peer_per_run,
                                            "versions": versions()})
        print(f"  results: {path}")
        return 0
    finally:
        stop_stack(stack)


if __name__ == "__main__":
    sys.exit(main())
