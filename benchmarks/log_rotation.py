"""Log rotation benchmark: Upkeep's rotation engine against logrotate.

    PYTHONPATH=. .venv/bin/python -m benchmarks.log_rotation [--size-gib 1] [--repeats 3]

Two parts, every side run in the same process, in a rotated order each repeat:

1. **Speed** (`speed`): rotate and compress the same JSON request log (`--size-gib`, generated once with a fixed
   seed and cached in the temp dir, copied fresh before every timed run): `logrotate -f -s STATE CONF` with
   `compress` (its default: `/bin/gzip` with no options, i.e. level 6, as a pipe) against Upkeep's `rotate_log`
   with zstd and with gzip. Wall and CPU seconds, compression ratio (raw / compressed). Targets: Upkeep(zstd)
   ≥ 3× faster than logrotate at a compression ratio within 15 % of gzip's; Upkeep(gzip) no slower than 1.1×
   logrotate.
2. **Lines lost** (`loss`): a writer of numbered lines (sandbox/logwriter.py) at 50,000 lines/s, rotated
   `--rotations` times `--interval` s apart: logrotate `copytruncate` against Upkeep's rename + reopen (the
   reopen command is `kill -HUP <writer pid>`); every file is read back and the numbers 1..last counted.
   Target: Upkeep loses and duplicates 0 lines.

Results go to benchmarks/results/log_rotation-<UTC time>.json. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from benchmarks._report import SampleStats, interrupt_on_sigterm, loadavg, write_results
from sandbox.logwriter import missing_and_duplicates, sequence_numbers

REPO = Path(__file__).resolve().parent.parent
GiB = 1024**3
LOGROTATE = "/usr/sbin/logrotate"
SPEED_TOOLS = ("logrotate", "upkeep-zstd", "upkeep-gzip")
LOSS_TOOLS = ("logrotate-copytruncate", "upkeep-rename")
ZSTD_SPEEDUP_TARGET = 3.0  # logrotate / Upkeep(zstd), medians
ZSTD_RATIO_TOLERANCE = 0.15  # Upkeep(zstd)'s compression ratio ≥ (1 - this) × logrotate's gzip ratio
GZIP_SLOWDOWN_LIMIT = 1.1  # Upkeep(gzip) / logrotate, medians
SOURCE_VERSION = 1  # bump when the generated log changes: the cache key


class BenchError(RuntimeError):
    """A tool run did not do its job (exit code, missing output, errors): its timing would be meaningless."""


# -- the source log -------------------------------------------------------------------------------
ROUTES = [("GET", "/api/events", "/api/events", 30), ("GET", "/api/events/{}", "/api/events/:id", 25),
          ("POST", "/api/events", "/api/events", 4), ("PUT", "/api/events/{}", "/api/events/:id", 3),
          ("GET", "/api/users/{}", "/api/users/:id", 10), ("POST", "/api/login", "/api/login", 12),
          ("GET", "/health", "/health", 16)]
JOBS = ("send-reminders", "sync-calendar", "index-search", "cleanup-sessions")


def _lines(rnd: random.Random, start: float, count: int) -> tuple[str, float]:
    """`count` log lines in the stand-in's schema (plus a request id) from time `start`; the text and the end time."""
    weights = [w for *_, w in ROUTES]
    out = []
    t = start
    prefix_second, prefix = -1, ""
    for (method, path, route, _), roll, gap in zip(rnd.choices(ROUTES, weights=weights, k=count),
                                                    (rnd.random() for _ in range(count)),
                                                    (rnd.expovariate(500) for _ in range(count)), strict=True):
        t += gap
        second = int(t)
        if second != prefix_second:
            prefix_second, prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        ts = f"{prefix}.{int((t - second) * 1000):03d}Z"
        if roll < 0.01:
            job = JOBS[int(roll * 400) % len(JOBS)]
            out.append(f'{{"ts": "{ts}", "level": "info", "service": "worker", "job": "{job}", '
                       f'"duration_ms": {rnd.lognormvariate(5.5, 0.8):.2f}, "msg": "{job} done"}}\n')
            continue
        status, level, msg = (201, "info", "created") if method == "POST" and route == "/api/events" else (200, "info", "ok")
        if route == "/api/login" and roll > 0.82:
            status, level, msg = 401, "warn", "invalid credentials"
        elif roll > 0.995:
            status, level, msg = 500, "error", "MongoServerError: connection pool cleared"
        elif roll > 0.97:
            status, level, msg = 404, "warn", "not found"
        user = "null" if route == "/health" else f'"user{rnd.randrange(600)}@example.org"'
        out.append(f'{{"ts": "{ts}", "level": "{level}", "service": "api", "method": "{method}", '
                   f'"path": "{path.format(rnd.randrange(1, 1500))}", "route": "{route}", "status": {status}, '
                   f'"duration_ms": {rnd.lognormvariate(3.0, 0.6):.2f}, '
                   f'"ip": "10.0.{rnd.randrange(1, 4)}.{rnd.randrange(2, 250)}", "user": {user}, '
                   f'"req": "{rnd.getrandbits(64):016x}", "msg": "{msg}"}}\n')
    return "".join(out), t


