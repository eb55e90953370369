"""What every benchmark shares: the results file and the statistics of a series of timed samples."""

from __future__ import annotations

import functools
import json
import os
import signal
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_results(benchmark: str, payload: dict[str, Any]) -> Path:
    """`payload` as JSON in `results/<benchmark>-<UTC time>.json` (gitignored); the path written."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{benchmark}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"benchmark": benchmark, **payload}, indent=2, default=str) + "\n")
    return path


class SampleStats:
    """Medians over `self.samples` (objects with a `wall` and other numeric fields)."""

    samples: list[Any]

    def median_of(self, field: str) -> float:
        return statistics.median(getattr(s, field) for s in self.samples)

    @property
    def median(self) -> float:
        return self.median_of("wall")

    @property
    def min(self) -> float:
        return min(s.wall for s in self.samples)


def target_check(text: str, measured: float, passed: bool, shown: str) -> dict[str, Any]:
    """Print one target check (PASS/FAIL, what was measured) and return it for the results file."""
    print(f"\ntargets:\n  {'PASS' if passed else 'FAIL'}  {text}: {shown}")
    return {"check": text, "measured": measured, "pass": passed}


def interrupt_on_sigterm() -> None:
    """SIGTERM raises KeyboardInterrupt, as Ctrl-C does: the benchmark's finally blocks stop what it started
    (servers, writers) by PID and remove its files."""
    def _terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)


def clocked(phases: dict[str, float], name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn`, adding the seconds each call takes (raised or not) to `phases[name]`: a phase timer for monkeypatching."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - t0
    return wrapper


def loadavg() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews every tool's timings."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def quiet_prefect_console() -> None:
    """Prefect's *console* handler at WARNING (the API log handler is left alone, so the log shipping a
    flow does in production is still timed). Read when Prefect sets up logging: call before importing it."""
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def begin_run(verbose: bool, *, subreaper: bool = True) -> str:
    """What every stack benchmark does before its first side: print the load average (returned, for the results),
    quiet Prefect's console unless `verbose`, and become the reaper of orphaned descendants (their CPU is counted)."""
    from benchmarks._cpu import become_subreaper

    load = loadavg()
    print(f"  load average before: {load} on {os.cpu_count()} CPUs", flush=True)
    if not verbose:
        quiet_prefect_console()
    if subreaper and not become_subreaper():
        print("  warning: cannot become a child subreaper; orphaned descendants' CPU is not counted", flush=True)
    return load
