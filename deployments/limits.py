"""The global concurrency limits the deployments need: one slot per environment for its disruptive
routines (`upkeep-disruptive-<env>`, limit 1; `upkeep.routines.slot_name`).

Created with the deployments: `upkeep serve` ensures them before it serves (`ensure_limits`), and
a run that finds its environment's limit missing creates it (flows._slots.ensure_slot), so a
`prefect deploy` set-up works without a step of its own; `prefect gcl ls` / the UI's Concurrency
page shows them and which run holds a slot.
"""

from __future__ import annotations

import logging

from flows._slots import ensure_slot
from upkeep.config.models import Inventory
from upkeep.routines import slot_name

log = logging.getLogger("upkeep.deployments")


def ensure_limits(inventory: Inventory) -> list[str]:
    """Create every environment's disruptive slot that is missing, and set one changed by hand back to one
    active slot (idempotent); one line per environment saying what was found or done."""
    lines = [ensure_slot(slot_name(env), repair=True) for env in inventory.environments]
    for line in lines:
        log.info("concurrency limit %s", line)
    return lines
