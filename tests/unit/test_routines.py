"""Routine specs and stages: one spelling of a routine, one list of stages, named where used."""

from __future__ import annotations

import importlib
import re

import pytest

from upkeep.hosts.fanout import fan_out
from upkeep.routines import CLEAR_CACHE, ROUTINES, SECURITY_PATCHES, RoutineSpec, routine
from upkeep.stages import STAGES, current_stage, in_stage, qualified


@pytest.mark.parametrize("spec", ROUTINES, ids=lambda s: s.id)
def test_each_spec_names_its_flow(spec: RoutineSpec) -> None:
    module, _, function = spec.entrypoint.partition(":")
    flow = getattr(importlib.import_module(module.removesuffix(".py").replace("/", ".")), function)
    assert flow.name == spec.flow
    assert re.fullmatch(r"[a-z]+(-[a-z]+)*", spec.id)


def test_one_spelling_per_routine() -> None:
    assert len({s.id for s in ROUTINES}) == len(ROUTINES)
    assert CLEAR_CACHE.deployment_name("production") == "clear-cache-production"
    assert CLEAR_CACHE.deployment_path("staging") == "clear-cache/clear-cache-staging"
    assert SECURITY_PATCHES.deployment_path("production") == "system-update/security-patches-production"
    assert routine("clear-cache") is CLEAR_CACHE
    with pytest.raises(KeyError):
        routine("clear_cache")


def test_stages_nest_and_restore() -> None:
    assert current_stage() is None
    with in_stage("pre"):
        assert qualified("notify") == "pre:notify"
        with in_stage("rollback"):
            assert current_stage() == "rollback"
        assert current_stage() == "pre"
    assert qualified("notify") == "notify" and current_stage() is None
    assert {"guard", "pre", "plan", "execute", "post", "rollback"} <= set(STAGES)


def test_an_unknown_stage_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="stage 'cleanup' is not one of guard, pre, plan"), in_stage("cleanup"):
        pass


def test_task_run_named_after_the_callers_stage() -> None:
    from tasks.hosts import check_disk_space
    from tasks.notify import notify

    assert notify.name == "notify" and check_disk_space.name == "disk-space"  # no stage in the definition
    name = check_disk_space.task_run_name
    assert callable(name)
    with in_stage("execute"):
        assert name(parameters={"host": "web-1", "min_free_percent": 10}) == "execute:disk-space[web-1]"
    with in_stage("guard"):
        assert notify.task_run_name(parameters={"routine": "x", "text": "t"}) == "guard:notify"
    assert name(parameters={"host": "web-1"}) == "disk-space[web-1]"


def test_stage_follows_into_the_fan_out_threads() -> None:
    with in_stage("post"):
        result = fan_out({h: h for h in ("a", "b", "c")}, lambda h: current_stage(), max_concurrency=3, max_errors=None)
    assert result.returned() == {"a": "post", "b": "post", "c": "post"}