def source_log(size: int, cache: Path) -> Path:
    """A JSON request log of at least `size` bytes, generated once (fixed seed) and kept in `cache`."""
    path = cache / f"source-{size}-v{SOURCE_VERSION}.log"
    if path.exists() and path.stat().st_size >= size:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    print(f"  generating a {size / GiB:.2f} GiB JSON log in {path} (once; kept for the next runs)", flush=True)
    rnd = random.Random(20261206)
    t = datetime(2026, 12, 1, tzinfo=UTC).timestamp()
    tmp = path.with_suffix(".tmp")
    written = 0
    with tmp.open("wb") as out:
        while written < size:
            text, t = _lines(rnd, t, 20_000)
            written += out.write(text.encode())
    tmp.replace(path)
    return path


# -- timing helpers -------------------------------------------------------------------------------
def cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads) and of its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def fresh_dir(path: Path) -> Path:
    """`path`, emptied (0700: logrotate refuses a world-writable log directory)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700, parents=True)
    return path


def logrotate_conf(conf: Path, log: Path, directives: Sequence[str]) -> Path:
    body = "\n".join(f"    {d}" for d in directives)
    conf.write_text(f"{log} {{\n{body}\n}}\n")
    return conf


def run_logrotate(conf: Path, state: Path) -> None:
    proc = subprocess.run([LOGROTATE, "-f", "-s", str(state), str(conf)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise BenchError(f"logrotate exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")


def upkeep_rotate(log: Path, compression: str, *, reopen: list[str], method: Literal["rename", "copytruncate"] = "rename",
                  grace: float | None = None) -> list[Path]:
    """One forced rotation by Upkeep's engine on this machine; the compressed files it finished (absolute paths)."""
    from upkeep.config.models import RotationPolicy
    from upkeep.hosts.local import LocalHost
    from upkeep.rotation import LogTarget, rotate_log

    policy: dict[str, Any] = {"compression": compression, "keep": 30}
    if grace is not None:
        policy["grace"] = timedelta(seconds=grace)
    outcome = rotate_log(LocalHost(), LogTarget(path=str(log), reopen=reopen, method=method), RotationPolicy(**policy),
                         archive=None, now=datetime.now(UTC), force=True)
    if outcome.errors or not outcome.rotated or len(outcome.compressed) != len(outcome.rotated):
        raise BenchError(f"upkeep ({compression}, {method}): rotated {outcome.rotated}, compressed {outcome.compressed}, "
                         f"held {outcome.held}, errors {outcome.errors}")
    return [log.parent / name for name in outcome.compressed]  # base names, in the log's directory


def upkeep_available() -> str | None:
    """Why Upkeep's side cannot run (its rotation engine is not importable), or None."""
    try:
        import upkeep.rotation  # noqa: F401
    except ImportError as exc:
        return f"upkeep.rotation is not importable ({exc})"
    return None


def decompressed(path: Path) -> bytes:
    """A rotated file's content: gunzipped, un-zstd'ed (zstd CLI) or as it is."""
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".zst":
        return subprocess.run(["zstd", "-dcq", str(path)], capture_output=True, check=True).stdout
    return path.read_bytes()


