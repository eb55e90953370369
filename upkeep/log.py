"""The logger of the core: the Prefect run's logger inside a run (its lines show in the UI), the
`upkeep` logger outside one (a unit test, the CLI)."""

from __future__ import annotations

import logging
from typing import Any

Logger = logging.Logger | logging.LoggerAdapter[Any]


def run_logger() -> Logger:
    """The current flow or task run's logger, else `logging.getLogger("upkeep")`."""
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.logging import get_run_logger

    if TaskRunContext.get() is not None or FlowRunContext.get() is not None:
        return get_run_logger()
    return logging.getLogger("upkeep")
