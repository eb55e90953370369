"""Log analysis benchmark: Upkeep's daily analysis end to end over a ≥ 5M-line JSON log, beside grep and jq.

    PYTHONPATH=. .venv/bin/python -m benchmarks.log_analysis [--lines 5000000] [--repeats 3]

Generates a day of API + worker JSON lines with `sandbox/logsynth.py` (or reuses the cached files: plain,
gzip -6 and zstd -3, in --data-dir), then per repeat runs, in a rotated order, each side in a fresh
subprocess: Upkeep on the gzip, zstd and plain file (decompress → batches → parse → every aggregation →
summary and markdown; no charts), `grep -c '"level": "error"'` and `jq -c 'select(.level=="error")' | wc -l`
on the plain file. Upkeep is timed inside its process (imports excluded, as in a Prefect worker), the
others as whole commands; the peak RSS of every side is its process' max RSS (`wait4`; this process stays
small, as its own peak is the floor of what its children report). Prints medians, lines/s, the ratios and
the target checks, and writes all samples to benchmarks/results/. See benchmarks/README.md ("log_analysis").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, cast

from benchmarks._report import SampleStats, target_check, write_results

DAY = date(2026, 12, 6)
SEED = 20261206
GENERATOR = "logsynth-v1"  # part of the cache file names: bump when sandbox/logsynth.py changes its output
TARGET_LINES_PER_S = 1_000_000
TARGET_RSS_BYTES = 1 << 30
JQ_BUDGET_S = 120.0  # over this (estimated from a 1M-line prefix) jq runs on the prefix and is extrapolated
JQ_PREFIX_LINES = 1_000_000
SIDES = ("upkeep-gzip", "upkeep-zstd", "upkeep-plain", "grep", "jq")


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds: Upkeep's analysis inside its process; grep / jq: the whole command
    process_wall: float  # seconds of the whole process (Upkeep: with interpreter start and imports)
    max_rss: int  # bytes, the process' peak resident set (for jq: the jq process)
    count: int  # error lines the side counted
    lines: int  # lines the timing covers (jq on a prefix: the prefix)


@dataclass
class Series(SampleStats):
    side: str
    samples: list[Sample] = field(default_factory=list)
    extrapolated: bool = False

    @property
    def lines_per_s(self) -> float:
        return self.samples[0].lines / self.median if self.median else 0.0


# -- data -----------------------------------------------------------------------------------------
def ensure_data(data_dir: Path, lines: int) -> dict[str, Path]:
    """The plain, gzip and zstd files of the benchmark day (written once, then reused). Written by a child
    process: this one must stay small, its peak RSS is the floor of what `wait4` reports for its children."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stem = data_dir / f"{GENERATOR}-{DAY}-{lines}-{SEED}.jsonl"
    files = {"none": stem, "gzip": stem.with_suffix(".jsonl.gz"), "zstd": stem.with_suffix(".jsonl.zst")}
    if not all(f.exists() for f in files.values()):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "benchmarks.log_analysis", "--generate", str(stem), "--lines", str(lines)],
                       check=True)
        print(f"  data written in {time.perf_counter() - started:.1f} s", flush=True)
    return files


