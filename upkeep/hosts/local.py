"""The machine Upkeep runs on, through subprocess and psutil."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import psutil

from upkeep.errors import CommandError, CommandTimeoutError, HostError
from upkeep.hosts.base import CommandResult, DiskUsage, IOCounters, ResourceUsage


class LocalHost:
    """A Host that is this machine."""

    def __init__(self, name: str = "localhost", *, command_timeout: float = 300.0) -> None:
        self.name = name
        self.command_timeout = command_timeout

    def run(
        self, argv: Sequence[str], *, timeout: float | None = None, check: bool = True, stdin: bytes | None = None
    ) -> CommandResult:
        args = [str(a) for a in argv]
        limit = timeout or self.command_timeout
        started = time.monotonic()
        try:
            proc = subprocess.run(args, input=stdin, capture_output=True, timeout=limit, check=False)
        except subprocess.TimeoutExpired as exc:
            raise CommandTimeoutError(self.name, f"{args[0]!r} did not finish within {limit:g}s") from exc
        except OSError as exc:
            raise HostError(self.name, f"cannot run {args[0]!r}: {exc.strerror}") from exc
        result = CommandResult(
            host=self.name, argv=args, exit_code=proc.returncode,
            stdout=proc.stdout.decode(errors="replace"), stderr=proc.stderr.decode(errors="replace"),
            duration=time.monotonic() - started,
        )
        if check and not result.ok:
            raise CommandError(self.name, args, result.exit_code, result.stderr)
        return result

    def read_file(self, path: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise HostError(self.name, f"cannot read {path}: {exc.strerror}") from exc

    def open_file(self, path: str) -> BinaryIO:
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller closes it
        except OSError as exc:
            raise HostError(self.name, f"cannot read {path}: {exc.strerror}") from exc

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        target = Path(path)
        try:
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except OSError as exc:
            raise HostError(self.name, f"cannot write {path}: {exc.strerror}") from exc

    def resources(self) -> ResourceUsage:
        mem = psutil.virtual_memory()
        disks = []
        for part in psutil.disk_partitions(all=False):
            try:
                u = psutil.disk_usage(part.mountpoint)
            except OSError:
                continue  # a mount we may not read (e.g. a stale network mount) is not a disk of ours
            disks.append(DiskUsage(part.mountpoint, u.total, u.used, u.free, *_inodes(part.mountpoint)))
        if not any(d.mount == "/" for d in disks):
            u = psutil.disk_usage("/")
            disks.append(DiskUsage("/", u.total, u.used, u.free, *_inodes("/")))
        return ResourceUsage(
            host=self.name, cpu_percent=psutil.cpu_percent(interval=0.2), memory_percent=mem.percent,
            memory_total_bytes=mem.total, load_1m=os.getloadavg()[0], disks=disks, io=_io_counters(),
        )

    def close(self) -> None:
        """Nothing to release."""


def _inodes(mount: str) -> tuple[int, int]:
    """(inodes, used inodes) of the filesystem at `mount`; (0, 0) when it has no inode table or cannot be read."""
    try:
        st = os.statvfs(mount)
    except OSError:
        return 0, 0
    return st.f_files, st.f_files - st.f_ffree


def _io_counters() -> IOCounters | None:
    """Disk bytes (psutil sums the whole disks) and network bytes of every interface but loopback."""
    disk = psutil.disk_io_counters(perdisk=False)
    nics = psutil.net_io_counters(pernic=True)
    if disk is None:
        return None
    rx = sum(c.bytes_recv for name, c in nics.items() if name != "lo")
    tx = sum(c.bytes_sent for name, c in nics.items() if name != "lo")
    return IOCounters(disk.read_bytes, disk.write_bytes, rx, tx)
