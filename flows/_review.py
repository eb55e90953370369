"""What every review does in its post stage: charts stored beside the run records and shown on the run's page, the
review's markdown and tables published, its findings counted in the run report and record, a notice when one needs a
person."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flows._routine import Routine
from tasks.reports import publish_review
from tasks.review_store import store_charts
from upkeep.errors import UpkeepError
from upkeep.reviews.model import ReviewFinding, findings_markdown, ordered


def publish(r: Routine, markdown: str, findings: Sequence[ReviewFinding], *, summary: str,
            tables: Mapping[str, list[dict[str, Any]]] | None = None, charts: Mapping[str, bytes] | None = None) -> None:
    """Publish a review: `summary` (its first sentence) goes into the run report; charts (name → PNG) are stored and
    shown when `reviews.charts` is on and S3 is configured (else said in the report, the tables still carry the
    figures)."""
    urls: dict[str, str] = {}
    if charts and r.env.reviews.charts:
        try:
            urls = store_charts(r.spec.id, dict(charts))
        except UpkeepError as exc:
            r.report.notes.append(f"Charts not shown: {exc}")
    items = ordered(findings)
    all_tables = {**(tables or {}), "findings": [f.row() for f in items]}
    publish_review(r.report, markdown.rstrip() + "\n\n" + findings_markdown(items), {k: list(v) for k, v in all_tables.items()},
                   urls)
    counts = {lvl: sum(f.level == lvl for f in items) for lvl in ("critical", "warning", "info")}
    r.report.facts["findings"] = counts
    r.report.notes.append(summary + (f" Findings: {counts['critical']} critical, {counts['warning']} warning, "
                                     f"{counts['info']} info (the review artifact lists them)." if items else ""))
    urgent = [f for f in items if f.level != "info"]
    if urgent:
        shown = "; ".join(f"{f.subject}: {f.title}" for f in urgent[:3])
        r.notify(f"{r.spec.id}: {len(urgent)} finding(s) to look at — {shown}"
                 + (f" and {len(urgent) - 3} more" if len(urgent) > 3 else ""),
                 "critical" if counts["critical"] else "warning")
