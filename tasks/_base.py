"""What every Upkeep task shares: run names in their stage, retries that skip permanent errors, resources.

Results are persisted (so retrying a failed flow run from the UI re-executes only the failed
steps: completed ones come back Cached) with Prefect's default cache key (inputs + task source +
flow run id) plus the call's ordinal among identical calls of the run (`PerCall`): the same
command twice in one run runs twice, and a retry, replaying the run, finds each call's own result.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from prefect import Task, task
from prefect.cache_policies import DEFAULT, NO_CACHE, CachePolicy
from prefect.context import FlowRunContext, TaskRunContext
from prefect.results import get_result_store
from prefect.tasks import exponential_backoff
from prefect.utilities.hashing import hash_objects

from upkeep.errors import PermanentError, UpkeepError
from upkeep.hosts.fanout import FanOutResult
from upkeep.resources import Resources, current_resources
from upkeep.stages import qualified

if TYPE_CHECKING:
    from prefect.tasks import TaskRunNameCallbackWithParameters

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


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


def step(name: str, *, retries: int = 2, timeout: float | None = None,
         cache: bool = True, run_name: str | None = None) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Declare a task of a routine: `name` (kebab-case), and a `run_name` template over its
    parameters (`"disk-space[{host}]"`; default: the name).

    No stage here: a task runs in the stage its caller is in (`with r.stage("post")`), and its
    run is named after it in the UI (`post:notify`, `guard:notify`; see upkeep.stages). No tags
    on purpose: in Prefect 3.8 every tagged task run first asks the server for tag concurrency
    slots, which measured as most of a rolling update's orchestration time (benchmarks/README.md).
    """
    template = run_name or name

    def run_name_in_stage(parameters: dict[str, Any]) -> str:
        return qualified(template.format(**parameters))

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        return task(
            name=name,
            # Prefect calls it with the parameters (it has a `parameters` argument); its protocol
            # type is a class with a classmethod, which a plain function cannot be
            task_run_name=cast("TaskRunNameCallbackWithParameters", run_name_in_stage),
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
    """The id of the flow run the caller is in (checkpoints and maintenance locks are keyed by it)."""
    ctx = TaskRunContext.get()
    if ctx is not None:
        return str(ctx.task_run.flow_run_id)
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        return str(flow_ctx.flow_run.id)
    raise UpkeepError("not inside a flow run: checkpoints and maintenance locks belong to one")


def resources() -> Resources:
    """The resources of the routine this task runs in (upkeep.resources.current_resources)."""
    return current_resources()


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
