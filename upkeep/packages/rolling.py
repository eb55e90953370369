"""One host's update, step by step, over injected operations (no Prefect, no I/O of its own).

    stop services → apply → start services → verify (health, smoke tests)
    → on failure: stop → roll back to the exact previous versions → start → verify again
      → raise HostRolledBack (the host is back where it was, and says so)

The caller runs it per host inside a rolling fan-out (`upkeep.hosts.fanout`) and decides what
"stop", "apply" and "verify" mean: `HostOps` is the seam (SSH commands, package drivers, HTTP probes
in production; plain fakes in unit tests).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from typing import Callable, Mapping, Protocol, Sequence, TypeVar

from upkeep.errors import UpkeepError
from upkeep.packages.model import PackageUpdate

T = TypeVar("T")
Versions = dict[str, dict[str, str]]  # manager → package → version


class HostRolledBack(UpkeepError):
    """A host failed its post-update checks and was returned to its previous versions."""


class HostOps(Protocol):
    """What an update needs to do on one host."""

    def service(self, service: str, action: str) -> None: ...          # "stop" / "start"
    def apply(self, manager: str, updates: list[PackageUpdate]) -> dict[str, str]: ...  # → installed after
    def rollback(self, manager: str, versions: dict[str, str]) -> dict[str, str]: ...   # → installed after
    def verify(self, services: Sequence[str], stage: str) -> None: ...  # raises UpkeepError when unhealthy


def by_manager(updates: Sequence[PackageUpdate]) -> dict[str, list[PackageUpdate]]:
    out: dict[str, list[PackageUpdate]] = defaultdict(list)
    for u in updates:
        out[u.manager].append(u)
    return dict(out)


def rollback_targets(before: Mapping[str, Mapping[str, str]], updates: Sequence[PackageUpdate]) -> Versions:
    """The exact pre-update versions of the packages an update touched (manager → name → version)."""
    out: Versions = defaultdict(dict)
    for u in updates:
        if u.name in before.get(u.manager, {}):
            out[u.manager][u.name] = before[u.manager][u.name]
    return dict(out)


def update_host(ops: HostOps, services: Sequence[str], updates: Sequence[PackageUpdate],
                before: Mapping[str, Mapping[str, str]]) -> Versions:
    """Apply `updates` with the services stopped; verify; roll back and re-verify on failure.

    Returns the installed versions afterwards (manager → name → version); raises HostRolledBack
    when the post-update checks failed and the rollback succeeded, or the rollback's own error.
    """
    for s in services:
        ops.service(s, "stop")
    try:
        after = {m: ops.apply(m, items) for m, items in by_manager(updates).items()}
    finally:
        for s in services:
            ops.service(s, "start")
    try:
        ops.verify(services, "post")
    except UpkeepError as exc:
        for s in services:
            ops.service(s, "stop")
        try:
            for manager, versions in rollback_targets(before, updates).items():
                ops.rollback(manager, versions)
        finally:
            for s in services:
                ops.service(s, "start")
        ops.verify(services, "rollback")
        raise HostRolledBack(f"post-update checks failed ({exc}); rolled back to the previous versions and verified") from exc
    return after


def with_retries(fn: Callable[[], T], *, attempts: int, base_delay: float, retry_on: type[BaseException] = UpkeepError,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """`fn()`, tried up to `attempts` times with exponential backoff (base × 2^n, ±50 % jitter)."""
    for n in range(attempts):
        try:
            return fn()
        except retry_on:
            if n == attempts - 1:
                raise
            sleep(base_delay * 2 ** n * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")  # attempts < 1
