"""A log writer of numbered JSON lines, for checking that a log rotation loses or duplicates nothing.

Run: ``python -m sandbox.logwriter --file PATH --rate 50000 [--duration S | --count N] [--pid-file F]
[--status-file F] [--user NAME]``. Lines are ``{"n": N, "ts": ..., "msg": "line N ..."}``, N from 1 up;
SIGHUP reopens PATH (after a rotation renamed it); SIGTERM/SIGINT stop it, and the status file then
says the last N written. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import re
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

#: The longest a batch waits before it is written: every line is in the file within this many seconds.
FLUSH_INTERVAL = 0.005
#: What follows the number in each line's message: a request-log-like text, so a line is ~130 bytes.
FILLER = "GET /api/events?page=2 200 in 12.4 ms from 10.0.1.17 (sandbox log writer)"
_PREFIX = b'{"n": '
_N_ANYWHERE = re.compile(rb'"n":\s*(\d+)')


def sequence_numbers(lines: Iterable[bytes]) -> Iterator[int]:
    """The ``n`` of every complete line (ending in ``}``); blank lines and fragments a copy cut are skipped."""
    for line in lines:
        line = line.rstrip(b"\r\n")
        if not line.endswith(b"}"):
            continue
        if line.startswith(_PREFIX):  # the writer's own layout: slice instead of parsing the JSON
            end = line.find(b",", 6)
            if end > 6:
                yield int(line[6:end])
                continue
        found = _N_ANYWHERE.search(line)
        if found:
            yield int(found[1])


def missing_and_duplicates(numbers: Iterable[int], last: int) -> tuple[list[int], list[int]]:
    """Which of 1..last never appear, and which appear more than once (both ascending).

    A number outside 1..last is a ValueError: the files hold a line the writer says it never wrote.
    """
    seen = bytearray(last + 1)
    for n in numbers:
        if not 1 <= n <= last:
            raise ValueError(f"line number {n} is outside 1..{last}: the files and the writer's status disagree")
        if seen[n] < 2:
            seen[n] += 1
    missing = [n for n in range(1, last + 1) if not seen[n]]
    duplicated = [n for n in range(1, last + 1) if seen[n] > 1]
    return missing, duplicated


def drop_privileges(name: str) -> None:
    """Become user ``name`` (its primary and supplementary groups) when running as root; else it must be us."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError as exc:
        raise SystemExit(f"logwriter: no such user {name!r}") from exc
    if os.geteuid() != 0:
        if entry.pw_uid != os.geteuid():
            raise SystemExit(f"logwriter: --user {name} needs root (running as uid {os.geteuid()})")
        return
    os.setgroups(os.getgrouplist(name, entry.pw_gid))
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, so a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class Writer:
    """Appends numbered lines at a target rate; reopens its file on SIGHUP, stops on SIGTERM/SIGINT."""

    def __init__(self, path: Path, rate: float) -> None:
        self.path = path
        self.rate = rate
        self.written = 0
        self.reopens = 0
        self.reopen_requested = False
        self.stop_requested = False
        self.fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def install_signals(self) -> None:
        """Signals only set flags; the loop acts on them between batches."""
        def on_hup(_signum: int, _frame: FrameType | None) -> None:
            self.reopen_requested = True

        def on_stop(_signum: int, _frame: FrameType | None) -> None:
            self.stop_requested = True

        signal.signal(signal.SIGHUP, on_hup)
        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def _batch(self, first: int, count: int) -> bytes:
        ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return "".join([f'{{"n": {n}, "ts": "{ts}", "msg": "line {n} {FILLER}"}}\n'
                        for n in range(first, first + count)]).encode()

    def _reopen(self) -> None:
        self.reopen_requested = False
        os.close(self.fd)  # every batch is written with one os.write: nothing is buffered here
        self.fd = self._open()
        self.reopens += 1

    def run(self, duration: float | None, count: int | None) -> float:
        """Write until stopped, ``duration`` seconds passed or ``count`` lines were written; the seconds spent."""
        started = time.monotonic()
        deadline = started + duration if duration is not None else None
        max_batch = max(1, int(self.rate * FLUSH_INTERVAL * 2))  # catching up after a stall: still small writes
        while not self.stop_requested:
            if self.reopen_requested:
                self._reopen()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                break
            due = int(self.rate * (now - started)) - self.written
            if count is not None:
                due = min(due, count - self.written)
                if due <= 0 and self.written >= count:
                    break
            if due > 0:
                n = min(due, max_batch)
                self._write(self._batch(self.written + 1, n))
                self.written += n
                continue
            time.sleep(FLUSH_INTERVAL)
        elapsed = time.monotonic() - started
        os.close(self.fd)
        return elapsed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.logwriter", description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, required=True, help="the log file to append to")
    parser.add_argument("--rate", type=float, default=50_000, help="lines per second (default 50000)")
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    stop.add_argument("--count", type=int, default=None, help="stop after this many lines")
    parser.add_argument("--pid-file", type=Path, default=None, help="written once the log file is open")
    parser.add_argument("--status-file", type=Path, default=None, help='{"last": N, "reopens": R, "seconds": S} at exit')
    parser.add_argument("--user", default=None, help="when root: run as this user (before opening anything)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or (args.duration is not None and args.duration < 0) or (args.count is not None and args.count < 0):
        parser.error("--rate must be positive, --duration and --count not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    """Parse the CLI, write until told to stop, report the last line number."""
    args = parse_args(argv)
    if args.user:
        drop_privileges(args.user)
    writer = Writer(args.file, args.rate)
    writer.install_signals()
    if args.pid_file is not None:
        write_atomic(args.pid_file, f"{os.getpid()}\n")
    seconds = writer.run(args.duration, args.count)
    if args.status_file is not None:
        status = {"last": writer.written, "reopens": writer.reopens, "seconds": round(seconds, 4)}
        write_atomic(args.status_file, json.dumps(status) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
