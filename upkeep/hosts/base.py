"""The host interface: run a command, read/write a file, read resource usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


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

    @property
    def percent_used(self) -> float:
        return 100.0 * self.used_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class ResourceUsage:
    host: str
    cpu_percent: float
    memory_percent: float
    memory_total_bytes: int
    load_1m: float
    disks: list[DiskUsage] = field(default_factory=list)

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

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write atomically (temporary file + rename)."""
        ...

    def resources(self) -> ResourceUsage: ...

    def close(self) -> None: ...
