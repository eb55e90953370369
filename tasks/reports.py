"""Tasks that touch Prefect's artifact store: the run report, per-host table, progress."""

from __future__ import annotations

import contextvars
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import (
    create_image_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from upkeep.report import RoutineReport


def _key(report: RoutineReport, kind: str) -> str:
    """`clear-cache-production-report`: the routine's id, the environment, what it is (artifact keys
    are lowercase letters, numbers and dashes; ids and environment names are already)."""
    return f"{report.routine}-{report.environment}-{kind}"


def publish_report(report: RoutineReport, *, table: bool = True) -> None:
    """The markdown report and the per-host outcome table of a routine run (two API calls, sent
    side by side: the run ends when both are stored). `table=False`: the report alone (a minute
    health check with nothing failed: its report already holds the small table)."""
    rows = report.host_rows() or [{"stage": "-", "step": "-", "host": "-", "status": report.outcome, "seconds": None,
                                   "detail": ""}]
    with ThreadPoolExecutor(1, thread_name_prefix="upkeep-report") as pool:
        sent = (pool.submit(contextvars.copy_context().run, create_table_artifact, rows, _key(report, "hosts"),
                            f"per-host outcomes of {report.routine}") if table else None)
        create_markdown_artifact(report.markdown(), key=_key(report, "report"),
                                 description=f"{report.routine} on {report.environment}: {report.outcome}")
        if sent is not None:
            sent.result()


def publish_analysis(report: RoutineReport, fmt: str, markdown: str, tables: dict[str, list[dict[str, Any]]],
                     charts: dict[str, str]) -> None:
    """An analysis' own artifacts beside the run report: its markdown, one table per finding kind,
    one image per chart (a presigned URL the browser fetches from the store)."""
    create_markdown_artifact(markdown, key=_key(report, f"{fmt}-analysis"), description=f"{fmt} log analysis")
    for name, rows in tables.items():
        if rows:
            create_table_artifact(rows, key=_key(report, f"{fmt}-{_slug(name)}"), description=name.replace("_", " "))
    for name, url in charts.items():
        create_image_artifact(image_url=url, key=_key(report, f"{fmt}-chart-{_slug(name)}"), description=name.replace("_", " "))


def publish_review(report: RoutineReport, markdown: str, tables: dict[str, list[dict[str, Any]]],
                   charts: dict[str, str]) -> None:
    """A review's own artifacts beside the run report: its markdown (`<routine>-<env>-review`), one table per kind of
    figure, one image per chart (a presigned URL the browser fetches from the store)."""
    create_markdown_artifact(markdown, key=_key(report, "review"), description=f"{report.routine} on {report.environment}")
    for name, rows in tables.items():
        if rows:
            create_table_artifact(rows, key=_key(report, _slug(name)), description=name.replace("_", " "))
    for name, url in charts.items():
        create_image_artifact(image_url=url, key=_key(report, f"chart-{_slug(name)}"), description=name.replace("_", " "))


def publish_composite(composite: str, environment: str, markdown: str, outcome: str) -> None:
    """A composite run's report: each routine's outcome in order, the guides' items, the manual checklist."""
    create_markdown_artifact(markdown, key=f"{composite}-{environment}-report", description=f"{composite}: {outcome}")


def publish_findings(report: RoutineReport, markdown: str, rows: list[dict[str, Any]]) -> None:
    """A security run's findings beside its report: the markdown (counts, new / persisting / fixed, waivers) and
    one table of every finding record."""
    create_markdown_artifact(markdown, key=_key(report, "findings"), description=f"{report.routine} findings")
    if rows:
        create_table_artifact(rows, key=_key(report, "findings-table"), description=f"every {report.routine} finding")


def _slug(name: str) -> str:
    """An artifact key part: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"


def publish_override(report: RoutineReport, who: str, why: str, when: str) -> None:
    """An emergency override outside the window: who allowed it, why, and when."""
    create_markdown_artifact(
        f"# Override: {report.routine} on {report.environment}\n\n| who | why | when |\n|---|---|---|\n"
        f"| {who} | {why.replace('|', '/')} | {when} |\n",
        key=_key(report, "override"), description=f"emergency override by {who}",
    )


class Progress:
    """A progress artifact for long fan-outs (percentage of hosts finished).

    The artifact is created and updated by a background sender (each update is an API call), at
    most every `min_interval` seconds, so the hosts' workers never wait for the API; `finish()`
    sends the final count and stops the sender."""

    def __init__(self, key: str, description: str, total: int, done: int = 0, min_interval: float = 1.0) -> None:
        self.key, self.description = key, description
        self.total, self.done, self.min_interval = max(total, 1), done, min_interval
        self.id: UUID | None = None
        self._changed, self._stop, self._lock = threading.Event(), threading.Event(), threading.Lock()
        self._sender = threading.Thread(target=contextvars.copy_context().run, args=(self._send_loop,),
                                        name="upkeep-progress", daemon=True)
        self._sender.start()

    @classmethod
    def start(cls, routine: str, environment: str, total: int, done: int = 0) -> Progress:
        key = f"{routine}-{environment}-progress"
        return cls(key, f"{routine}: hosts finished", total, done)

    def _percent(self) -> float:
        return 100.0 * min(self.done, self.total) / self.total

    def _send_loop(self) -> None:
        # a sync caller: async_dispatch returns the artifact's id, not a coroutine
        artifact = self.id = cast(UUID, create_progress_artifact(self._percent(), key=self.key, description=self.description))
        sent = self.done
        while not self._stop.is_set():
            self._changed.wait()
            self._changed.clear()
            if self.done != sent and not self._stop.is_set():
                sent = self.done
                update_progress_artifact(artifact, self._percent())
                self._stop.wait(self.min_interval)
        if self.done != sent:
            update_progress_artifact(artifact, self._percent())

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
        self._changed.set()

    def finish(self, timeout: float = 10.0) -> None:
        """Send the final count and stop the sender (waits for the API, at most `timeout` s)."""
        self._stop.set()
        self._changed.set()
        self._sender.join(timeout)
