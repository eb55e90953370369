"""Persisted task results: the same side effect twice in one flow run happens twice; a retried
run still finds each completed call's own result (so only the failed steps run again)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prefect import flow

from sandbox.stack import Stack
from tasks._base import step

pytestmark = pytest.mark.stack


@step("append", retries=0)
def append_line(path: str) -> int:
    """A side effect: one line appended per call; the number of lines after it."""
    with open(path, "a") as f:
        f.write("x\n")
    return len(Path(path).read_text().splitlines())


@flow(retries=1, retry_delay_seconds=0)
def twice_then_fail_once(path: str, marker: str) -> list[int]:
    calls = [append_line(path), append_line(path)]
    if not Path(marker).exists():  # the first attempt fails after both calls
        Path(marker).write_text("failed once")
        raise RuntimeError("first attempt fails")
    return calls


def test_identical_calls_run_each_time_and_a_retry_reuses_each_result(stack: Stack, tmp_path: Path) -> None:
    path, marker = tmp_path / "calls.txt", tmp_path / "marker"
    assert twice_then_fail_once(str(path), str(marker)) == [1, 2]  # the retry: each call's own result
    assert path.read_text().count("x") == 2  # ran twice in the first attempt, not again in the retry
