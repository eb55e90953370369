"""Saving Prefect blocks from the inventory (`upkeep results-block`, the watchdog's Slack block)."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, cast

from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from upkeep.errors import UpkeepError

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.blocks.core import Block

log = logging.getLogger(__name__)


def save_block(block: Block, name: str, attempts: int = 3) -> UUID:
    """`block.save(name, overwrite=True)`, its id; tried again (after 1 s, then 2 s) when Prefect's create-then-read
    upsert trips on itself. Once, in CI under load, a create answered 409 (a retried request had made the document)
    and the read by name that follows it answered 404."""
    for attempt in range(1, attempts):
        try:
            return _save(block, name)
        except (ObjectAlreadyExists, ObjectNotFound) as exc:
            log.warning("Prefect block %r: %s while saving; trying again", name, type(exc).__name__)
            time.sleep(attempt)
    try:
        return _save(block, name)
    except (ObjectAlreadyExists, ObjectNotFound) as exc:
        raise UpkeepError(f"Prefect block {name!r} could not be saved in {attempts} attempts ({type(exc).__name__}); "
                          "the Prefect server's log says why") from exc


def _save(block: Block, name: str) -> UUID:
    return cast("UUID", block.save(name, overwrite=True))  # a sync caller gets the id, not a coroutine
