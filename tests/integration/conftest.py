"""One local stack of real servers per test session (Prefect, SeaweedFS, SecantusDB, sshd, ...).

Only the integration tests get it: `tests/unit` has its own conftest and starts nothing.

`make test` runs two pytest-xdist workers (`-n 2 --dist loadfile --no-loadscope-reorder`), each a session with its
own stack (own directory, ports and Prefect server; the sshd hosts share 127.0.0.x addresses on different ports): a
worker takes a whole module at a time, the modules that mostly wait (the demo's runs, heartbeats, automations) first,
so that the rest fills the other worker meanwhile. Run without `-n`, it is one session and one stack as before.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Prefect reads its settings when it is imported (test modules import flows at collection), so
# the session's stack location and Prefect port are chosen, and exported, before that: pytest
# imports this conftest before the test modules of this directory. Had something imported Prefect
# already (a plugin, a test module collected earlier), these tests would talk to whatever server
# the shell's settings name: stop and say so instead.
if "prefect" in sys.modules:
    raise pytest.UsageError(
        "Prefect was imported before tests/integration/conftest.py could point it at the test stack: "
        "run the integration tests without plugins or test modules that import Prefect ahead of them")

# fast task retries in tests (read when the task modules are imported)
os.environ.setdefault("UPKEEP_RETRY_DELAY", "0.2")
# Each pytest-xdist worker's stack takes its ports from a range of its own, below the kernel's ephemeral range
# (32768-60999): two stacks starting side by side never pick the same port, nor one an outgoing connection holds.
if (_worker := os.environ.get("PYTEST_XDIST_WORKER", "")).startswith("gw"):
    _size = 12000 // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))  # 20000-31999 shared out
    _first = 20000 + _size * int(_worker.removeprefix("gw"))
    os.environ["UPKEEP_SANDBOX_PORTS"] = f"{_first}-{_first + _size - 1}"

from sandbox.procs import Proc, free_port, spawn  # noqa: E402 - after the check and the setting above
from sandbox.stack import Stack, StackSettings  # noqa: E402 - after the check and the setting above

# Not under pytest's 0700 tmp dir: the sshd test hosts' user must reach the keys and host dirs.
_BASE = Path(tempfile.mkdtemp(prefix="upkeep-stack-"))
_BASE.chmod(0o755)
_STACK = Stack(StackSettings(_BASE, ssh_hosts=5, app_hosts=2, prefect_port=free_port()))
os.environ.update({**_STACK.prefect_env(), "UPKEEP_CONFIG": str(_STACK.inventory_path),
                   "PREFECT_UI_URL": f"http://127.0.0.1:{_STACK.ports['prefect']}"})


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The whole stack, started once; every process is stopped (by PID) at the end."""
    s = _STACK.up()
    env = s.secrets()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
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


# The modules that take longest (mostly waiting on runs, heartbeats and automations), longest first: with two workers,
# each takes the next module when it is free, so these start at once and the short ones fill the gaps.
LONGEST_FIRST = ("test_demo", "test_scaleout", "test_watchdog", "test_health", "test_system_update",
                 "test_log_rotation", "test_deployments", "test_ui")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules first, the rest in their usual order (a stable sort)."""
    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_BASE, ignore_errors=True)


@pytest.fixture(scope="session")
def inventory(stack: Stack):
    from upkeep.config import load_inventory

    return load_inventory(stack.inventory_path)


@pytest.fixture(scope="session")
def served(stack: Stack) -> Iterator[Proc]:
    """`upkeep serve` (as the README's run command starts it), schedules paused so that only the
    runs a test triggers execute; fast retries; runs picked up within a second."""
    from prefect.client.orchestration import get_client

    from tests.helpers import deployment_exists, wait_for

    # a run triggered from the UI (or a test) starts within a second, not up to Prefect's default 10 s
    env = {**os.environ, "PYTHONPATH": str(ROOT), "UPKEEP_RETRY_DELAY": "0.1", "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    proc = spawn("serve", [sys.executable, "-m", "deployments.cli", "serve", "--paused"],
                 stack.base / "logs" / "serve-test.log", env=env, cwd=ROOT)
    try:
        with get_client(sync_client=True) as client:
            wait_for(lambda: deployment_exists(client, "emergency-recovery/emergency-recovery-development"),
                     timeout=120, what="served deployments")
        yield proc
    finally:
        proc.stop()
