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

# copy $1 to $2, append what was written meanwhile, rename the copy to $3 (marks "truncate may follow"),
# truncate: the loss window is the append's end to the truncate (microseconds, one process on the host)
_COPY_TRUNCATE = r"""set -e
cp --preserve=mode,timestamps -- "$1" "$2"
n=$(stat -c %s -- "$2")
tail -c +$((n + 1)) -- "$1" >> "$2"
mv -T -- "$2" "$3"
copied=$(stat -c %s -- "$3")
before=$(stat -c %s -- "$1")
truncate -s 0 -- "$1"
echo "$copied $before"
"""
_COUNT = 'case "$2" in gzip) gzip -dc -- "$1";; zstd) zstd -dcq -- "$1";; *) cat -- "$1";; esac | wc -l'
# Which processes hold $1 open for writing. A constant script (the path is its argument): the
# device:inode of every descriptor (stat -L through /proc/PID/fd) against the file's, the access mode
# from fdinfo (a reader such as `tail -f` does not count); "blind" when some descriptors could not be
# read (a C-locale find reports them) or /proc hides other users' processes.
_HOLDERS = r"""export LC_ALL=C
t=$(stat -L -c %d:%i -- "$1") || exit 3
grep -qE '^proc /proc proc .*hidepid=([12]|invisible|noaccess|ptraceable)' /proc/mounts && echo blind
find /proc -mindepth 3 -maxdepth 3 -path '/proc/[0-9]*/fd/*' -printf '' 2>&1 >/dev/null |
  grep -q 'fd.*Permission denied' && echo blind
stat -L -c '%d:%i %n' /proc/[0-9]*/fd/* 2>/dev/null | while read -r id fd; do
  [ "$id" = "$t" ] || continue
  pid=${fd#/proc/}; pid=${pid%%/*}
  flags=$(sed -n 's/^flags:[[:space:]]*//p' "/proc/$pid/fdinfo/${fd##*/}" 2>/dev/null)
  case "$flags" in *[0-7]) mode=$(( 0$flags & 3 ));; *) mode=1;; esac
  [ "$mode" -ne 0 ] && echo "pid $pid"
done
exit 0"""
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


SLOWEST = 5 * 1024**2  # bytes/s a long command on a file is allowed (a busy host's gzip is ~10x faster)
SHORTEST = 300.0  # seconds: the least any of them is given


def bounded(size: int, argv: list[str]) -> tuple[list[str], float]:
    """`argv` under timeout(1) on the host, sized for a file of `size` bytes, and the client's timeout a
    little longer: a command that outlives our wait is killed there, never left running into the next
    run's files (a second compressor writing the same part)."""
    seconds = max(SHORTEST, size / SLOWEST)
    return ["timeout", "-s", "KILL", f"{seconds:.0f}", *argv], seconds + 30


