"""Tasks that touch Prefect's artifact store: the run report, per-host table, progress."""

from __future__ import annotations

import threading
import time
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
    """A progress artifact for long fan-outs (percentage of hosts finished), updated at most every
    `min_interval` seconds (each update is an API call) and once more at the end."""

    def __init__(self, key: str, description: str, total: int, done: int = 0, min_interval: float = 0.5) -> None:
        self.total, self.done, self.min_interval = max(total, 1), done, min_interval
        self._lock = threading.Lock()
        self._sent_at, self._sent = time.monotonic(), done
        self.id: UUID = create_progress_artifact(self._percent(done), key=key, description=description)  # type: ignore[assignment]

    @classmethod
    def start(cls, routine: str, environment: str, total: int, done: int = 0) -> "Progress":
        key = f"{routine}-{environment}-progress".replace("_", "-").lower()
        return cls(key, f"{routine}: hosts finished", total, done)

    def _percent(self, done: int) -> float:
        return 100.0 * min(done, self.total) / self.total

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if time.monotonic() - self._sent_at < self.min_interval:
                return
            self._sent_at, self._sent, done = time.monotonic(), self.done, self.done
        update_progress_artifact(self.id, self._percent(done))

    def finish(self) -> None:
        """Send the last count if a throttled update left it out."""
        with self._lock:
            if self._sent == self.done:
                return
            self._sent, done = self.done, self.done
        update_progress_artifact(self.id, self._percent(done))
