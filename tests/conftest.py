"""One local stack of real servers per test session (Prefect, SeaweedFS, SecantusDB, sshd, ...)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from sandbox.stack import Stack, StackSettings


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The whole stack, started once; every process is stopped (by PID) at the end."""
    # not under pytest's 0700 tmp dir: the sshd test hosts' user must reach the keys and host dirs
    base = Path(tempfile.mkdtemp(prefix="upkeep-stack-"))
    base.chmod(0o755)
    s = Stack(StackSettings(base, ssh_hosts=5, app_hosts=2))
    s.up()
    saved = {k: os.environ.get(k) for k in (*s.prefect_env(), *s.secrets())}
    os.environ.update({**s.prefect_env(), **s.secrets()})
    try:
        yield s
    finally:
        pids = s.pids()
        s.down()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        left = [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()]
        assert not left, f"stack processes left running: {left}"
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def inventory(stack: Stack):
    from upkeep.config import load_inventory

    return load_inventory(stack.inventory_path)
