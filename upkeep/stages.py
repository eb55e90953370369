"""The stages of a routine, named once; the stage a flow is in, known to the tasks it calls.

A flow names its stages where it uses them (`with r.stage("post"): ...`); a task is declared
without one (`@step("notify")`) and its run shows up in the UI as `post:notify` when called in
the post stage, `guard:notify` when the guard calls it. The current stage is a context variable:
it follows the call into Prefect's task engine and into the fan-out's worker threads (both copy
the caller's context).

The guide's routines use pre → execute → post (with plan and rollback); health checks use
probe → evaluate → act; emergency recovery identify → stop → fix → verify → restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal, get_args

Stage = Literal["guard", "pre", "plan", "execute", "post", "rollback",
                "probe", "evaluate", "act",
                "identify", "stop", "fix", "verify", "restart"]
STAGES: tuple[Stage, ...] = get_args(Stage)

_CURRENT: ContextVar[Stage | None] = ContextVar("upkeep_stage", default=None)


def current_stage() -> Stage | None:
    """The stage the caller is in (None outside every stage)."""
    return _CURRENT.get()


def check_stage(name: str) -> Stage:
    """`name` as a Stage, or a ValueError listing the stage names."""
    if name not in STAGES:
        raise ValueError(f"stage {name!r} is not one of {', '.join(STAGES)}")
    return name


@contextmanager
def in_stage(name: Stage) -> Iterator[Stage]:
    """Make `name` the current stage inside the block (nested blocks restore the outer one)."""
    token = _CURRENT.set(check_stage(name))
    try:
        yield name
    finally:
        _CURRENT.reset(token)


def qualified(name: str, stage: Stage | None = None) -> str:
    """`post:notify`: a step's name with the stage it runs in (the current one by default)."""
    stage = stage if stage is not None else current_stage()
    return f"{stage}:{name}" if stage else name