def decompressed_size(path: Path) -> int:
    """Bytes of `path` once decompressed, streamed through the format's own CLI."""
    tool = {".gz": ["gzip", "-dc"], ".zst": ["zstd", "-dcq"]}.get(path.suffix)
    if tool is None:
        return path.stat().st_size
    total = 0
    with subprocess.Popen([*tool, str(path)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            total += len(chunk)
    if proc.returncode != 0:
        raise BenchError(f"{tool[0]} could not decompress {path} (exit {proc.returncode})")
    return total


# -- part 1: speed --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SpeedSample:
    """One rotation of the whole log: wall and CPU seconds, raw and compressed bytes."""

    wall: float
    cpu: float
    raw: int
    compressed: int

    @property
    def ratio(self) -> float:
        return self.raw / self.compressed


@dataclass
class SpeedSeries(SampleStats):
    tool: str
    samples: list[SpeedSample] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.samples[0].ratio  # the same input and settings every time: the same output size


@dataclass(frozen=True)
class SpeedSetup:
    source: Path
    work: Path
    grace: float | None
    verify: set[str]  # tools whose next output is decompressed and checked (the first sample of each)


def _timed(setup: SpeedSetup, tool: str, rotate: Callable[[Path], list[Path]]) -> SpeedSample:
    """Copy the source to a fresh directory (untimed, then sync), time `rotate(log)`, measure its output."""
    logs = fresh_dir(setup.work / "logs")
    log = logs / "app.log"
    shutil.copyfile(setup.source, log)
    raw = log.stat().st_size
    os.sync()  # the copy's dirty pages written back before the clock starts, not during the run
    cpu, started = cpu_seconds(), time.perf_counter()
    rotated = rotate(log)
    wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    if len(rotated) != 1 or not rotated[0].exists():
        raise BenchError(f"{tool}: expected one rotated file, got {rotated}")
    if tool in setup.verify:
        setup.verify.discard(tool)
        if (size := decompressed_size(rotated[0])) != raw:
            raise BenchError(f"{tool}: {rotated[0].name} decompresses to {size} bytes, the log had {raw}")
    return SpeedSample(wall, cpu, raw, rotated[0].stat().st_size)


def speed_logrotate(setup: SpeedSetup) -> SpeedSample:
    def rotate(log: Path) -> list[Path]:
        conf = logrotate_conf(setup.work / "speed.conf", log, ["rotate 30", "compress", "missingok"])
        state = setup.work / "speed.state"
        state.unlink(missing_ok=True)
        run_logrotate(conf, state)
        return [p for p in log.parent.iterdir() if p.name != log.name]

    return _timed(setup, "logrotate", rotate)


def speed_upkeep(compression: str) -> Callable[[SpeedSetup], SpeedSample]:
    def run(setup: SpeedSetup) -> SpeedSample:
        # no writer here: the reopen command the rename method requires is a no-op (`true`, one process start)
        return _timed(setup, f"upkeep-{compression}",
                      lambda log: upkeep_rotate(log, compression, reopen=["true"], grace=setup.grace))

    return run


SPEED_RUNNERS: dict[str, Callable[[SpeedSetup], SpeedSample]] = {
    "logrotate": speed_logrotate, "upkeep-zstd": speed_upkeep("zstd"), "upkeep-gzip": speed_upkeep("gzip"),
}


def rotated(tools: Sequence[str], k: int) -> list[str]:
    """The tool order of repeat k (rotated so no tool always runs first)."""
    k %= len(tools)
    return [*tools[k:], *tools[:k]]


def speed_part(setup: SpeedSetup, tools: Sequence[str], repeats: int) -> dict[str, SpeedSeries]:
    series = {t: SpeedSeries(t) for t in tools}
    for r in range(repeats):
        for tool in rotated(tools, r):
            s = SPEED_RUNNERS[tool](setup)
            series[tool].samples.append(s)
            print(f"  repeat {r + 1}/{repeats}  {tool:<12} {s.wall:7.2f}s  cpu {s.cpu:6.2f}s  "
                  f"ratio {s.ratio:5.2f}  ({s.compressed / 2**20:,.1f} MiB)", flush=True)
    shutil.rmtree(setup.work / "logs", ignore_errors=True)
    return series


def speed_checks(series: dict[str, SpeedSeries]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    lr = series.get("logrotate")
    if lr is None:
        return out
    if (z := series.get("upkeep-zstd")) is not None:
        speedup = lr.median / z.median
        out.append({"check": f"Upkeep(zstd) >= {ZSTD_SPEEDUP_TARGET:g}x faster than logrotate (logrotate/upkeep-zstd)",
                    "measured": round(speedup, 2), "pass": speedup >= ZSTD_SPEEDUP_TARGET})
        share = z.ratio / lr.ratio
        out.append({"check": f"Upkeep(zstd)'s compression ratio within {ZSTD_RATIO_TOLERANCE:.0%} of gzip's "
                             "(zstd ratio / logrotate gzip ratio)",
                    "measured": round(share, 3), "pass": share >= 1 - ZSTD_RATIO_TOLERANCE})
    if (g := series.get("upkeep-gzip")) is not None:
        slowdown = g.median / lr.median
        out.append({"check": f"Upkeep(gzip) no slower than {GZIP_SLOWDOWN_LIMIT:g}x logrotate (upkeep-gzip/logrotate)",
                    "measured": round(slowdown, 2), "pass": slowdown <= GZIP_SLOWDOWN_LIMIT})
    return out


def print_speed(series: dict[str, SpeedSeries]) -> None:
    lr = series.get("logrotate")
    print(f"\n{'tool':<12} {'median s':>9} {'min s':>8} {'cpu s':>7} {'MiB/s':>7} {'ratio':>6} {'vs logrotate':>13}")
    for tool, s in series.items():
        vs = f"{lr.median / s.median:.2f}x" if lr is not None else "-"
        print(f"{tool:<12} {s.median:>9.2f} {s.min:>8.2f} {s.median_of('cpu'):>7.2f} "
              f"{s.samples[0].raw / 2**20 / s.median:>7.1f} {s.ratio:>6.2f} {vs:>13}")
    print("(median/min: wall seconds of the rotation incl. compression; cpu: median CPU seconds of the tool; "
          "ratio: raw/compressed; vs logrotate: logrotate's median / the tool's, > 1 = faster)")


# -- part 2: lines lost ---------------------------------------------------------------------------
@dataclass
class LossRun:
    """One writer run rotated `rotations` times by one tool, and what the files held afterwards."""

    tool: str
    last: int = 0
    reopens: int = 0
    writer_rate: float = 0.0
    files: int = 0
    lines: int = 0
    lost: int = 0
    duplicated: int = 0
    first_lost: list[int] = field(default_factory=list)
    rotation_seconds: list[float] = field(default_factory=list)
    interval_seconds: float = 0.0


@dataclass(frozen=True)
class LossSetup:
    work: Path
    rate: int
    rotations: int
    interval: float
    grace: float | None


class Writer:
    """sandbox/logwriter.py in a subprocess, writing `log` until stopped (by PID)."""

    def __init__(self, setup: LossSetup, log: Path) -> None:
        self.pid_file, self.status_file = setup.work / "writer.pid", setup.work / "writer.json"
        for f in (self.pid_file, self.status_file):
            f.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "sandbox.logwriter", "--file", str(log), "--rate", str(setup.rate),
                                      "--pid-file", str(self.pid_file), "--status-file", str(self.status_file)],
                                     cwd=REPO, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self.pid_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise BenchError(f"the log writer did not start (exit {self.proc.returncode})")
            time.sleep(0.01)

    def stop(self) -> dict[str, Any]:
        """SIGTERM, wait, and its status: last line number, reopens, seconds."""
        self.proc.send_signal(signal.SIGTERM)
        if self.proc.wait(timeout=30) != 0:
            raise BenchError(f"the log writer exited {self.proc.returncode}")
        status: dict[str, Any] = json.loads(self.status_file.read_text())
        return status

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def loss_rotator(tool: str, setup: LossSetup, log: Path, pid: int) -> Callable[[], None]:
    """One rotation of `log` by `tool`, as a callable."""
    if tool == "logrotate-copytruncate":
        conf = logrotate_conf(setup.work / "loss.conf", log, ["rotate 30", "copytruncate", "nocompress", "missingok"])
        state = setup.work / "loss.state"
        state.unlink(missing_ok=True)
        return lambda: run_logrotate(conf, state)

    def rename() -> None:
        upkeep_rotate(log, "zstd", reopen=["kill", "-HUP", str(pid)], grace=setup.grace)

    return rename


def loss_run(setup: LossSetup, tool: str) -> LossRun:
    """Start the writer, rotate its log `rotations` times `interval` s apart (start to start), stop it, count."""
    logs = fresh_dir(setup.work / "logs")
    log = logs / "app.log"
    run = LossRun(tool)
    writer = Writer(setup, log)
    try:
        rotate = loss_rotator(tool, setup, log, writer.proc.pid)
        started = time.monotonic()
        for i in range(1, setup.rotations + 1):
            time.sleep(max(0.0, started + i * setup.interval - time.monotonic()))
            t0 = time.perf_counter()
            rotate()
            run.rotation_seconds.append(round(time.perf_counter() - t0, 4))
        run.interval_seconds = round((time.monotonic() - started) / setup.rotations, 3)
        time.sleep(setup.interval)
        status = writer.stop()
    finally:
        writer.kill()
    run.last, run.reopens = status["last"], status["reopens"]
    run.writer_rate = round(status["last"] / status["seconds"])
    files = sorted(logs.iterdir())
    numbers = [n for f in files for n in sequence_numbers(decompressed(f).splitlines())]
    missing, duplicated = missing_and_duplicates(numbers, run.last)
    run.files, run.lines, run.first_lost = len(files), len(numbers), missing[:10]
    run.lost, run.duplicated = len(missing), len(duplicated)
    shutil.rmtree(logs, ignore_errors=True)
    return run


def loss_part(setup: LossSetup, tools: Sequence[str], repeats: int) -> list[LossRun]:
    runs = []
    for r in range(repeats):
        for tool in rotated(tools, r):
            run = loss_run(setup, tool)
            runs.append(run)
            print(f"  repeat {r + 1}/{repeats}  {tool:<22} lost {run.lost:>6}  duplicated {run.duplicated:>4}  of {run.last:,} "
                  f"lines in {run.files} files; writer {run.writer_rate:,}/s, {run.reopens} reopens; rotation "
                  f"median {sorted(run.rotation_seconds)[len(run.rotation_seconds) // 2] * 1000:.0f} ms, "
                  f"every {run.interval_seconds:.2f}s", flush=True)
    return runs


def loss_checks(runs: list[LossRun]) -> list[dict[str, Any]]:
    ours = [r for r in runs if r.tool == "upkeep-rename"]
    if not ours:
        return []
    lost, dup = sum(r.lost for r in ours), sum(r.duplicated for r in ours)
    return [{"check": "Upkeep rename + reopen under a 50k lines/s writer: 0 lines lost, 0 duplicated (all runs)",
             "measured": {"lost": lost, "duplicated": dup}, "pass": lost == 0 and dup == 0}]


def print_loss(runs: list[LossRun]) -> None:
    print(f"\n{'tool':<22} {'runs':>4} {'lines written':>14} {'lost':>7} {'lost %':>7} {'duplicated':>10} {'lost/rotation':>13}")
    for tool in dict.fromkeys(r.tool for r in runs):
        mine = [r for r in runs if r.tool == tool]
        last, lost, dup = sum(r.last for r in mine), sum(r.lost for r in mine), sum(r.duplicated for r in mine)
        rotations = sum(len(r.rotation_seconds) for r in mine)
        print(f"{tool:<22} {len(mine):>4} {last:>14,} {lost:>7,} {lost / last:>7.3%} {dup:>10,} {lost / rotations:>13.1f}")


# -- main -----------------------------------------------------------------------------------------
def tool_version(argv: Sequence[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except OSError:
        return "?"
    return ((proc.stdout or proc.stderr).strip().splitlines() or ["?"])[0]


def versions() -> dict[str, str]:
    return {"python": platform.python_version(), "logrotate": tool_version([LOGROTATE, "--version"]),
            "gzip": tool_version(["gzip", "--version"]), "zstd": tool_version(["zstd", "--version"]),
            "cpus": str(os.cpu_count()), "platform": platform.platform()}


def print_checks(results: list[dict[str, Any]]) -> None:
    print("\ntargets:")
    for c in results:
        print(f"  {'PASS' if c['pass'] else 'FAIL'}  {c['check']}: measured {c['measured']}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.log_rotation", description=__doc__.split("\n\n")[0])
    p.add_argument("--size-gib", type=float, default=1.0, help="size of the log of the speed part (default 1)")
    p.add_argument("--repeats", type=int, default=3, help="timed rounds of each part (default 3)")
    p.add_argument("--rotations", type=int, default=20, help="rotations per run of the loss part (default 20)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between rotations, start to start (default 0.5)")
    p.add_argument("--rate", type=int, default=50_000, help="lines per second of the writer (default 50000)")
    p.add_argument("--grace", type=float, default=None, help="RotationPolicy.grace of Upkeep's runs, seconds "
                   "(default: the policy's default; a diagnostic, the targets are defined on the default)")
    p.add_argument("--skip", choices=["speed", "loss"], action="append", default=[], help="leave a part out")
    p.add_argument("--tools", nargs="+", choices=[*SPEED_TOOLS, *LOSS_TOOLS], default=[*SPEED_TOOLS, *LOSS_TOOLS])
    p.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "upkeep-bench-log-rotation",
                   help="where the generated log is kept between runs")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target check fails")
    args = p.parse_args(argv)
    if args.size_gib <= 0 or args.repeats < 1 or args.rotations < 1 or args.interval <= 0 or args.rate < 1:
        p.error("--size-gib, --repeats, --rotations, --interval and --rate must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    interrupt_on_sigterm()
    if not os.access(LOGROTATE, os.X_OK):
        print(f"{LOGROTATE} is missing: UPKEEP_WITH_BENCH=1 bash sandbox/setup.sh (root)", file=sys.stderr)
        return 2
    tools = list(args.tools)
    if (why := upkeep_available()) is not None:
        print(f"  Upkeep's side is NOT run: {why}")
        tools = [t for t in tools if not t.startswith("upkeep")]
    load_before = loadavg()
    print(f"log_rotation: {args.repeats} repeats, tools {tools}; load average before: {load_before} on {os.cpu_count()} CPUs")
    work = Path(tempfile.mkdtemp(prefix="upkeep-bench-logrot-"))
    payload: dict[str, Any] = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                               "tools_run": tools, "versions": versions(), "loadavg_before": load_before}
    results: list[dict[str, Any]] = []
    try:
        if "speed" not in args.skip and (speed_tools := [t for t in SPEED_TOOLS if t in tools]):
            source = source_log(int(args.size_gib * GiB), args.cache_dir)
            print(f"\nspeed: rotate + compress {source.stat().st_size / GiB:.2f} GiB ({source})", flush=True)
            series = speed_part(SpeedSetup(source, work, args.grace, set(speed_tools)), speed_tools, args.repeats)
            print_speed(series)
            results += speed_checks(series)
            payload["speed"] = [{**asdict(s), "median": s.median, "min": s.min, "cpu_median": s.median_of("cpu"),
                                 "ratio": s.ratio} for s in series.values()]
        if "loss" not in args.skip and (loss_tools := [t for t in LOSS_TOOLS if t in tools]):
            setup = LossSetup(work, args.rate, args.rotations, args.interval, args.grace)
            print(f"\nloss: a {args.rate:,} lines/s writer, {args.rotations} rotations {args.interval:g}s apart", flush=True)
            runs = loss_part(setup, loss_tools, args.repeats)
            print_loss(runs)
            results += loss_checks(runs)
            payload["loss"] = [asdict(r) for r in runs]
    except BenchError as exc:
        print(f"\nFAILED: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_checks(results)
    payload.update(checks=results, loadavg_after=loadavg())
    print(f"load average after: {payload['loadavg_after']}\nresults: {write_results('log_rotation', payload)}")
    return 1 if args.strict and not all(c["pass"] for c in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
