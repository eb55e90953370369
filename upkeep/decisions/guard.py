"""The window guard's decision (pure): proceed, skip, or ask for an emergency override.

Emergency policy per environment (the Event Manager guide): production — 24/7 *with approval*;
staging — anytime *with notification*; development — anytime.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from upkeep.windows import Window, describe_decision

Action = Literal["proceed", "skip", "ask_approval", "notify_and_proceed"]


@dataclass(frozen=True)
class GuardDecision:
    action: Action
    reason: str
    override: bool = False  # True when the run goes ahead outside the regular window

    @property
    def proceeds_now(self) -> bool:
        return self.action in ("proceed", "notify_and_proceed")


def guard_decision(window: Window, emergency_policy: str, now: datetime, *, emergency: bool,
                   preapproved: bool = False) -> GuardDecision:
    """Decide what a disruptive routine may do at `now` (`preapproved`: the emergency action is
    configured as needing no approval, e.g. a restart)."""
    regular = describe_decision(window, now)
    if not emergency:
        if regular.proceed:
            return GuardDecision("proceed", regular.reason)
        return GuardDecision("skip", regular.reason)
    if emergency_policy == "approval" and preapproved:
        return GuardDecision("notify_and_proceed",
                             f"emergency run, pre-approved action: proceeding with notification ({regular.reason})",
                             override=True)
    if emergency_policy == "approval":
        return GuardDecision("ask_approval", f"emergency run: approval required ({regular.reason})", override=True)
    return GuardDecision("notify_and_proceed", f"emergency run, policy '{emergency_policy}': proceeding with notification",
                         override=True)


def step_allowed(window: Window, now: datetime, *, override: bool) -> tuple[bool, str]:
    """Before each disruptive stage: may it start (enough time left before the cutoff)?"""
    if override:
        return True, "emergency override in force"
    d = describe_decision(window, now)
    return d.proceed, d.reason
