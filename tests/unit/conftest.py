"""Unit tests: pure code, fakes, fixture files and a few short-lived local processes; no stack, no
Prefect server. The stack and its settings belong to `tests/integration/conftest.py`."""

from __future__ import annotations

import os

import pytest

# With no PREFECT_API_URL, Prefect starts a temporary server of its own for anything that reaches
# its API (a flow called, a client opened); here that is an error instead ("No Prefect API URL
# provided"): no unit test needs the API. Set before any test module imports Prefect, which reads
# its settings then; an explicit setting in the shell still wins.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_ENABLED", "false")


@pytest.fixture(autouse=True)
def _no_inventory_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No unit test reads the inventory $UPKEEP_CONFIG names (the shell's, or the stack's when the
    integration tests run in the same session): each passes its own file."""
    monkeypatch.delenv("UPKEEP_CONFIG", raising=False)
