"""Run one action on many hosts with a concurrency limit and an error budget.

Semantics (those of AWS SSM's MaxConcurrency / MaxErrors):

* at most `max_concurrency` hosts run at once;
* `max_errors` is a count (``2``) or a percentage of the hosts (``"10%"``, rounded down);
  once the number of failed hosts **exceeds** it, no new host is started — hosts already
  running finish, the rest are reported `skipped`. ``max_errors=0`` stops after the first failure;
  ``None`` never stops early;
* the result maps every host to its outcome (succeeded / failed / skipped, value or error, timing; the
  time of each named step the action marks with `timed_step`);
  `FanOutResult.raise_on_failure()` raises one `FanOutError` when anything failed — after every
  scheduled host has finished.
"""

from __future__ import annotations

import contextvars
import pickle
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Generic, Protocol, TypeVar, cast, overload

from upkeep.errors import FanOutError, UpkeepError

T = TypeVar("T")
H = TypeVar("H")


class Status(str, Enum):  # noqa: UP042 - a StrEnum formats as its value, not Status.X: reports would change
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Outcome(Generic[T]):
    host: str
    status: Status
    value: T | None = None
    error: BaseException | None = None
    started: float | None = None
    duration: float = 0.0
    reason: str = ""
    steps: Mapping[str, float] = field(default_factory=dict)  # step → seconds (what the action marked: timed_step)

    @property
    def message(self) -> str:
        return str(self.error) if self.error else self.reason


_STEPS: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("upkeep_fanout_steps", default=None)


@contextmanager
def timed_step(name: str) -> Iterator[None]:
    """Count the time spent inside toward step `name` of the host the fan-out is running (summed when
    the step repeats; kept when it raises); nothing outside a fan-out."""
    steps, started = _STEPS.get(), time.monotonic()
    try:
        yield
    finally:
        if steps is not None:
            steps[name] = steps.get(name, 0.0) + time.monotonic() - started


def _timed(action: Callable[[Any], T], host: Any, steps: dict[str, float]) -> T:
    _STEPS.set(steps)  # inside the host's own copy of the context
    return action(host)


@dataclass
class FanOutResult(Generic[T]):
    """Per-host outcomes, in the order the hosts were given (like Fabric's GroupResult)."""

    outcomes: dict[str, Outcome[T]] = field(default_factory=dict)
    stopped_early: bool = False

    def by_status(self, status: Status) -> dict[str, Outcome[T]]:
        return {k: o for k, o in self.outcomes.items() if o.status is status}

    @property
    def succeeded(self) -> dict[str, Outcome[T]]:
        return self.by_status(Status.SUCCEEDED)

    @property
    def failed(self) -> dict[str, Outcome[T]]:
        return self.by_status(Status.FAILED)

    @property
    def skipped(self) -> dict[str, Outcome[T]]:
        return self.by_status(Status.SKIPPED)

    def returned(self) -> dict[str, T]:
        """What the action returned on each host that succeeded."""
        return {h: cast(T, o.value) for h, o in self.succeeded.items()}  # a succeeded outcome holds the action's value

    def summary(self) -> str:
        s = f"{len(self.succeeded)} succeeded, {len(self.failed)} failed, {len(self.skipped)} skipped"
        return s + (" (error budget exceeded)" if self.stopped_early else "")

    def portable(self) -> FanOutResult[T]:
        """A copy that is safe to pickle and persist: an error that does not survive a pickle round
        trip (a driver's exception may hold a socket, or have an __init__ that unpickling cannot call)
        becomes a plain UpkeepError with the same message; the others keep their type (HostRolledBack)."""
        outcomes = {h: o if o.error is None or _round_trips(o.error)
                    else replace(o, error=UpkeepError(o.message)) for h, o in self.outcomes.items()}
        return FanOutResult(outcomes, self.stopped_early)

    def merged(self, earlier: Mapping[str, Outcome[T]], order: Iterable[str]) -> FanOutResult[T]:
        """This result with `earlier` outcomes (e.g. hosts done in a previous attempt) added, in `order`."""
        everything = {**earlier, **self.outcomes}
        return FanOutResult({h: everything[h] for h in order if h in everything}, self.stopped_early)

    def raise_on_failure(self) -> FanOutResult[T]:
        if self.failed:
            detail = "; ".join(f"{h}: {o.message}" for h, o in self.failed.items())
            raise FanOutError(self, f"{self.summary()}: {detail}")
        return self


