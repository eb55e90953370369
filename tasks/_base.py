"""What every Upkeep task shares: stage naming, retries that skip permanent errors, resources.

Results are persisted (so retrying a failed flow run from the UI re-executes only the failed
steps: completed ones come back Cached) with Prefect's default cache key (inputs + task source +
flow run id) plus the call's ordinal among identical calls of the run (`PerCall`): the same
command twice in one run runs twice, and a retry, replaying the run, finds each call's own result.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from prefect import Task, task
from prefect.cache_policies import DEFAULT, NO_CACHE, CachePolicy
from prefect.context import FlowRunContext, TaskRunContext
from prefect.results import get_result_store
from prefect.tasks import exponential_backoff
from prefect.utilities.hashing import hash_objects

from upkeep.errors import PermanentError, UpkeepError
from upkeep.hosts.fanout import FanOutResult
from upkeep.resources import Resources

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
_BOUND: dict[str, Resources] = {}


def retry_delay_factor() -> float:
    """Base of the exponential retry delay in seconds (UPKEEP_RETRY_DELAY, default 2)."""
    return float(os.environ.get("UPKEEP_RETRY_DELAY", "2"))


def is_transient(task_: Task[..., Any], task_run: Any, state: Any) -> bool:
    """retry_condition_fn: retry anything but a PermanentError (bad config, auth, host keys)."""
    try:
        state.result()
    except PermanentError:
        return False
    except Exception:  # noqa: BLE001 - every other failure is worth another try
        return True
    return True


@dataclass
class PerCall(CachePolicy):
    """Prefect's default cache key, told apart per call: the n-th task run with the same inputs in
    a flow run gets key n. Without it a second identical call (a service started again after a
    failed check) is served from the first one's cache and never runs. A retried flow run makes
    its calls in the same order, so each finds its own result; a task's own retries keep their
    task run, hence their key."""

    def compute_key(self, task_ctx: TaskRunContext, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        base = DEFAULT.compute_key(task_ctx, inputs, flow_parameters, **kwargs)
        if base is None:
            return None
        flow_ctx = FlowRunContext.get()
        attempt = flow_ctx.flow_run.run_count if flow_ctx is not None and flow_ctx.flow_run is not None else 0
        with _CALLS_LOCK:  # ordinals start afresh with each attempt of the flow run (an in-process retry)
            runs = _CALLS.setdefault((base, attempt), [])
            if task_ctx.task_run.id not in runs:
                runs.append(task_ctx.task_run.id)
            ordinal = runs.index(task_ctx.task_run.id)
        return base if ordinal == 0 else hash_objects(base, ordinal)


_CALLS: dict[tuple[str, int], list[Any]] = {}  # (base key, flow run attempt) → task run ids in call order
_CALLS_LOCK = threading.Lock()
PER_CALL = PerCall()


def step(stage: str, name: str, *, retries: int = 2, timeout: float | None = None,
         cache: bool = True, run_name: str | None = None) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Declare a task of a routine stage: `pre`, `plan`, `execute`, `post`, `rollback`, `guard`.

    The stage shows in the UI as the task name prefix (`pre:hosts`). No tags on purpose: in
    Prefect 3.8 every tagged task run first asks the server for tag concurrency slots, which
    measured as most of a rolling update's orchestration time (benchmarks/README.md).
    """
    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        return task(
            name=f"{stage}:{name}",
            task_run_name=run_name or f"{stage}:{name}",
            retries=retries,
            retry_delay_seconds=exponential_backoff(retry_delay_factor()) if retries else 0,
            retry_jitter_factor=0.5,
            retry_condition_fn=is_transient,
            timeout_seconds=timeout,
            persist_result=True,
            cache_policy=PER_CALL if cache else NO_CACHE,
        )(fn)
    return decorate


def run_key() -> str:
    ctx = TaskRunContext.get()
    if ctx is not None:
        return str(ctx.task_run.flow_run_id)
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        return str(flow_ctx.flow_run.id)
    raise UpkeepError("Upkeep resources are only available inside a flow run")


@contextmanager
def bind_resources(resources: Resources) -> Iterator[Resources]:
    """Make `resources` the clients of the current flow run (closed at exit)."""
    key = run_key()
    _BOUND[key] = resources
    try:
        yield resources
    finally:
        _BOUND.pop(key, None)
        resources.close()


def resources() -> Resources:
    """The Resources bound by the flow run this task belongs to."""
    key = run_key()
    try:
        return _BOUND[key]
    except KeyError:
        raise UpkeepError(f"no resources bound for flow run {key}; tasks must run inside an Upkeep routine") from None


def group_result(result: FanOutResult[T]) -> FanOutResult[T]:
    """A stage task's per-host result: returned when every host succeeded, else raised as one
    FanOutError (so the task fails and a retry of the flow run runs it again). Errors are made
    portable first: the result is persisted with the task's state."""
    return result.portable().raise_on_failure()


class Checkpoints:
    """Per-host results of one stage task that survive a retry of its flow run.

    Stored in the run's result storage (where Prefect persists task results) under a key made of
    the flow run id, the scope (task and what it was asked to do) and the host: a retried run skips
    the hosts its previous attempt finished; a new run, or a changed plan, starts afresh.
    """

    def __init__(self, scope: str) -> None:
        self.scope = scope
        self.store = get_result_store()

    def _key(self, host: str) -> str:
        return "upkeep-checkpoint-" + hashlib.sha256(f"{run_key()}\0{self.scope}\0{host}".encode()).hexdigest()[:40]

    def get(self, host: str) -> tuple[bool, Any]:
        key = self._key(host)
        if not self.store.exists(key):
            return False, None
        return True, self.store.read(key).result

    def put(self, host: str, value: Any) -> None:
        self.store.write(value, key=self._key(host))
