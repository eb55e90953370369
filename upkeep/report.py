"""What a routine run planned, did, skipped and failed — per stage and per host (pure data).

Rendered as the run's markdown artifact and its per-host table artifact.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from upkeep.stages import Stage

DETAIL_CHARS = 320  # a table cell: what happened, why, and how long each step took; the rest is in the run's log

StepStatus = Literal["planned", "done", "skipped", "failed", "rolled back"]


@dataclass
class Step:
    stage: Stage
    name: str
    host: str | None
    status: StepStatus
    detail: str = ""
    seconds: float | None = None


StageStatus = Literal["running", "done", "failed", "skipped"]


@dataclass
class StageRecord:
    """One stage of a run: its outcome, and when it ran (wall clock, UTC: comparable across runs)."""

    name: Stage
    status: StageStatus = "running"
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    error: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended_at: datetime | None = None

    def finish(self, status: StageStatus, error: str = "") -> None:
        """The stage ended now with `status` (and `error`, shortened)."""
        self.status, self.error = status, error[:500]
        self.seconds = time.monotonic() - self.started
        self.ended_at = datetime.now(UTC)

    def span(self) -> str:
        """'02:00:01.234–02:00:03.545 UTC' (milliseconds: two runs' stages can be told apart)."""
        end = self.ended_at.strftime("%H:%M:%S.%f")[:-3] if self.ended_at else "…"
        return f"{self.started_at.strftime('%H:%M:%S.%f')[:-3]}–{end} UTC"


@dataclass
class RoutineReport:
    routine: str
    environment: str
    dry_run: bool = False
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    stages: list[StageRecord] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outcome: str = "running"
    facts: dict[str, Any] = field(default_factory=dict)  # plain data later runs read from the run record (JSON)

    def add(self, stage: Stage, name: str, status: StepStatus, *, host: str | None = None,
            detail: str = "", seconds: float | None = None) -> Step:
        step = Step(stage, name, host, status, detail, seconds)
        self.steps.append(step)
        return step

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.steps:
            out[s.status] = out.get(s.status, 0) + 1
        return out

    def host_rows(self) -> list[dict[str, Any]]:
        """One row per (host, step): the table artifact."""
        return [
            {"stage": s.stage, "step": s.name, "host": s.host or "-", "status": s.status,
             "seconds": round(s.seconds, 3) if s.seconds is not None else None, "detail": s.detail}
            for s in self.steps
        ]

    def markdown(self) -> str:
        title = f"# {self.routine} — {self.environment}{' (dry run)' if self.dry_run else ''}"
        lines = [title, "", f"**Outcome:** {self.outcome}  ", f"**Started:** {self.started_at.isoformat(timespec='seconds')}  "]
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.counts().items())) or "no steps"
        lines += [f"**Steps:** {counts}", ""]
        for note in self.notes:
            lines.append(f"> {note}")
        if self.notes:
            lines.append("")
        for stage in self.stages:
            secs = f" in {stage.seconds:.2f}s" if stage.seconds is not None else ""
            lines += [f"## {stage.name}: {stage.status}{secs} ({stage.span()})", ""]
            if stage.error:
                lines += [f"Error: `{stage.error}`", ""]
            rows = [s for s in self.steps if s.stage == stage.name]
            if rows:
                lines += ["| step | host | status | time | detail |", "|---|---|---|---|---|"]
                for s in rows:
                    t = f"{s.seconds:.2f}s" if s.seconds is not None else ""
                    detail = s.detail.replace("|", "\\|").replace("\n", " ")
                    detail = detail if len(detail) <= DETAIL_CHARS else detail[: DETAIL_CHARS - 1] + "…"
                    lines.append(f"| {s.name} | {s.host or '-'} | {s.status} | {t} | {detail} |")
                lines.append("")
        return "\n".join(lines)