def _round_trips(error: BaseException) -> bool:
    try:
        copy = pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - anything that cannot be pickled back is not portable
        return False
    return type(copy) is type(error) and str(copy) == str(error)


def error_allowance(max_errors: int | str | None, n_hosts: int) -> int | None:
    """How many failed hosts are tolerated before no new host starts (None: no limit)."""
    if max_errors is None:
        return None
    if isinstance(max_errors, str):
        text = max_errors.strip()
        if text.endswith("%"):
            pct = float(text[:-1])
            if not 0 <= pct <= 100:
                raise ValueError(f"max_errors {max_errors!r}: a percentage must be between 0% and 100%")
            return int(n_hosts * pct // 100)
        max_errors = int(text)
    if max_errors < 0:
        raise ValueError(f"max_errors {max_errors!r} must not be negative")
    return max_errors


class Named(Protocol):
    """A host given without its name: the name is its `.name`."""

    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=Named)


@overload
def fan_out(hosts: Mapping[str, H], action: Callable[[H], T], *, max_concurrency: int = 10,
            max_errors: int | str | None = 0, on_done: Callable[[Outcome[T]], None] | None = None) -> FanOutResult[T]: ...


@overload
def fan_out(hosts: Iterable[N], action: Callable[[N], T], *, max_concurrency: int = 10,
            max_errors: int | str | None = 0, on_done: Callable[[Outcome[T]], None] | None = None) -> FanOutResult[T]: ...


def fan_out(
    hosts: Mapping[str, Any] | Iterable[Named],
    action: Callable[[Any], T],
    *,
    max_concurrency: int = 10,
    max_errors: int | str | None = 0,
    on_done: Callable[[Outcome[T]], None] | None = None,
) -> FanOutResult[T]:
    """Run `action(host)` for every host; see the module docstring for the exact semantics.

    `hosts` is a mapping name → host or an iterable of objects with a `.name`.
    """
    items = dict(hosts) if isinstance(hosts, Mapping) else {h.name: h for h in hosts}
    if max_concurrency < 1:
        raise ValueError("max_concurrency must be at least 1")
    allowed = error_allowance(max_errors, len(items))
    result: FanOutResult[T] = FanOutResult()
    pending = list(items.items())
    running: dict[Future[T], tuple[str, float, dict[str, float]]] = {}
    failures = 0

    def record(outcome: Outcome[T]) -> None:
        result.outcomes[outcome.host] = outcome
        if on_done:
            on_done(outcome)

    with ThreadPoolExecutor(max_workers=min(max_concurrency, max(1, len(items))), thread_name_prefix="fanout") as pool:
        while pending or running:
            while pending and len(running) < max_concurrency and not result.stopped_early:
                name, host = pending.pop(0)
                # each host runs in a copy of the caller's context (so e.g. a Prefect flow run is visible)
                steps: dict[str, float] = {}
                fut = pool.submit(contextvars.copy_context().run, _timed, action, host, steps)
                running[fut] = (name, time.monotonic(), steps)
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                name, started, steps = running.pop(fut)
                elapsed = time.monotonic() - started
                exc = fut.exception()
                if exc is None:
                    record(Outcome(name, Status.SUCCEEDED, value=fut.result(), started=started, duration=elapsed, steps=steps))
                else:
                    failures += 1
                    record(Outcome(name, Status.FAILED, error=exc, started=started, duration=elapsed, steps=steps))
                    if allowed is not None and failures > allowed:
                        result.stopped_early = True
            if result.stopped_early and pending:
                for name, _host in pending:
                    record(Outcome(name, Status.SKIPPED, reason=f"not started: {failures} failed > max_errors {max_errors}"))
                pending.clear()
    result.outcomes = {name: result.outcomes[name] for name in items}
    return result
