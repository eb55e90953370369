"""The commands a rotation runs on a host: coreutils, findutils, gzip / zstd — nothing to install.

Every command is an argv list; where a redirection is needed the shell script is a constant and
the paths reach it as positional arguments (`sh -c '…"$1"…' sh PATH`), never spliced into it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from upkeep.errors import CommandError, HostError, RotationError
from upkeep.hosts.base import Host
from upkeep.rotation.plan import Compression, Entry

_STAT_TRUNCATE = 'stat -c %s -- "$1" && truncate -s 0 -- "$1"'
_COUNT = 'case "$2" in gzip) gzip -dc -- "$1";; zstd) zstd -dcq -- "$1";; *) cat -- "$1";; esac | wc -l'
_DENIED_FD = re.compile(r"'/proc/\d+/fd(?:/\d+)?'[^\n]*Permission denied|/proc/\d+/fd(?:/\d+)?[’'][^\n]*Permission denied")
# gzip: pigz when the host has it (the same format, on every core), else gzip; level 6 like logrotate's gzip;
# zstd: -3 on every core, several times gzip's speed at a similar ratio
_COMPRESS = """out=$1; how=$2; raw=$3
case "$how" in
  gzip) if command -v pigz >/dev/null 2>&1; then exec pigz -6 -c -- "$raw" > "$out"; fi
        exec gzip -6 -c -- "$raw" > "$out";;
  zstd) exec zstd -q -3 -T0 -c -- "$raw" > "$out";;
esac
exit 2"""
FULL = ("No space left on device", "Disk quota exceeded")


def glob_escape(text: str) -> str:
    """`text` as a literal find(1) pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def list_dir(host: Host, directory: str, log_name: str) -> list[Entry]:
    """The files of `directory` whose names start with `log_name` (size, mtime)."""
    argv = ["find", directory, "-mindepth", "1", "-maxdepth", "1", "-type", "f", "-name", f"{glob_escape(log_name)}*",
            "-printf", r"%f\0%s\0%T@\0"]
    result = host.run(argv, check=False)
    if not result.ok:
        raise RotationError(host.name, f"cannot list {directory}: {result.stderr.strip()[:200]} — does the directory exist "
                            "and may the login user read it?")
    words = result.stdout.split("\0")
    return [Entry(words[i], int(words[i + 1]), float(words[i + 2])) for i in range(0, len(words) - 2, 3)]


def rename(host: Host, source: str, target: str) -> None:
    """rename(2): the writer keeps its open file, now under the new name."""
    host.run(["mv", "-T", "--", source, target])


def remove(host: Host, *paths: str) -> None:
    if paths:
        host.run(["rm", "-f", "--", *paths])


def holders(host: Host, path: str) -> tuple[list[int], bool]:
    """The processes with `path` open (from /proc/*/fd, where we may look), and whether some
    processes' descriptors could not be read (another user's: then we cannot tell)."""
    argv = ["find", "/proc", "-mindepth", "3", "-maxdepth", "3", "-path", "/proc/[0-9]*/fd/*", "-lname", glob_escape(path),
            "-printf", r"%p\n"]
    result = host.run(argv, check=False)
    pids = sorted({int(line.split("/")[2]) for line in result.stdout.splitlines() if line.startswith("/proc/")})
    return pids, bool(_DENIED_FD.search(result.stderr))


def size_and_mtime(host: Host, path: str) -> tuple[int, str]:
    out = host.run(["stat", "-c", "%s %.9Y", "--", path]).stdout.split()
    return int(out[0]), out[1]


def released(host: Host, path: str, timeout: float) -> tuple[bool, bool, str]:
    """Wait until no process we can see has `path` open: (released?, blind?, how we know). Blind:
    some processes' descriptors cannot be read (another user's), so a writer may still hold it."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    while True:
        pids, blind = holders(host, path)
        if not pids:
            return True, blind, ("no process we can see has it open" if blind else "no process has it open")
        if time.monotonic() >= deadline:
            return False, blind, f"still open by process {', '.join(map(str, pids))} {timeout:g} s after the reopen"
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def settled(host: Host, path: str, grace: float, timeout: float) -> tuple[bool, str]:
    """Wait until the size and mtime of `path` stay unchanged for `grace` seconds (no writer we can
    detect otherwise). (settled?, how we know)."""
    deadline = time.monotonic() + timeout
    while True:
        before = size_and_mtime(host, path)
        time.sleep(grace)
        if size_and_mtime(host, path) == before:
            return True, f"unchanged for {grace:g} s (other users' processes cannot be inspected)"
        if time.monotonic() >= deadline:
            return False, f"still growing {timeout:g} s after the reopen"


def count_lines(host: Host, path: str, compression: Compression | None) -> int:
    """Lines of a (compressed) file, counted on the host."""
    out = host.run(["sh", "-c", _COUNT, "sh", path, compression or "none"]).stdout.split()
    return int(out[0]) if out else 0


def compress_part(host: Host, raw: str, part: str, compression: Compression) -> None:
    """raw → part (the compressor's output). A full disk leaves the raw file and no part behind, and
    raises RotationError saying so."""
    try:
        host.run(["sh", "-c", _COMPRESS, "sh", part, compression, raw])
    except CommandError as exc:
        remove(host, part)
        if any(word in exc.stderr for word in FULL):
            raise RotationError(host.name, f"disk full: cannot compress {raw}; it stays uncompressed (nothing lost, "
                                "the live log untouched) — free space on its filesystem; the next run compresses it") from exc
        if "not found" in exc.stderr and compression == "zstd":
            raise RotationError(host.name, "the zstd command is missing: install zstd on the host, or set "
                                "logs.rotation.compression: gzip") from exc
        raise RotationError(host.name, f"compressing {raw} failed: {exc.stderr.strip()[-200:]}") from exc


def finalize(host: Host, part: str, final: str, raw: str) -> None:
    """The complete part takes its final name, then the raw file goes (a kill in between leaves
    raw + final, which the next run recognises)."""
    rename(host, part, final)
    remove(host, raw)


def sha256(host: Host, path: str) -> str:
    return host.run(["sha256sum", "--", path]).stdout.split()[0]


def copy_truncate(host: Host, live: str, copying: str) -> tuple[int, int]:
    """Copy the live file, then truncate it: (bytes copied, bytes the file had when truncated).
    What was written between the two is lost: that is copytruncate's window, reported."""
    host.run(["cp", "--preserve=mode,timestamps", "--", live, copying])
    copied = size_and_mtime(host, copying)[0]
    before = int(host.run(["sh", "-c", _STAT_TRUNCATE, "sh", live]).stdout.split()[0])
    return copied, before


def truncated_since(host: Host, live: str, copying: str, copy_size: int) -> bool:
    """After an interrupted copytruncate: was the live file truncated after the copy? (Its first
    bytes, up to 4 KiB, no longer match the copy's.)"""
    result = host.run(["cmp", "-s", "-n", str(max(1, min(4096, copy_size))), "--", live, copying], check=False)
    return result.exit_code != 0


def run_argv(host: Host, argv: Sequence[str]) -> str:
    """Run a configured command; its one-line output for the report."""
    try:
        return host.run(list(argv)).stdout.strip()
    except HostError as exc:
        raise RotationError(host.name, f"the reopen command {list(argv)} failed: {exc}") from exc
