"""Where does Upkeep's fan-out time go? CPU split (client vs sshd), concurrency sweep, per-thread CPU profile.

    .venv/bin/python -m benchmarks.profile_upkeep [--hosts 100] [--forks 50] [--sweep 1 10 50] [--top 25]

Runs the same timed action as benchmarks.fanout_uptime (fresh SSHHost, connect + `uptime` + close) and reports:

* wall seconds, CPU seconds of this (client) process and of the sshd fleet (server side, same 2 cores);
* the same at several concurrency levels (`--sweep`), to see GIL / CPU saturation;
* a cProfile of *every* thread (paramiko does its key exchange and packet parsing in one Transport thread per
  connection, which a plain cProfile of the main thread never sees), timed with `time.thread_time` so each
  function is charged the CPU it used, not the time it spent waiting; the per-thread stats are merged.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import paramiko.transport

from benchmarks._cpu import CpuMeter, become_subreaper
from benchmarks._fleet import running_fleet
from sandbox.sshd import USER, SshdFleet
from upkeep.hosts.fanout import fan_out
from upkeep.hosts.ssh import SSHHost


@dataclass(frozen=True)
class Sample:
    forks: int
    wall: float
    client_cpu: float
    server_cpu: float


def action(host: SSHHost) -> str:
    try:
        return host.run(["uptime"]).stdout
    finally:
        host.close()


def fresh_hosts(fleet: SshdFleet, n: int) -> list[SSHHost]:
    return [SSHHost(h.name, h.address, port=h.port, user=USER, known_hosts=fleet.known_hosts,
                    key_file=fleet.client_key, connect_timeout=30.0) for h in fleet.hosts[:n]]


def timed_run(fleet: SshdFleet, n: int, forks: int) -> Sample:
    """One fan-out, with wall time and client/server CPU deltas."""
    meter = CpuMeter(fleet.pids())
    meter.start()
    w0 = time.perf_counter()
    result = fan_out(fresh_hosts(fleet, n), action, max_concurrency=forks, max_errors=None)
    wall = time.perf_counter() - w0
    time.sleep(0.3)  # let the hosts' sshd processes exit and be reaped
    if len(result.succeeded) != n:
        raise RuntimeError(result.summary())
    return Sample(forks, wall, *meter.stop())


class ThreadProfiles:
    """Profile every thread started while active, each with its own cProfile (thread CPU time).

    Patches `Thread.run` (the fan-out workers) and `paramiko.Transport.run` (a Thread subclass that overrides
    run: the per-connection reader thread doing key exchange, crypto and packet parsing).
    """

    CLASSES: tuple[type[threading.Thread], ...] = (threading.Thread, paramiko.transport.Transport)

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()
        self._originals = {cls: cls.run for cls in self.CLASSES}

    def _wrap(self, orig: Callable[[threading.Thread], None]) -> Callable[[threading.Thread], None]:
        def run(thread: threading.Thread) -> None:
            prof = cProfile.Profile(time.thread_time)
            with self._lock:
                self.profiles.append(prof)
            prof.runcall(orig, thread)
        return run

    def __enter__(self) -> ThreadProfiles:
        for cls, orig in self._originals.items():
            cls.run = self._wrap(orig)  # type: ignore[method-assign, assignment]  # profiled; restored on exit
        return self

    def __exit__(self, *exc: object) -> None:
        for cls, orig in self._originals.items():
            cls.run = orig  # type: ignore[method-assign]  # the original

    def stats(self) -> pstats.Stats:
        out = io.StringIO()
        stats = pstats.Stats(self.profiles[0], stream=out)
        for p in self.profiles[1:]:
            stats.add(p)
        return stats


def profiled_run(fleet: SshdFleet, n: int, forks: int, top: int) -> None:
    """One fan-out with every thread profiled; prints the top functions by own CPU time."""
    with ThreadProfiles() as tp:
        sample = timed_run(fleet, n, forks)
    print(f"\nprofiled run: {n} hosts, forks {forks}: wall {sample.wall:.3f}s (inflated by profiling), "
          f"{len(tp.profiles)} threads profiled")
    for key in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = tp.stats()
        stats.stream = out  # type: ignore[attr-defined]  # undeclared in the stubs; print_stats writes to it
        stats.sort_stats(key).print_stats(top)
        print(f"--- by {key} (thread CPU seconds, summed over threads) ---")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip())[:6000])


def sweep(fleet: SshdFleet, n: int, levels: Sequence[int], repeats: int) -> Iterator[Sample]:
    for forks in levels:
        best = min((timed_run(fleet, n, forks) for _ in range(repeats)), key=lambda s: s.wall)
        yield best


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hosts", type=int, default=100)
    p.add_argument("--forks", type=int, default=50, help="concurrency of the profiled run")
    p.add_argument("--sweep", type=int, nargs="*", default=[1, 2, 5, 10, 20, 50])
    p.add_argument("--repeats", type=int, default=3, help="runs per sweep level (best is shown)")
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    become_subreaper()  # so the sshd processes orphaned per connection are counted on the host side
    with running_fleet(args.hosts) as fleet:
        timed_run(fleet, min(args.hosts, 10), min(args.forks, 10))  # warm-up
        print(f"{'forks':>5} {'wall s':>8} {'client cpu s':>13} {'sshd cpu s':>11} {'ms/host wall':>13} "
              f"{'client ms/host':>15} {'sshd ms/host':>13}")
        for s in sweep(fleet, args.hosts, args.sweep, args.repeats):
            n = args.hosts
            print(f"{s.forks:>5} {s.wall:>8.3f} {s.client_cpu:>13.3f} {s.server_cpu:>11.3f} {1000 * s.wall / n:>13.1f} "
                  f"{1000 * s.client_cpu / n:>15.1f} {1000 * s.server_cpu / n:>13.1f}", flush=True)
        if args.top:
            profiled_run(fleet, args.hosts, args.forks, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
