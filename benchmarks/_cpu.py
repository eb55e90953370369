"""CPU accounting for benchmarks that run the controller and the (sandbox) hosts on the same machine.

* controller CPU: this process plus every descendant it has reaped (`os.times()` self + children). To also
  catch daemonised descendants — OpenSSH ControlPersist masters fork into the background and would be
  reparented to init — the benchmark makes itself a *child subreaper* (Linux `prctl`), so orphans are
  reparented to it and counted once it reaps them (by PID: see `reap`).
* host CPU: the sshd listeners plus their reaped per-connection children and, below those, the remote
  commands (`/proc/PID/stat` utime+stime+cutime+cstime), plus the sshd processes that are orphaned per
  connection (adopted by the subreaper too: `reap_orphans` moves their CPU to the host side).
  On a real fleet all of this runs on the hosts, not on the controller.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Iterable
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
CLK_TCK = os.sysconf("SC_CLK_TCK")


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux ≥ 3.4); False if not possible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def controller_cpu() -> float:
    """CPU seconds of this process and of its reaped descendants."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def tree_cpu(pids: Iterable[int]) -> float:
    """CPU seconds of the given processes plus their reaped descendants."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / CLK_TCK


def reap(pid: int, timeout: float = 5.0) -> None:
    """Wait for `pid` (a child or an adopted orphan) to exit and collect it; no-op if it is not ours."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done or time.monotonic() >= deadline:
            return
        time.sleep(0.01)


def _stat(pid: int) -> tuple[str, str, int, float] | None:
    """(comm, state, ppid, CPU seconds incl. reaped children) of `pid`, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw.rsplit(")", 1)[1].split()
    return comm, fields[0], int(fields[1]), sum(int(x) for x in fields[11:15]) / CLK_TCK


def reap_orphans(controller_comms: frozenset[str] = frozenset({"ssh"})) -> tuple[float, float]:
    """Reap the exited orphans this subreaper adopted; return their CPU as (controller, host) seconds.

    Orphans named in `controller_comms` (OpenSSH ControlPersist masters) are the controller's; every other
    one is an sshd (or remote-command) process of the hosts: sshd leaves one orphan per connection.
    """
    me, ctrl, host = os.getpid(), 0.0, 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        info = _stat(int(entry.name))
        if info is None or info[2] != me or info[1] != "Z":
            continue
        comm, _, _, cpu = info
        try:
            os.waitpid(int(entry.name), os.WNOHANG)
        except ChildProcessError:
            continue
        if comm in controller_comms:
            ctrl += cpu
        else:
            host += cpu
    return ctrl, host


class CpuMeter:
    """Controller and host CPU over one run; call `start()`, run, let the hosts settle, `stop()`."""

    def __init__(self, host_pids: Iterable[int]) -> None:
        self.host_pids = list(host_pids)
        self._c0 = self._h0 = 0.0

    def start(self) -> None:
        reap_orphans()  # leftovers of an earlier run belong to it, not to this one
        self._c0, self._h0 = controller_cpu(), tree_cpu(self.host_pids)

    def stop(self) -> tuple[float, float]:
        """(controller, host) CPU seconds since start(); reaped host orphans moved to the host side."""
        _, host_orphans = reap_orphans()
        controller = controller_cpu() - self._c0 - host_orphans
        host = tree_cpu(self.host_pids) - self._h0 + host_orphans
        return controller, host
