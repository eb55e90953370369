"""Error-budget arithmetic (pure)."""

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
