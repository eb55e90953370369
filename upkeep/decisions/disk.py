"""Disk-space verdicts from resource usage (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from upkeep.hosts.base import ResourceUsage


@dataclass(frozen=True)
class DiskVerdict:
    host: str
    mount: str
    free_percent: float
    free_bytes: int
    ok: bool

    @property
    def detail(self) -> str:
        gib = self.free_bytes / 1024**3
        return f"{self.mount}: {self.free_percent:.1f}% free ({gib:.1f} GiB)"


def disk_verdicts(usage: ResourceUsage, min_free_percent: float, mounts: tuple[str, ...] = ("/",)) -> list[DiskVerdict]:
    """One verdict per watched mount: ok when free space ≥ `min_free_percent`."""
    out = []
    for disk in usage.disks:
        if disk.mount not in mounts:
            continue
        free_pct = 100.0 * disk.free_bytes / disk.total_bytes if disk.total_bytes else 0.0
        out.append(DiskVerdict(usage.host, disk.mount, round(free_pct, 1), disk.free_bytes, free_pct >= min_free_percent))
    return out
