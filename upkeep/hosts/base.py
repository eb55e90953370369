"""The host interface: run a command, read/write a file, read resource usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable


@dataclass(frozen=True)
class CommandResult:
    host: str
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    duration: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class DiskUsage:
    mount: str
    total_bytes: int
    used_bytes: int
    free_bytes: int
    inodes_total: int = 0  # 0: the filesystem has no fixed inode table (btrfs), or it was not read
    inodes_used: int = 0

    @property
    def percent_used(self) -> float:
        return 100.0 * self.used_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class IOCounters:
    """Cumulative bytes since boot: read from and written to the host's disks, received and sent on
    its network interfaces (loopback left out). Rates are deltas between two probes."""

    disk_read_bytes: int
    disk_write_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int

    def as_dict(self) -> dict[str, int]:
        return {"disk_read": self.disk_read_bytes, "disk_write": self.disk_write_bytes,
                "net_rx": self.net_rx_bytes, "net_tx": self.net_tx_bytes}


@dataclass(frozen=True)
class ResourceUsage:
    host: str
    cpu_percent: float
    memory_percent: float
    memory_total_bytes: int
    load_1m: float
    disks: list[DiskUsage] = field(default_factory=list)
    io: IOCounters | None = None

    def disk(self, mount: str = "/") -> DiskUsage | None:
        """The usage of the filesystem mounted at `mount`."""
        return next((d for d in self.disks if d.mount == mount), None)


@runtime_checkable
class Host(Protocol):
    """What every routine needs of a host, local or remote."""

    name: str

    def run(
        self, argv: Sequence[str], *, timeout: float | None = None, check: bool = True, stdin: bytes | None = None
    ) -> CommandResult:
        """Run argv (never through a shell built from input); raise CommandError when check and exit != 0."""
        ...

    def read_file(self, path: str) -> bytes: ...

    def open_file(self, path: str) -> BinaryIO:
        """A file opened for streamed reading (a large log to archive); the caller closes it."""
        ...

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write atomically (temporary file + rename)."""
        ...

    def resources(self) -> ResourceUsage: ...

    def close(self) -> None: ...
