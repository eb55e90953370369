"""Part 2 of the backup benchmark: Upkeep's test restore beside the server's own ceiling for the same work.

See benchmarks/backup_verify.py (the command) and benchmarks/README.md (what is timed, results).
"""

from __future__ import annotations

import argparse
import gzip
import random
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks._backup_common import BUCKET, PREFIX, BenchError, MiB, measure, rotated, server_pid
from benchmarks._report import clocked

#: Restore docs/s target (absolute); the alternative is the server's insert ceiling measured beside it.
RESTORE_TARGET = 50_000
INSERT_BATCH = 1000


# -- restore --------------------------------------------------------------------------------------
def event_docs(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """n event-like documents of about 200 bytes of BSON each."""
    from bson import ObjectId

    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    kinds = ["login", "logout", "purchase", "refund", "error", "page_view", "signup"]
    return [{
        "_id": ObjectId(),
        "ts": start + timedelta(milliseconds=i * 1733),
        "type": rnd.choice(kinds),
        "host": f"app-{rnd.randrange(40):02d}",
        "user": rnd.randrange(250_000),
        "severity": rnd.randrange(5),
        "duration_ms": round(rnd.random() * 900, 3),
        "message": f"request {rnd.getrandbits(64):016x} handled by worker {rnd.randrange(64)}",
        "tags": rnd.sample(["web", "api", "mobile", "batch", "eu", "us"], 2),
    } for i in range(n)]


@dataclass
class RestoreCtx:
    """The dumped backup and the same documents as raw BSON (for the insert ceiling)."""

    client: Any
    store: Any
    manifest: Any
    raw_docs: list[Any]
    dump_bytes: int
    avg_doc_bytes: float


def seed_collection(client: Any, docs: Sequence[dict[str, Any]]) -> Any:
    """The source collection, with 2 secondary indexes."""
    coll = client["upkeep_bench_src"]["events"]
    coll.drop()
    for i in range(0, len(docs), INSERT_BATCH):
        coll.insert_many(docs[i:i + INSERT_BATCH], ordered=False)
    coll.create_index([("ts", 1)], name="ts_1")
    coll.create_index([("type", 1), ("host", 1)], name="type_1_host_1")
    return coll


def dump_backup(store: Any, coll: Any, work: Path) -> Any:
    """Dump `coll` and upload it as tasks/mongo.py dump_to_store does; the backup's Manifest."""
    from upkeep.backup.dump import dump_collection, file_sha256, index_metadata
    from upkeep.backup.manifest import CollectionEntry, FileEntry, Manifest, new_backup_id

    backup_id = new_backup_id()
    count, content, dumped = dump_collection(coll, work / "data.bson.gz")
    meta = index_metadata(coll)
    indexes = sorted(ix["name"] for ix in coll.list_indexes())
    database, name = coll.database.name, coll.name
    data_key, meta_key = f"{database}/{name}.bson.gz", f"{database}/{name}.metadata.json"
    store.put_file(backup_id, data_key, dumped.path, dumped.sha256)
    store.put_bytes(backup_id, meta_key, meta)
    entry = CollectionEntry(database=database, name=name, count=count, content_sha256=content, indexes=indexes,
                            data=FileEntry(key=data_key, size=dumped.size, sha256=dumped.sha256),
                            metadata=FileEntry(key=meta_key, size=len(meta), sha256=file_sha256(meta)))
    now = datetime.now(UTC)
    return Manifest(backup_id=backup_id, environment="bench", created_at=now, completed_at=now,
                    source=f"mongodb databases {database}", collections=[entry])


def raw_documents(path: Path) -> list[Any]:
    """The dump's documents as RawBSONDocument, decoded once (not timed)."""
    from bson.raw_bson import RawBSONDocument

    from upkeep.backup.dump import iter_bson

    with gzip.open(path, "rb") as gz:
        return [RawBSONDocument(raw) for raw in iter_bson(gz)]


def prepare_restore(stack: Any, store: Any, n_docs: int, work: Path) -> RestoreCtx:
    """Seed, dump and upload the collection; decode the dump for the ceiling runs."""
    import pymongo

    client = pymongo.MongoClient(stack.mongo_uri, serverSelectionTimeoutMS=10_000)
    coll = seed_collection(client, event_docs(n_docs))
    manifest = dump_backup(store, coll, work)
    raw = raw_documents(work / "data.bson.gz")
    dump_bytes = (work / "data.bson.gz").stat().st_size
    (work / "data.bson.gz").unlink()
    client.drop_database("upkeep_bench_src")
    avg = sum(len(d.raw) for d in raw) / max(1, len(raw))
    return RestoreCtx(client, store, manifest, raw, dump_bytes, avg)


@contextmanager
def phase_clock() -> Iterator[dict[str, float]]:
    """Time verify._load, verify._compare and Collection.create_indexes (inside _compare) while active."""
    from pymongo.collection import Collection

    from upkeep.backup import verify

    phases = {"load": 0.0, "compare": 0.0, "index_build": 0.0}
    originals = (verify._load, verify._compare, Collection.create_indexes)

    verify._load = clocked(phases, "load", originals[0])
    verify._compare = clocked(phases, "compare", originals[1])
    Collection.create_indexes = clocked(phases, "index_build", originals[2])  # type: ignore[method-assign]  # timed; restored below
    try:
        yield phases
    finally:
        verify._load, verify._compare, Collection.create_indexes = originals  # type: ignore[method-assign]  # the original


@dataclass
class RestoreSample:
    """One timed restore (RestoreResult.seconds, wall with the scratch drop, phases) or one ceiling run."""

    seconds: float
    wall: float
    docs: int
    client_cpu: float
    server_cpu: float
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def docs_per_second(self) -> float:
        return self.docs / self.seconds


def run_restore(ctx: RestoreCtx, mongo_pid: int | None) -> RestoreSample:
    """upkeep.backup.verify.restore into a scratch database (dropped by restore itself), phases timed."""
    from upkeep.backup.verify import restore

    with phase_clock() as phases:
        sample, result = measure(lambda: restore(ctx.client, ctx.store, ctx.manifest), mongo_pid)
    bad = [f.message for f in result.findings if not f.ok]
    if bad or result.documents != ctx.manifest.document_count:
        raise BenchError(f"restore failed: {bad[:3]}")
    phases = dict(phases, compare_scan=phases["compare"] - phases["index_build"])
    return RestoreSample(result.seconds, sample.wall, result.documents, sample.client_cpu, sample.server_cpu, phases)


def run_ceiling(ctx: RestoreCtx, mongo_pid: int | None, k: int) -> RestoreSample:
    """The server's own ceiling, no Upkeep code: `insert_many` of the same raw BSON (batches of 1000,
    unordered, as _load) into a fresh collection, then one `createIndexes` of the same two indexes."""
    from pymongo import IndexModel

    from upkeep.backup.dump import RAW

    name = f"upkeep_bench_ceiling_{k}"
    target = ctx.client.get_database(name, codec_options=RAW)["events"]
    phases: dict[str, float] = {}

    def insert_all() -> int:
        t0 = time.perf_counter()
        for i in range(0, len(ctx.raw_docs), INSERT_BATCH):
            target.insert_many(ctx.raw_docs[i:i + INSERT_BATCH], ordered=False)
        t1 = time.perf_counter()
        target.create_indexes([IndexModel([("ts", 1)], name="ts_1"),
                               IndexModel([("type", 1), ("host", 1)], name="type_1_host_1")])
        phases.update(insert=t1 - t0, index_build=time.perf_counter() - t1)
        return len(ctx.raw_docs)

    try:
        sample, n = measure(insert_all, mongo_pid)
        if target.count_documents({}) != n:
            raise BenchError("ceiling run: document count differs")
    finally:
        ctx.client.drop_database(name)
    return RestoreSample(sample.wall, sample.wall, n, sample.client_cpu, sample.server_cpu, phases)


def run_restores(ctx: RestoreCtx, repeats: int, mongo_pid: int | None) -> dict[str, list[RestoreSample]]:
    """`repeats` rounds of restore and insert ceiling, order swapped each round."""
    out: dict[str, list[RestoreSample]] = {"restore": [], "ceiling": []}
    for r in range(repeats):
        for what in rotated(["restore", "ceiling"], r):
            s = run_restore(ctx, mongo_pid) if what == "restore" else run_ceiling(ctx, mongo_pid, r)
            out[what].append(s)
            extra = "  ".join(f"{k} {v:.2f}s" for k, v in s.phases.items())
            print(f"  [{r + 1}/{repeats}] {what:8s} {s.docs} docs {s.seconds:6.2f}s {s.docs_per_second:8.0f} docs/s "
                  f"(wall {s.wall:.2f}s, client cpu {s.client_cpu:.2f}s, db cpu {s.server_cpu:.2f}s) {extra}", flush=True)
    return out



def summarize_restore(runs: dict[str, list[RestoreSample]]) -> dict[str, Any]:
    """Medians of docs/s, phases and CPU of the restore and ceiling runs."""
    rs, cs = runs["restore"], runs["ceiling"]
    med = statistics.median
    phases = {k: med(s.phases[k] for s in rs) for k in rs[0].phases}
    cph = {k: med(s.phases[k] for s in cs) for k in cs[0].phases}
    docs = rs[0].docs
    return {
        "restore_docs_s": med(s.docs_per_second for s in rs), "restore_seconds": med(s.seconds for s in rs),
        "restore_wall_with_drop_s": med(s.wall for s in rs), "restore_db_cpu_s": med(s.server_cpu for s in rs),
        "restore_client_cpu_s": med(s.client_cpu for s in rs), "phases_s": phases,
        "load_docs_s": docs / phases["load"] if phases["load"] else 0.0,
        "restored_docs_s": med(s.docs / (s.phases["load"] + s.phases["index_build"]) for s in rs),
        "ceiling_docs_s": med(s.docs_per_second for s in cs), "ceiling_seconds": med(s.seconds for s in cs),
        "ceiling_phases_s": cph, "insert_ceiling_docs_s": med(s.docs / s.phases["insert"] for s in cs),
        "ceiling_db_cpu_s": med(s.server_cpu for s in cs), "ceiling_client_cpu_s": med(s.client_cpu for s in cs),
    }


def print_restore(sm: dict[str, Any], ctx: RestoreCtx) -> dict[str, Any]:
    """The restore figures and the target check (which of the two targets was met, if any)."""
    n = ctx.manifest.document_count
    print(f"\nRestore: {n} documents, {ctx.avg_doc_bytes:.0f} B BSON each, dump {ctx.dump_bytes / MiB:.2f} MiB gz, "
          "2 secondary indexes; median of the repeats")
    print(f"{'what':50s} {'seconds':>8s} {'docs/s':>9s} {'db cpu s':>9s} {'cpu s':>6s}")
    p, c = sm["phases_s"], sm["ceiling_phases_s"]
    print(f"{'upkeep verify.restore (RestoreResult)':50s} {sm['restore_seconds']:8.2f} {sm['restore_docs_s']:9.0f} "
          f"{sm['restore_db_cpu_s']:9.2f} {sm['restore_client_cpu_s']:6.2f}")
    print(f"{'  restore: load (stream, gunzip, insert_many)':50s} {p['load']:8.2f} {sm['load_docs_s']:9.0f}")
    print(f"{'  restore: createIndexes (2 indexes, one command)':50s} {p['index_build']:8.2f}")
    print(f"{'  = restored (load + indexes)':50s} {p['load'] + p['index_build']:8.2f} {sm['restored_docs_s']:9.0f}")
    print(f"{'  verify: count + _id-order content-hash scan':50s} {p['compare_scan']:8.2f}")
    print(f"{'  (scratch drop, after RestoreResult.seconds)':50s} {sm['restore_wall_with_drop_s'] - sm['restore_seconds']:8.2f}")
    print(f"{'server ceiling: insert_many raw x1000 + createIndexes':50s} {sm['ceiling_seconds']:8.2f} "
          f"{sm['ceiling_docs_s']:9.0f} {sm['ceiling_db_cpu_s']:9.2f} {sm['ceiling_client_cpu_s']:6.2f}")
    print(f"{'  of which insert_many (the insert ceiling)':50s} {c['insert']:8.2f} {sm['insert_ceiling_docs_s']:9.0f}")
    print(f"{'  of which createIndexes':50s} {c['index_build']:8.2f}")
    restored, ceiling = sm["restored_docs_s"], sm["ceiling_docs_s"]
    absolute = restored >= RESTORE_TARGET
    relative = restored >= ceiling
    met = "absolute (>= 50k docs/s)" if absolute else "relative (>= the server's ceiling)" if relative else "neither"
    print(f"target: restore >= {RESTORE_TARGET} docs/s or >= the server's own ceiling beside it (the same inserts and "
          f"index builds, no Upkeep code): {restored:.0f} docs/s = {restored / ceiling:.2f}x -> "
          f"{'PASS' if absolute or relative else 'FAIL'} (met: {met})")
    print(f"  (load alone vs the insert-only ceiling: {sm['load_docs_s'] / sm['insert_ceiling_docs_s']:.2f}x; the whole "
          f"verified restore, with the read-back scan: {sm['restore_docs_s']:.0f} docs/s = {sm['restore_docs_s'] / ceiling:.2f}x "
          f"the ceiling, {sm['restore_docs_s'] / sm['insert_ceiling_docs_s']:.2f}x the insert-only ceiling)")
    return {"target": f">= {RESTORE_TARGET} docs/s or >= the server's ceiling (inserts + index builds)", "met": met,
            "pass": absolute or relative, "restored_vs_ceiling": restored / ceiling,
            "load_vs_insert_ceiling": sm["load_docs_s"] / sm["insert_ceiling_docs_s"],
            "verified_restore_vs_ceiling": sm["restore_docs_s"] / ceiling,
            "verified_restore_vs_insert_ceiling": sm["restore_docs_s"] / sm["insert_ceiling_docs_s"]}



def restore_part(args: argparse.Namespace, stack: Any, work: Path) -> dict[str, Any]:
    """Seed, dump, upload; time restore and the insert ceiling; report."""
    from upkeep.backup.store import BackupStore

    store = BackupStore(stack.s3_client(), BUCKET, PREFIX)
    store.ensure_bucket()
    t0 = time.perf_counter()
    ctx = prepare_restore(stack, store, args.docs, work)
    print(f"  seeded, dumped and uploaded {args.docs} documents in {time.perf_counter() - t0:.1f}s", flush=True)
    try:
        runs = run_restores(ctx, args.repeats, server_pid(stack, "secantusdb"))
    finally:
        ctx.client.close()
    sm = summarize_restore(runs)
    check = print_restore(sm, ctx)
    return {"docs": args.docs, "avg_doc_bytes": ctx.avg_doc_bytes, "dump_bytes": ctx.dump_bytes, "summary": sm,
            "check": check, "samples": {k: [asdict(s) for s in v] for k, v in runs.items()}}
