"""Error-budget arithmetic (pure)."""

import time

import pytest

from upkeep.hosts import error_allowance


@pytest.mark.parametrize(("budget", "hosts", "allowed"), [
    (0, 10, 0), (2, 10, 2), ("3", 10, 3), ("10%", 10, 1), ("10%", 9, 0), ("25%", 10, 2), ("100%", 7, 7), (None, 5, None),
])
def test_error_allowance(budget, hosts, allowed) -> None:
    assert error_allowance(budget, hosts) == allowed


@pytest.mark.parametrize("budget", [-1, "150%", "-5%"])
def test_bad_budgets(budget) -> None:
    with pytest.raises(ValueError):
        error_allowance(budget, 10)


class _Unpicklable(Exception):
    def __init__(self, host: str, detail: str) -> None:  # two required args: pickle cannot rebuild it
        super().__init__(f"{host}: {detail}")


def test_portable_result_pickles_and_keeps_messages() -> None:
    import pickle

    from upkeep.errors import UpkeepError
    from upkeep.hosts.fanout import fan_out

    def act(h: str) -> str:
        if h == "b":
            raise _Unpicklable(h, "socket closed")
        return h.upper()

    result = fan_out({h: h for h in "abc"}, act, max_concurrency=2, max_errors=None)
    with pytest.raises(TypeError):
        pickle.loads(pickle.dumps(result))
    back = pickle.loads(pickle.dumps(result.portable()))
    assert back.failed["b"].message == "b: socket closed" and type(back.failed["b"].error) is UpkeepError
    assert {h: o.value for h, o in back.succeeded.items()} == {"a": "A", "c": "C"}


def test_portable_result_keeps_the_type_of_errors_that_pickle() -> None:
    import pickle

    from upkeep.hosts.fanout import fan_out
    from upkeep.packages.rolling import HostRolledBack

    def act(h: str) -> str:
        raise HostRolledBack(f"{h}: post-update checks failed; rolled back")

    back = pickle.loads(pickle.dumps(fan_out({"a": "a"}, act, max_concurrency=1, max_errors=None).portable()))
    assert type(back.failed["a"].error) is HostRolledBack
    assert back.failed["a"].message == "a: post-update checks failed; rolled back"


def test_merged_adds_earlier_outcomes_in_the_given_order() -> None:
    from upkeep.hosts.fanout import Outcome, Status, fan_out

    now = fan_out({"c": "c", "a": "a"}, str.upper, max_concurrency=2, max_errors=None)
    earlier = {"b": Outcome("b", Status.SUCCEEDED, value="B", reason="done in an earlier attempt")}
    merged = now.merged(earlier, ["a", "b", "c"])
    assert list(merged.outcomes) == ["a", "b", "c"] and merged.outcomes["b"].message == "done in an earlier attempt"


def test_each_host_gets_the_time_of_its_own_steps() -> None:
    from upkeep.hosts.fanout import fan_out, timed_step
    from upkeep.humanize import step_times

    def action(host: str) -> str:
        with timed_step("stop"):
            time.sleep(0.01)
        with timed_step("apt"):
            time.sleep(0.03 if host == "b" else 0.0)
        with timed_step("stop"):  # a step that repeats is summed
            time.sleep(0.01)
        if host == "c":
            with timed_step("checks"):
                raise RuntimeError("unhealthy")
        return host

    result = fan_out({h: h for h in "abc"}, action, max_concurrency=3, max_errors=None)
    steps = {h: o.steps for h, o in result.outcomes.items()}
    assert list(steps["a"]) == ["stop", "apt"] and steps["a"]["stop"] >= 0.02 and steps["a"]["apt"] < 0.02
    assert steps["b"]["apt"] >= 0.03  # its own, not another host's
    assert list(steps["c"]) == ["stop", "apt", "checks"]  # kept when the step raised
    assert step_times({"stop": 0.4, "apt": 3.14, "checks": 0.21}) == "stop 400 ms, apt 3.1 s, checks 210 ms"
    with timed_step("outside"):  # outside a fan-out: nothing to count toward, nothing breaks
        pass
