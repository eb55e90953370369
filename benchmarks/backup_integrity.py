"""Part 1 of the backup benchmark: Upkeep's integrity pass beside sha256sum, b3sum, hashlib and raw boto3 GETs.

See benchmarks/backup_verify.py (the command) and benchmarks/README.md (what is timed, results).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import pstats
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks._backup_common import BUCKET, PREFIX, BenchError, GiB, MiB, Series, measure, plain_s3_client, rotated, server_pid

READ_SIZE = MiB  # the hashlib pass and the raw GETs read 1 MiB at a time (Upkeep's CHUNK too)
THREADS = 4  # tasks/s3.py check_integrity's default
#: Upkeep's integrity throughput must be at least this share of the plain hashlib pass.
INTEGRITY_TARGET = 0.8

UPKEEP = "upkeep check_object x4 (S3)"
UPKEEP_SHA256 = "upkeep, sha256 manifest (S3)"
BOTO_DEFAULT = "boto3 GET x4, default client (S3)"
BOTO_PLAIN = "boto3 GET x4, no resp. checksum (S3)"
SHA256SUM = "sha256sum (local)"
B3SUM = "b3sum (local)"
HASHLIB = "hashlib sha256 1 thread (local)"


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

    def __enter__(self) -> ThreadProfiles:
        original = self._original

        def run(thread: threading.Thread) -> None:
            prof = cProfile.Profile(time.thread_time)
            with self._lock:
                self.profiles.append(prof)
            prof.runcall(original, thread)

        threading.Thread.run = run  # type: ignore[method-assign, assignment]  # every thread profiled; restored on exit
        return self

    def __exit__(self, *exc: object) -> None:
        threading.Thread.run = self._original  # type: ignore[method-assign]  # the original

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
                best = min((measure(partial(upkeep_pass, store, ctx.backup_id, entries, n), weed_pid)[0]
                            for _ in range(2)), key=lambda s: s.wall)
                rows.append({"variant": variant, "chunk": chunk, "threads": n, **asdict(best),
                             "gib_s": ctx.total_bytes / GiB / best.wall})
                print(f"  sweep {variant:7s} chunk {chunk // 1024:5d} KiB threads {n}: {best.wall:6.3f}s "
                      f"{rows[-1]['gib_s']:5.2f} GiB/s cpu {best.client_cpu:5.2f}s s3 cpu {best.server_cpu:5.2f}s", flush=True)
    return rows


def _chunked(cls: type, chunk: int) -> type:
    """A subclass of the store class whose iter_chunks reads `chunk` bytes at a time."""
    class Chunked(cls):  # type: ignore[misc]  # a subclass of whichever store class is given
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
        install = ["apt-get", "install", "-y", "-qq", "b3sum"]
        for cmd in (install, ["apt-get", "update", "-qq"], install):
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
