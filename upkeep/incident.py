"""Incident records and post-mortem drafts (pure: data in, markdown out)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def new_incident_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"INC-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass
class Incident:
    incident_id: str
    environment: str
    service: str
    action: str
    reason: str
    triggered_by: str
    opened_at: datetime
    failing: dict[str, str] = field(default_factory=dict)  # host → what failed
    recent_errors: dict[str, list[str]] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    left_stopped: list[str] = field(default_factory=list)
    outcome: str = "open"
    closed_at: datetime | None = None

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items()}

    def postmortem(self, timeline: list[dict[str, Any]], run_url: str | None) -> str:
        """A post-mortem draft for humans to finish: facts filled in, judgement left open."""
        lines = [
            f"# Post-mortem draft — {self.incident_id}", "",
            f"**Environment:** {self.environment}  ", f"**Service:** {self.service}  ",
            f"**Opened:** {self.opened_at:%Y-%m-%d %H:%M:%S} UTC by {self.triggered_by}  ",
            f"**Closed:** {self.closed_at:%Y-%m-%d %H:%M:%S} UTC  " if self.closed_at else "**Closed:** not yet  ",
            f"**Outcome:** {self.outcome}  ", f"**Run:** {run_url or '-'}", "",
            "## Summary", "", f"{self.reason or 'Manual emergency recovery.'} Action taken: **{self.action}**.", "",
            "## Impact", "",
        ]
        lines += [f"- {host}: {what}" for host, what in self.failing.items()] or ["- no failing check found when identified"]
        lines += ["", "## Timeline (UTC)", "", "| time | step | state |", "|---|---|---|"]
        for row in timeline:
            at = row["at"].strftime("%H:%M:%S") if row.get("at") else "-"
            lines.append(f"| {at} | {row['step']} | {row['state']} |")
        lines += ["", "## Recent errors in the service's log", ""]
        for host, errors in self.recent_errors.items():
            lines += [f"**{host}**", "", "```", *errors[-10:], "```", ""] if errors else [f"**{host}**: none", ""]
        lines += ["## Actions", ""] + [f"- {a}" for a in self.actions]
        if self.left_stopped:
            lines += ["", "## Left stopped (needs a person)", ""] + [f"- {x}" for x in self.left_stopped]
        lines += ["", "## Root cause", "", "_To be written: why did it fail?_", "",
                  "## What went well / what went wrong", "", "_To be written._", "",
                  "## Follow-ups", "", "- [ ] _owner — action — due date_"]
        return "\n".join(lines)
