"""A throw-away sshd fleet for benchmarks: started in a fresh world-traversable temp dir, stopped by PID."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sandbox.procs import free_port
from sandbox.sshd import SshdFleet

FIRST_OCTET = 10


def make_base(prefix: str) -> Path:
    """A fresh temp dir that the unprivileged login user can traverse (mode 0755)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    return base


@contextmanager
def running_fleet(count: int, *, keep: bool = False) -> Iterator[SshdFleet]:
    """Start `count` sshd hosts on 127.0.0.10.. (one port), yield the fleet, always stop it by PID.

    The temp dir is removed afterwards unless `keep` (its logs/ hold the sshd logs).
    """
    base = make_base("upkeep-bench-")
    fleet = SshdFleet(base / "ssh", count, port=free_port(f"127.0.0.{FIRST_OCTET}"), first_octet=FIRST_OCTET)
    try:
        fleet.prepare()
        fleet.start(base / "logs")
        yield fleet
    finally:
        fleet.stop()
        if keep:
            print(f"fleet files kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def scratch_dir(prefix: str) -> Path:
    """A private temp dir for one tool run (removed by the caller)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o700)
    return path