def generate(stem: Path, lines: int) -> None:
    """Write the day (plain), then gzip -6 and zstd -3 copies of it, each through a temporary name."""
    from sandbox.logsynth import Injections, write_day

    files = {"none": stem, "gzip": stem.with_suffix(".jsonl.gz"), "zstd": stem.with_suffix(".jsonl.zst")}
    if not stem.exists():
        started = time.perf_counter()
        tmp = stem.with_suffix(".tmp")
        write_day(tmp, DAY, lines, seed=SEED, inject=Injections(new_errors=500, burst=40, suspicious=60, new_admin=12))
        tmp.rename(stem)
        print(f"  generated {stem.name}: {stem.stat().st_size / 1e9:.2f} GB in {time.perf_counter() - started:.1f} s",
              flush=True)
    if not files["gzip"].exists():
        started = time.perf_counter()
        tmp = files["gzip"].with_suffix(".tmp")
        if shutil.which("gzip"):
            with tmp.open("wb") as out:
                subprocess.run(["gzip", "-6", "-c", str(stem)], stdout=out, check=True)
        else:
            import gzip
            with stem.open("rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        tmp.rename(files["gzip"])
        print(f"  gzip -6: {files['gzip'].stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s", flush=True)
    if not files["zstd"].exists():
        import zstandard
        started = time.perf_counter()
        tmp = files["zstd"].with_suffix(".tmp")
        with stem.open("rb") as src, tmp.open("wb") as dst:
            zstandard.ZstdCompressor(level=3, threads=-1).copy_stream(src, dst)
        tmp.rename(files["zstd"])
        print(f"  zstd -3: {files['zstd'].stat().st_size / 1e6:.0f} MB in {time.perf_counter() - started:.1f} s", flush=True)


def count_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            n += block.count(b"\n")
    return n


# -- sides ----------------------------------------------------------------------------------------
def run_process(argv: list[str], *, shell: bool = False, stdin: Any = subprocess.DEVNULL) -> tuple[str, float, int]:
    """(stdout, wall seconds, max RSS bytes) of one process, waited for with wait4 (its own rusage only)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv if not shell else argv[0], shell=shell, stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = proc.stdout.read() if proc.stdout else b"", b""  # read before wait: no pipe deadlock
    if proc.stderr:
        err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {err.decode(errors='replace')[-1500:]}")
    return out.decode(), wall, usage.ru_maxrss * 1024


def run_upkeep(path: Path, compression: str, lines: int) -> Sample:
    argv = [sys.executable, "-m", "benchmarks.log_analysis", "--child", str(path), "--compression", compression]
    out, wall, rss = run_process(argv)
    result = json.loads(out.strip().splitlines()[-1])
    return Sample(result["seconds"], wall, rss, result["error_lines"], result["lines"])


def run_grep(path: Path, lines: int) -> Sample:
    out, wall, rss = run_process(["grep", "-c", '"level": "error"', str(path)])
    return Sample(wall, wall, rss, int(out.strip()), lines)


def run_jq(path: Path, lines: int) -> Sample:
    """jq's process alone is the RSS; `wc -l` counts its output lines (in this process, streamed)."""
    started = time.perf_counter()
    proc = subprocess.Popen(["jq", "-c", 'select(.level=="error")', str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    count = 0
    assert proc.stdout is not None
    while block := proc.stdout.read(1 << 20):
        count += block.count(b"\n")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError("jq failed")
    return Sample(wall, wall, usage.ru_maxrss * 1024, count, lines)


def child(path: Path, compression: str, workers: int | None) -> None:
    """One timed Upkeep pass in this (fresh) process; prints its figures as one JSON line."""
    from upkeep.loganalysis import Compression, analyse, decompressed_chunks

    started = time.perf_counter()
    with path.open("rb") as f:
        result = analyse(decompressed_chunks(f, cast(Compression, compression)), day=DAY, workers=workers)
        summary = result.summary()
        markdown = result.markdown()
    seconds = time.perf_counter() - started
    t = result.totals
    print(json.dumps({"seconds": seconds, "lines": t.lines, "error_lines": t.error_lines, "malformed": t.malformed,
                      "summary_bytes": len(json.dumps(summary)), "markdown_chars": len(markdown),
                      "alerts": len(result.alerts())}))


def profile(path: Path, compression: str, top: int) -> None:
    """cProfile of one sequential pass (workers=1: a profile of the worker threads would see nothing)."""
    import cProfile
    import pstats

    from upkeep.loganalysis import Compression, analyse, decompressed_chunks

    prof = cProfile.Profile()
    with path.open("rb") as f:
        prof.enable()
        analyse(decompressed_chunks(f, cast(Compression, compression)), day=DAY, workers=1).markdown()
        prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(top)


# -- main -----------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=5_000_000, help="valid lines of the generated day (default 5,000,000)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per side (default 3)")
    p.add_argument("--sides", nargs="+", choices=SIDES, default=list(SIDES), help="sides to run (default: all)")
    p.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "upkeep-bench-logs",
                   help="where the generated files are cached (default: $TMPDIR/upkeep-bench-logs)")
    p.add_argument("--profile", action="store_true", help="print a cProfile of one sequential Upkeep pass (gzip)")
    p.add_argument("--top", type=int, default=30, help="rows of the profile")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target check fails")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--child-profile", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--compression", default="none", help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child(args.child, args.compression, args.workers)
        return 0
    if args.generate:
        generate(args.generate, args.lines)
        return 0
    if args.child_profile:
        profile(args.child_profile, "gzip", args.top)
        return 0
    print(f"log_analysis: {args.lines:,} lines, {args.repeats} repeats, sides {args.sides}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    files = ensure_data(args.data_dir, args.lines)
    total = count_lines(files["none"])
    print(f"  {files['none']}: {total:,} lines, {files['none'].stat().st_size / 1e9:.2f} GB plain, "
          f"{files['gzip'].stat().st_size / 1e6:.0f} MB gzip, {files['zstd'].stat().st_size / 1e6:.0f} MB zstd", flush=True)
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"  this process' peak RSS {floor / 2**20:.0f} MiB: the floor of every side's reported peak (a child "
          "starts as a copy of it)", flush=True)
    if args.profile:
        subprocess.run([sys.executable, "-m", "benchmarks.log_analysis", "--child-profile", str(files["gzip"]),
                        "--top", str(args.top)], check=True)

    jq_file, jq_lines, extrapolate = files["none"], total, False
    if "jq" in args.sides:
        prefix = files["none"].with_suffix(f".first{JQ_PREFIX_LINES}.jsonl")
        if not prefix.exists():
            with files["none"].open("rb") as src, prefix.open("wb") as dst:
                for i, line in enumerate(src):
                    if i >= JQ_PREFIX_LINES:
                        break
                    dst.write(line)
        probe = run_jq(prefix, JQ_PREFIX_LINES)
        estimate = probe.wall * total / JQ_PREFIX_LINES
        if estimate > JQ_BUDGET_S:
            jq_file, jq_lines, extrapolate = prefix, JQ_PREFIX_LINES, True
            print(f"  jq on {JQ_PREFIX_LINES:,} lines took {probe.wall:.1f} s: over all {total:,} it would take "
                  f"~{estimate:.0f} s (> {JQ_BUDGET_S:.0f} s), so jq runs on that prefix and its rate is extrapolated")

    runners = {
        "upkeep-gzip": lambda: run_upkeep(files["gzip"], "gzip", total),
        "upkeep-zstd": lambda: run_upkeep(files["zstd"], "zstd", total),
        "upkeep-plain": lambda: run_upkeep(files["none"], "none", total),
        "grep": lambda: run_grep(files["none"], total),
        "jq": lambda: run_jq(jq_file, jq_lines),
    }
    series = {s: Series(s, extrapolated=(s == "jq" and extrapolate)) for s in args.sides}
    for r in range(args.repeats):
        order = args.sides[r % len(args.sides):] + args.sides[: r % len(args.sides)]
        for side in order:
            sample = runners[side]()
            series[side].samples.append(sample)
            print(f"  repeat {r + 1} {side:<13} {sample.wall:7.2f} s  {sample.lines / sample.wall / 1e6:6.2f} M lines/s  "
                  f"peak RSS {sample.max_rss / 2**20:6.0f} MiB  error lines {sample.count:,}", flush=True)

    print(f"\n{'side':<13} {'median s':>9} {'min s':>8} {'M lines/s':>10} {'peak RSS MiB':>13} {'error lines':>12}")
    for s in series.values():
        rss = max(x.max_rss for x in s.samples)
        note = " (1M-line prefix, rate extrapolated)" if s.extrapolated else ""
        print(f"{s.side:<13} {s.median:>9.2f} {s.min:>8.2f} {s.lines_per_s / 1e6:>10.2f} {rss / 2**20:>13.0f} "
              f"{s.samples[0].count:>12,}{note}")
    upkeep = [series[s] for s in ("upkeep-gzip", "upkeep-plain") if s in series]
    for u in upkeep:
        for other in ("grep", "jq"):
            if other in series:
                print(f"  {u.side} / {other}: {u.lines_per_s / series[other].lines_per_s:.2f}× the lines per second")
    checks = []
    for u in upkeep:
        checks.append(target_check(f"{u.side} ≥ {TARGET_LINES_PER_S:,} lines/s end to end", u.lines_per_s,
                                   u.lines_per_s >= TARGET_LINES_PER_S, f"{u.lines_per_s:,.0f} lines/s"))
        rss = max(x.max_rss for x in u.samples)
        checks.append(target_check(f"{u.side} peak RSS < 1 GiB", rss, rss < TARGET_RSS_BYTES, f"{rss / 2**20:,.0f} MiB"))
    path = write_results("log_analysis", {
        "lines": total, "day": DAY, "seed": SEED, "cpus": os.cpu_count(), "load_average": os.getloadavg(),
        "files": {k: {"path": str(v), "bytes": v.stat().st_size} for k, v in files.items()},
        "series": {k: {"extrapolated": s.extrapolated, "samples": [asdict(x) for x in s.samples]} for k, s in series.items()},
        "checks": checks,
    })
    print(f"\nresults: {path}")
    return 1 if args.strict and not all(c["pass"] for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
