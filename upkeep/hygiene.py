"""Disk hygiene (the guide's clean_temp_files): old files in configured temp directories, removed
by age and name pattern — a plan first (dry run by default), symlinks never followed."""

from __future__ import annotations

import fnmatch
import posixpath
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from upkeep.errors import HostError
from upkeep.hosts.base import Host


@dataclass(frozen=True)
class TempFile:
    path: str
    size: int
    mtime: float
    kind: str  # f (file) or l (symlink: removed as a link, never followed)


@dataclass
class CleanupPlan:
    directory: str
    remove: list[TempFile] = field(default_factory=list)
    kept: int = 0
    refused: list[str] = field(default_factory=list)  # paths outside the directory (never removed)

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.remove)


def list_temp(host: Host, directory: str) -> tuple[str, list[TempFile]]:
    """(the directory's real path, its files and symlinks): find(1) without -L follows no symlink and
    -xdev stays on the directory's filesystem."""
    real = host.run(["realpath", "-e", "--", directory], check=False)
    if not real.ok:
        raise HostError(host.name, f"temp directory {directory} does not exist or cannot be resolved: "
                        f"{real.stderr.strip()[:200]} (logs.temp_dirs)")
    base = real.stdout.strip()
    out = host.run(["find", base, "-xdev", "-mindepth", "1", "(", "-type", "f", "-o", "-type", "l", ")",
                    "-printf", r"%p\0%s\0%T@\0%y\0"], check=False)
    words = out.stdout.split("\0")
    files = [TempFile(words[i], int(words[i + 1]), float(words[i + 2]), words[i + 3]) for i in range(0, len(words) - 3, 4)]
    return base, files


def plan_cleanup(directory: str, files: list[TempFile], *, older_than: timedelta, patterns: list[str],
                 now: datetime) -> CleanupPlan:
    """The files older than `older_than` whose name matches a pattern; anything whose normalised
    path leaves `directory` is refused, not removed."""
    plan = CleanupPlan(directory)
    cutoff = (now - older_than).timestamp()
    root = directory.rstrip("/") + "/"
    for f in sorted(files, key=lambda f: f.path):
        if not posixpath.normpath(f.path).startswith(root) or ".." in f.path.split("/"):
            plan.refused.append(f.path)
        elif f.mtime < cutoff and any(fnmatch.fnmatchcase(posixpath.basename(f.path), p) for p in patterns):
            plan.remove.append(f)
        else:
            plan.kept += 1
    return plan


def remove_files(host: Host, plan: CleanupPlan, *, older_than: timedelta, patterns: list[str],
                 now: datetime | None = None) -> int:
    """Remove what the plan's rule selects, by find(1) itself: `-delete` unlinks each entry relative to
    the directory it walked, so a subdirectory swapped for a symlink after the plan was made leads
    nowhere (an `rm PATH` would follow it). Files gone already are fine: a rerun is harmless. The count
    removed (what aged into the rule since the plan is removed too; its logged plan says the rule)."""
    if not plan.remove:
        return 0
    cutoff = ((now or datetime.now(UTC)) - older_than).timestamp()
    names: list[str] = []
    for p in patterns:
        names += [*(["-o"] if names else []), "-name", p]
    argv = ["find", plan.directory, "-xdev", "-mindepth", "1", "(", "-type", "f", "-o", "-type", "l", ")",
            "(", *names, ")", "!", "-newermt", f"@{cutoff:.3f}", "-print", "-delete"]
    out = host.run(argv)
    return len(out.stdout.splitlines())
