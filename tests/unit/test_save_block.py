"""deployments.blocks.save_block: Prefect's create-then-read upsert tried again when it trips on itself, and a clear
error naming the block when it keeps failing."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

import deployments.blocks
from deployments.blocks import save_block
from upkeep.errors import UpkeepError


class Flaky:
    """Stands for a Block: `save` raises the given errors in turn, then returns an id."""

    def __init__(self, *errors: Exception) -> None:
        self.errors, self.calls, self.id = list(errors), list[tuple[str, bool]](), uuid4()

    def save(self, name: str, overwrite: bool = False) -> UUID:
        self.calls.append((name, overwrite))
        if self.errors:
            raise self.errors.pop(0)
        return self.id


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(deployments.blocks.time, "sleep", slept.append)
    return slept


def test_a_save_that_works_is_done_once_with_overwrite() -> None:
    block = Flaky()
    assert save_block(block, "upkeep-results-production") == block.id  # type: ignore[arg-type]
    assert block.calls == [("upkeep-results-production", True)]


def test_a_conflict_then_a_missing_read_is_tried_again(no_sleep: list[float]) -> None:
    block = Flaky(ObjectAlreadyExists(http_exc=Exception("409")), ObjectNotFound(http_exc=Exception("404")))
    assert save_block(block, "upkeep-results-development") == block.id  # type: ignore[arg-type]
    assert len(block.calls) == 3 and no_sleep == [1, 2]


def test_a_save_that_keeps_failing_names_the_block_and_keeps_the_cause() -> None:
    errors: list[Any] = [ObjectNotFound(http_exc=Exception("404")) for _ in range(3)]
    block = Flaky(*errors)
    wanted = r"'upkeep-results-staging' could not be saved in 3 attempts \(ObjectNotFound\)"
    with pytest.raises(UpkeepError, match=wanted) as info:
        save_block(block, "upkeep-results-staging")  # type: ignore[arg-type]
    assert isinstance(info.value.__cause__, ObjectNotFound) and len(block.calls) == 3


def test_other_errors_are_not_retried() -> None:
    block = Flaky(ValueError("bad field"))
    with pytest.raises(ValueError, match="bad field"):
        save_block(block, "x")  # type: ignore[arg-type]
    assert len(block.calls) == 1
