"""Tasks that touch Prefect's artifact store: the run report, per-host table, progress."""

from __future__ import annotations

from uuid import UUID

from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact, update_progress_artifact

from upkeep.report import RoutineReport


def _key(report: RoutineReport, kind: str) -> str:
    # artifact keys: lowercase letters, numbers and dashes
    return f"{report.routine}-{report.environment}-{kind}".replace("_", "-").lower()


def publish_report(report: RoutineReport) -> None:
    """The markdown report and the per-host outcome table of a routine run."""
    create_markdown_artifact(report.markdown(), key=_key(report, "report"),
                             description=f"{report.routine} on {report.environment}: {report.outcome}")
    rows = report.host_rows() or [{"stage": "-", "step": "-", "host": "-", "status": report.outcome, "seconds": None, "detail": ""}]
    create_table_artifact(rows, key=_key(report, "hosts"), description=f"per-host outcomes of {report.routine}")


def publish_override(report: RoutineReport, who: str, why: str, when: str) -> None:
    """An emergency override outside the window: who allowed it, why, and when."""
    create_markdown_artifact(
        f"# Override: {report.routine} on {report.environment}\n\n| who | why | when |\n|---|---|---|\n"
        f"| {who} | {why.replace('|', '/')} | {when} |\n",
        key=_key(report, "override"), description=f"emergency override by {who}",
    )


class Progress:
    """A progress artifact for long fan-outs (percentage of hosts finished)."""

    def __init__(self, report: RoutineReport, total: int) -> None:
        self.total, self.done = max(total, 1), 0
        self.id: UUID = create_progress_artifact(0.0, key=_key(report, "progress"),
                                                 description=f"{report.routine}: hosts finished")  # type: ignore[assignment]

    def advance(self, n: int = 1) -> None:
        self.done += n
        update_progress_artifact(self.id, 100.0 * min(self.done, self.total) / self.total)
