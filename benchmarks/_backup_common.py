"""What the backup benchmark's two parts share: samples with CPU accounting, the throw-away stack's helpers."""

from __future__ import annotations

import os
import resource
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._report import SampleStats

MiB = 1024 * 1024
GiB = 1024 * MiB
BUCKET = "upkeep-bench"
PREFIX = "bench/"


class BenchError(RuntimeError):
    """A timed run produced a wrong result; its timing would be meaningless."""


# -- measurements ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One timed run: wall seconds, CPU seconds of this process + its children, CPU of the server."""

    wall: float
    client_cpu: float
    server_cpu: float


@dataclass
class Series(SampleStats):
    """The samples of one tool."""

    tool: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def client_cpu(self) -> float:
        return self.median_of("client_cpu")

    @property
    def server_cpu(self) -> float:
        return self.median_of("server_cpu")


def pid_cpu(pid: int | None) -> float:
    """CPU seconds (user+system, with reaped children) of a process, from /proc; 0 without a pid."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    """CPU seconds of this process (every thread) and of its reaped children (sha256sum, b3sum)."""
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def measure(fn: Callable[[], Any], server_pid: int | None) -> tuple[Sample, Any]:
    """Run fn once: its wall time, this process's CPU and the server's CPU meanwhile, and its value."""
    c0, s0, t0 = own_cpu(), pid_cpu(server_pid), time.perf_counter()
    value = fn()
    wall = time.perf_counter() - t0
    return Sample(wall, own_cpu() - c0, pid_cpu(server_pid) - s0), value


def rotated(items: Sequence[str], k: int) -> list[str]:
    """items rotated by k, so no tool always runs first or after the same other tool."""
    k %= len(items)
    return list(items[k:]) + list(items[:k])


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- the stack ------------------------------------------------------------------------------------
def make_base() -> Path:
    """A fresh temp dir (0755: the stack's servers run as this user, but keep the sandbox convention)."""
    base = Path(tempfile.mkdtemp(prefix="upkeep-bench-backup-"))
    base.chmod(0o755)
    return base


def server_pid(stack: Any, name: str) -> int | None:
    """The PID of one of the stack's servers (`seaweedfs`, `secantusdb`)."""
    return next((p.pid for p in stack.procs if p.name == name), None)


def plain_s3_client(stack: Any) -> Any:
    """Like `Stack.s3_client()` but without botocore's response-checksum validation (a pure transfer)."""
    import boto3
    from botocore.config import Config

    from sandbox.stack import SECRETS

    return boto3.client(
        "s3", endpoint_url=stack.s3_url, region_name="us-east-1",
        aws_access_key_id=SECRETS["UPKEEP_SANDBOX_S3_KEY"], aws_secret_access_key=SECRETS["UPKEEP_SANDBOX_S3_SECRET"],
        config=Config(retries={"max_attempts": 2}, connect_timeout=2, read_timeout=10,
                      response_checksum_validation="when_required"),
    )


