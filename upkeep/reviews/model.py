"""What every review reports: findings with their evidence, in one shape (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Level = Literal["info", "warning", "critical"]
ORDER: dict[str, int] = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class ReviewFinding:
    """One thing a review wants a person to look at: how bad, about what, a sentence, and the figures behind it."""

    level: Level
    subject: str  # "web-1 /var", "GET /api/events", "api on web-1", "control backups-verified"
    title: str  # a sentence with units: "/var fills in 12 days (10–15 d) at 2.0 GiB/day"
    evidence: str = ""  # the figures it rests on: "Theil–Sen over 21 daily maxima, 90 % band"

    def row(self) -> dict[str, str]:
        return {"level": self.level, "subject": self.subject, "finding": self.title, "evidence": self.evidence}


def ordered(findings: Iterable[ReviewFinding]) -> list[ReviewFinding]:
    """Most severe first, then by subject."""
    return sorted(findings, key=lambda f: (ORDER[f.level], f.subject))


def findings_markdown(findings: Iterable[ReviewFinding], *, none: str = "Nothing needs attention.") -> str:
    """A findings section: one sentence of counts, then one bullet per finding with its evidence."""
    items = ordered(findings)
    if not items:
        return f"## Findings\n\n{none}\n"
    counts = {lvl: sum(f.level == lvl for f in items) for lvl in ORDER}
    head = ", ".join(f"{n} {lvl}" for lvl, n in counts.items() if n)
    lines = [f"## Findings\n\n**{len(items)} finding(s)**: {head}.\n"]
    for f in items:
        lines.append(f"- **{f.level}** · {f.subject}: {f.title}" + (f" — _{f.evidence}_" if f.evidence else ""))
    return "\n".join(lines) + "\n"
