"""Disk-space verdicts from resource usage (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from upkeep.hosts.base import DiskUsage, ResourceUsage

#: What an update needs room on: the root filesystem, the package cache (/var) and kernels (/boot).
WATCHED_PATHS: tuple[str, ...] = ("/", "/var", "/boot")


@dataclass(frozen=True)
class DiskVerdict:
    host: str
    mount: str
    free_percent: float
    free_bytes: int
    ok: bool
    measured: bool = True

    @property
    def detail(self) -> str:
        if not self.measured:
            return f"{self.mount}: not measured (no filesystem reported for it): check the host's df"
        gib = self.free_bytes / 1024**3
        return f"{self.mount}: {self.free_percent:.1f}% free ({gib:.1f} GiB)"


def holding(disks: Sequence[DiskUsage], path: str) -> DiskUsage | None:
    """The filesystem that holds `path`: the mount point that is its longest prefix."""
    def contains(mount: str) -> bool:
        return mount == "/" or path == mount or path.startswith(mount.rstrip("/") + "/")

    candidates = [d for d in disks if contains(d.mount)]
    return max(candidates, key=lambda d: len(d.mount)) if candidates else None


def disk_verdicts(usage: ResourceUsage, min_free_percent: float, paths: Sequence[str] = WATCHED_PATHS) -> list[DiskVerdict]:
    """One verdict per filesystem holding a watched path (once, however many paths it holds): ok when
    its free space is ≥ `min_free_percent`. A path no reported filesystem holds fails: what was not
    measured is not known to have room."""
    out: dict[str, DiskVerdict] = {}
    for path in paths:
        disk = holding(usage.disks, path)
        if disk is None:
            out.setdefault(f"?{path}", DiskVerdict(usage.host, path, 0.0, 0, ok=False, measured=False))
            continue
        free_pct = 100.0 * disk.free_bytes / disk.total_bytes if disk.total_bytes else 0.0
        out.setdefault(disk.mount, DiskVerdict(usage.host, disk.mount, round(free_pct, 1), disk.free_bytes,
                                               free_pct >= min_free_percent))
    return list(out.values())
