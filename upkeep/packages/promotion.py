"""Staging before production (pure): a version may be applied in an environment only once another
environment applied it successfully at least `min_age` earlier, read from that environment's run
records (AWS Patch Manager's auto-approval delay, but tied to evidence instead of a release date)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from upkeep.humanize import duration
from upkeep.packages.model import PackageUpdate

UPDATE_ROUTINES = ("system-update", "security-patches", "dependency-updates")


@dataclass(frozen=True)
class Held:
    update: PackageUpdate
    reason: str
    eligible_on: datetime | None  # None: never applied there yet


@dataclass(frozen=True)
class Gate:
    eligible: list[PackageUpdate] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)


def proven(records: Iterable[Mapping[str, Any]]) -> dict[str, datetime]:
    """versioned id (`apt:openssl=3.0.15-1`) → when a run first applied it successfully: the end of the
    earliest update run whose record lists it under `facts.applied` (dry runs never count)."""
    out: dict[str, datetime] = {}
    for rec in records:
        if rec.get("routine") not in UPDATE_ROUTINES or rec.get("dry_run"):
            continue
        ended = datetime.fromisoformat(str(rec["ended_at"]))
        for item in (rec.get("facts") or {}).get("applied", []):
            if item not in out or ended < out[item]:
                out[str(item)] = ended
    return out


def promotion_gate(updates: Sequence[PackageUpdate], evidence: Mapping[str, datetime], now: datetime,
                   min_age: timedelta, source: str) -> Gate:
    """Which of `updates` another environment (`source`) proved long enough ago; the others held, each with
    the date it becomes eligible (or that it was never applied there)."""
    gate = Gate()
    for u in updates:
        when = evidence.get(u.versioned_id)
        if when is None:
            gate.held.append(Held(u, f"not applied successfully in {source} yet (promotion gate)", None))
        elif now - when < min_age:
            eligible = when + min_age
            gate.held.append(Held(u, f"applied in {source} on {when:%Y-%m-%d %H:%M} UTC: eligible from "
                                     f"{eligible:%Y-%m-%d %H:%M} UTC (promotion gate: {duration(min_age)})", eligible))
        else:
            gate.eligible.append(u)
    return gate
