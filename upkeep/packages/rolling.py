"""One host's update, step by step, over injected operations (no Prefect, no I/O of its own).

    stop services → apply → start services → verify (health, smoke tests)
    → on any failure after the first change: stop → roll back to the exact previous versions
      → start → verify again → raise HostRolledBack (the host is back where it was, and says so)

The caller runs it per host inside a rolling fan-out (`upkeep.hosts.fanout`) and decides what
"stop", "apply" and "verify" mean: `HostOps` is the seam (SSH commands, package drivers, HTTP probes
in production; plain fakes in unit tests).
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import NoReturn, Protocol, TypeVar

from upkeep.errors import HostRolledBack as HostRolledBack  # re-exported: defined here before upkeep.errors
from upkeep.errors import UpkeepError
from upkeep.packages.model import PackageUpdate

T = TypeVar("T")
Versions = dict[str, dict[str, str]]  # manager → package → version


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


def _each(ops: HostOps, services: Sequence[str], action: str) -> list[str]:
    """`action` on every service, each tried even when an earlier one failed; the failures, as text."""
    errors = []
    for s in services:
        try:
            ops.service(s, action)
        except Exception as exc:  # noqa: BLE001 - collected: every service gets its turn
            errors.append(f"{action} {s}: {exc}")
    return errors


def update_host(ops: HostOps, services: Sequence[str], updates: Sequence[PackageUpdate],
                before: Mapping[str, Mapping[str, str]]) -> Versions:
    """Apply `updates` with the services stopped; verify; roll back and re-verify on failure.

    Any failure after the first package change — an apply that fails part-way, a service that will
    not start, failed checks — rolls back every manager the update touched (the one that failed
    included: its apply may have changed some packages), restarts the services and verifies again.
    A failure before any change (a service that will not stop) changes nothing: the services are
    started again and the error re-raised.

    Returns the installed versions afterwards (manager → name → version); raises HostRolledBack
    when the host was returned to its previous versions and verified, or the error that stopped it.
    """
    stop_errors = _each(ops, services, "stop")
    if stop_errors:
        restart = _each(ops, services, "start")
        raise UpkeepError("; ".join(stop_errors) + "; nothing was changed"
                          + (f"; also failed: {'; '.join(restart)}" if restart else "; services started again"))
    after: Versions = {}
    touched: list[PackageUpdate] = []
    step = "update"
    try:
        for manager, items in by_manager(updates).items():
            step = f"{manager} update"
            touched += items
            after[manager] = ops.apply(manager, items)
        step = "service start"
        start_errors = _each(ops, services, "start")
        if start_errors:
            raise UpkeepError("; ".join(start_errors))
        step = "post-update checks"
        ops.verify(services, "post")
    except Exception as exc:  # noqa: BLE001 - whatever stopped the update, the host goes back
        _roll_back(ops, services, before, touched, f"{step} failed ({exc})", exc)
    return after


def _roll_back(ops: HostOps, services: Sequence[str], before: Mapping[str, Mapping[str, str]],
               touched: Sequence[PackageUpdate], what: str, cause: Exception) -> NoReturn:
    """Stop → restore the pre-update versions of `touched` → start → verify; raise HostRolledBack."""
    _each(ops, services, "stop")  # best effort: a service that is down already need not stop
    try:
        for manager, versions in rollback_targets(before, touched).items():
            ops.rollback(manager, versions)
    except Exception as err:  # noqa: BLE001 - reported with what caused the rollback
        restart = _each(ops, services, "start")
        raise UpkeepError(f"{what}; rollback failed ({err}): the host needs attention"
                          + (f"; also failed: {'; '.join(restart)}" if restart else "")) from err
    restart = _each(ops, services, "start")
    if restart:
        raise UpkeepError(f"{what}; rolled back, but " + "; ".join(restart)) from cause
    ops.verify(services, "rollback")
    new = [u.item_id for u in touched if u.name not in before.get(u.manager, {})]
    raise HostRolledBack(f"{what}; rolled back to the previous versions and verified"
                         + (f" (newly installed, left in place: {', '.join(new)})" if new else "")) from cause


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
