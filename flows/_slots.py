"""The environment's disruptive slot: one disruptive routine per environment at a time.

A Prefect global concurrency limit of 1 per environment (`upkeep.routines.slot_name`), taken by the
window guard of a disruptive routine, once by a composite for all its parts, and by a health check's
disruptive action; re-entrant within one run (a context variable holds the slots this run has), so a
routine called by another runs inside its caller's slot instead of waiting for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
from prefect.client.schemas.objects import ConcurrencyLeaseHolder
from prefect.concurrency.sync import concurrency
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from tasks.notify import notify
from upkeep.config.models import EnvironmentConfig
from upkeep.humanize import duration
from upkeep.routines import RoutineSpec, parts, slot_name
from upkeep.windows import can_start_step, wait_bound

# A dead run's slot frees itself this long after its last renewal (and up to 15 s more: the server's repossessor), about
# when the watchdog marks the run Crashed: its retry waits a minute at most for it instead of Prefect's 5. A live run
# renews at three quarters of it: 22 s of margin, with retries, for a slow server.
LEASE = timedelta(seconds=90)
_HELD: ContextVar[frozenset[str]] = ContextVar("upkeep_slots_held", default=frozenset())


def holds(name: str) -> bool:
    """True when this run already holds the slot `name` (a caller's)."""
    return name in _HELD.get()


def ensure_slot(name: str, *, repair: bool = False) -> str:
    """Make sure the global concurrency limit `name` exists with one slot (created when missing: idempotent, and
    safe when two runs race to create it); with `repair`, one changed by hand is set back to one active slot.
    Returns what it found or did, in a few words."""
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
            except ObjectAlreadyExists:
                return f"{name}: exists"
            return f"{name}: created (1 slot)"
        if limit.limit == 1 and limit.active:
            return f"{name}: exists"
        was = f"limit {limit.limit}{'' if limit.active else ', inactive'}"
        if not repair:
            return f"{name}: exists ({was}: not one disruptive routine at a time)"
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=1, active=True))
        return f"{name}: was {was}, set to 1 active slot"


@contextmanager
def hold_slot(environment: str, wait: timedelta) -> Iterator[bool]:
    """Hold `environment`'s disruptive slot inside the block: True when held — at once when this run already holds
    it (a composite's parts, a routine called by another, run inside their caller's slot) — or False when other
    runs kept it for all of `wait` (nothing held). The lease is renewed while held and released at the end; a
    crashed run's expires after LEASE."""
    with hold(slot_name(environment), wait) as got:
        yield got


@contextmanager
def hold(name: str, wait: timedelta) -> Iterator[bool]:
    """Hold the one-slot limit `name` (created when missing) inside the block: True when held (at once when
    this run holds it already), False when other runs kept it for all of `wait`."""
    if name in _HELD.get():
        yield True
        return
    found = ensure_slot(name, repair=True)  # a limit changed by hand (inactive, or >1) would hold nothing: set back
    if "was" in found:
        get_run_logger().warning("%s", found)
    flow_run = FlowRunContext.get()
    holder = ConcurrencyLeaseHolder(type="flow_run", id=flow_run.flow_run.id) if flow_run and flow_run.flow_run else None
    with ExitStack() as held:
        try:
            held.enter_context(concurrency(name, occupy=1, timeout_seconds=max(wait.total_seconds(), 1.0), strict=True,
                                           holder=holder, raise_on_lease_renewal_failure=False,
                                           lease_duration=LEASE.total_seconds()))
            got = True
        except TimeoutError:  # prefect's AcquireConcurrencySlotTimeoutError: other runs kept it
            got = False
        if not got:
            yield False
            return
        token = _HELD.set(_HELD.get() | {name})
        try:
            yield True
        finally:
            _HELD.reset(token)


@contextmanager
def composite_slot(composite: RoutineSpec, env: EnvironmentConfig, emergency: bool = False) -> Iterator[str | None]:
    """The slot of a composite with a disruptive part, taken once for all its parts (they run inside it): None when
    held or not needed, else why it could not be had (the composite then ends Skipped, nothing run). Outside the
    window (and not an emergency) nothing is taken: the disruptive parts' guards skip, the others run."""
    window, now = env.window.to_window(), datetime.now(UTC)
    if not any(p.disruptive for p in parts(composite)) or not (emergency or can_start_step(window, now)):
        yield None
        return
    wait = wait_bound(window, now, env.max_slot_wait) if can_start_step(window, now) else env.max_slot_wait
    with hold_slot(env.name, wait) as held:
        if held:
            yield None
            return
        until = "the longest wait" if window.always or not can_start_step(window, now) else "the window's cutoff"
        reason = f"another disruptive routine held {slot_name(env.name)} until {until} (waited {duration(wait)}); nothing was run"
        get_run_logger().warning("not run: %s", reason)
        notify(composite.id, f"not run: {reason}", "warning")
        yield reason
