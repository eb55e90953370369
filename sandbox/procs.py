"""Start and stop the sandbox's server processes, by PID (each in its own process group)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from upkeep.errors import UpkeepError


class SandboxError(UpkeepError):
    """A sandbox server did not start or stop as expected (the message says what to do)."""


def untraversable(path: Path) -> Path | None:
    """The first directory on the way to `path` that other users cannot enter (no o+x), if any."""
    for parent in [*reversed(path.resolve().parents), path.resolve()]:
        if parent.exists() and not parent.stat().st_mode & 0o001:
            return parent
    return None


PORTS_ENV = "UPKEEP_SANDBOX_PORTS"  # "LOW-HIGH": the ports free_port hands out (default: any the kernel picks)
_handed: set[int] = set()


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port free on `address` right now. With $UPKEEP_SANDBOX_PORTS (`LOW-HIGH`, below the kernel's ephemeral
    range), the next free one of that range not handed out before by this process: two stacks started side by side
    (the test workers) draw from ranges of their own, and no outgoing connection takes a port between the moment it is
    chosen and the moment its server binds it."""
    window = os.environ.get(PORTS_ENV)
    if not window:
        with socket.socket() as s:
            s.bind((address, 0))
            return int(s.getsockname()[1])
    try:
        low, high = (int(part) for part in window.split("-"))
    except ValueError as exc:
        raise SandboxError(f"${PORTS_ENV}={window!r}: expected LOW-HIGH, e.g. 20000-25999") from exc
    for port in range(low, high + 1):
        if port in _handed:
            continue
        with socket.socket() as s:
            try:
                s.bind((address, port))
            except OSError:
                continue
        _handed.add(port)
        return port
    raise SandboxError(f"${PORTS_ENV}={window}: every port of the range is taken or handed out already")


def http_ok_status(url: str, timeout: float = 2.0) -> int:
    """The HTTP status of a GET (0 when nothing answers)."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URLs of our servers
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def port_open(address: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Proc:
    """A server process of the sandbox."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        stop_pid(self.pid, timeout)
        try:
            self.popen.wait(timeout=1)
        except subprocess.TimeoutExpired:
            pass


def spawn(name: str, argv: Sequence[str], log: Path, *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Proc:
    """Start argv in a new session (so stop() can signal its whole group), output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            list(argv), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )
    return Proc(name, popen, log)


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL what is left after `timeout`."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
        _reap(pid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, proc: Proc | None = None) -> None:
    """Poll `check` until true; fail with the tail of the process log when it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and not proc.alive():
            raise SandboxError(f"{what} exited with {proc.popen.returncode}: {tail(proc.log)}")
        time.sleep(0.1)
    raise SandboxError(f"{what} not ready within {timeout:g}s: {tail(proc.log) if proc else ''}")


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