def glob_escape(text: str) -> str:
    """`text` as a literal find(1) pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def list_dir(host: Host, directory: str, log_name: str) -> list[Entry]:
    """The files of `directory` whose names start with `log_name` (size, mtime)."""
    argv = ["find", directory, "-mindepth", "1", "-maxdepth", "1", "-type", "f", "-name", f"{glob_escape(log_name)}*",
            "-printf", r"%f\0%s\0%T@\0%i\0"]
    result = host.run(argv, check=False)
    if not result.ok:
        raise RotationError(host.name, f"cannot list {directory}: {result.stderr.strip()[:200]} — does the directory exist "
                            "and may the login user read it?")
    words = result.stdout.split("\0")
    return [Entry(words[i], int(words[i + 1]), float(words[i + 2]), int(words[i + 3])) for i in range(0, len(words) - 3, 4)]


def rename(host: Host, source: str, target: str) -> None:
    """rename(2): the writer keeps its open file, now under the new name."""
    host.run(["mv", "-T", "--", source, target])


def rename_new(host: Host, source: str, target: str, inode: int) -> None:
    """Rename `source` (the file with `inode`) to a name nobody uses: never over an existing file (another
    rotation that took the same name, in the same second), checked by the inode now at `target`."""
    host.run(["mv", "-n", "-T", "--", source, target])
    found = host.run(["stat", "-c", "%i", "--", target], check=False).stdout.strip()
    if found != str(inode):
        raise RotationError(host.name, f"{target} already existed (another rotation at the same time?): {source} was left "
                            "as it is; the next run rotates it")


def remove(host: Host, *paths: str) -> None:
    if paths:
        host.run(["rm", "-f", "--", *paths])


def holders(host: Host, path: str) -> tuple[list[int], bool]:
    """The processes that have the file at `path` open for writing (compared by device and inode,
    not by name: a symlinked directory or a container's bind mount names it differently), and whether
    some processes could not be inspected (another user's, or /proc mounted with hidepid)."""
    result = host.run(["sh", "-c", _HOLDERS, "sh", path], check=False)
    if result.exit_code == 3:
        raise RotationError(host.name, f"cannot stat {path}: {result.stderr.strip()[:200]}")
    pids, blind = set(), False
    for line in result.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "blind":
            blind = True
        elif word == "pid" and rest.isdigit():
            pids.add(int(rest))
    return sorted(pids), blind


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


def count_lines(host: Host, path: str, compression: Compression | None, size: int = 0) -> int:
    """Lines of a (compressed) file, counted on the host."""
    argv, limit = bounded(size * (8 if compression else 1), ["sh", "-c", _COUNT, "sh", path, compression or "none"])
    out = host.run(argv, timeout=limit).stdout.split()
    return int(out[0]) if out else 0


def compress_part(host: Host, raw: str, part: str, compression: Compression, size: int = 0) -> None:
    """raw → part (the compressor's output). A full disk leaves the raw file and no part behind, and
    raises RotationError saying so."""
    try:
        argv, limit = bounded(size, ["sh", "-c", _COMPRESS, "sh", part, compression, raw])
        host.run(argv, timeout=limit)
    except CommandError as exc:
        remove(host, part)
        if any(word in exc.stderr for word in FULL):
            raise RotationError(host.name, f"disk full: cannot compress {raw}; it stays uncompressed (nothing lost, "
                                "the live log untouched) — free space on its filesystem; the next run compresses it") from exc
        if "not found" in exc.stderr and compression == "zstd":
            raise RotationError(host.name, "the zstd command is missing: install zstd on the host, or set "
                                "logs.rotation.compression: gzip") from exc
        raise RotationError(host.name, f"compressing {raw} failed: {exc.stderr.strip()[-200:]}") from exc
    host.run(["touch", "-r", raw, "--", part])  # the raw file's mtime: a later run sees whether it changed since

def finalize(host: Host, part: str, final: str, raw: str) -> None:
    """The complete part takes its final name, then the raw file goes (a kill in between leaves
    raw + final, which the next run recognises)."""
    rename(host, part, final)
    remove(host, raw)


def sha256(host: Host, path: str, size: int = 0) -> str:
    argv, limit = bounded(size, ["sha256sum", "--", path])
    return host.run(argv, timeout=limit).stdout.split()[0]


def copy_truncate(host: Host, live: str, copying: str, copied: str, size: int = 0) -> tuple[int, int]:
    """Copy the live file (to `copying`, renamed `copied` once complete), then truncate it: (bytes
    copied, bytes the file had when truncated). What was written between the two is lost: that is
    copytruncate's window, reported. A full disk leaves no partial copy behind."""
    try:
        argv, limit = bounded(size, ["sh", "-c", _COPY_TRUNCATE, "sh", live, copying, copied])
        out = host.run(argv, timeout=limit).stdout.split()
    except CommandError as exc:
        remove(host, copying)
        full = any(word in exc.stderr for word in FULL)
        raise RotationError(host.name, f"copytruncate of {live} failed{' (disk full)' if full else ''}: "
                            f"{exc.stderr.strip()[-200:]}; the live file is untouched") from exc
    return int(out[0]), int(out[1])


def truncated_since(host: Host, live: str, copied: str, copy_size: int, live_size: int) -> bool:
    """After a copytruncate interrupted between its copy and its rename: was the live file truncated?
    Smaller than the copy: yes; else it is only if its first `copy_size` bytes differ from the copy."""
    if live_size < copy_size:
        return True
    result = host.run(["cmp", "-s", "-n", str(copy_size), "--", live, copied], check=False)
    return result.exit_code != 0 and copy_size > 0


def run_argv(host: Host, argv: Sequence[str]) -> str:
    """Run a configured command; its one-line output for the report."""
    try:
        return host.run(list(argv)).stdout.strip()
    except HostError as exc:
        raise RotationError(host.name, f"the reopen command {list(argv)} failed: {exc}") from exc
