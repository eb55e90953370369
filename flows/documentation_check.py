"""The monthly documentation check (the Event Editor guide's Documentation Maintenance: "update API documentation,
maintain changelog"; Monthly Tasks: "update documentation"). Software checks, people edit: nothing is changed.

pre: the routes the API served over the last week (the log analysis' daily summaries) · the deployed version on every
host of the service (its health answer)
execute: the published API description (OpenAPI), the changelog and every documentation link fetched
post: routes served but not described (and described but never served) · deployed versions missing from the changelog ·
links that fail
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow

from flows._review import publish
from flows._routine import Routine
from tasks.log_analysis import daily_summaries
from tasks.services import fetch_documents, service_versions
from upkeep.config.render import render
from upkeep.errors import ReviewInputError
from upkeep.reviews import docs
from upkeep.routines import DOCUMENTATION_CHECK


@flow(name=DOCUMENTATION_CHECK.flow)
def documentation_check(environment: str = "development", config: str | None = None) -> dict[str, Any]:
    with Routine(DOCUMENTATION_CHECK, environment, config) as r:
        cfg = r.env.reviews.documentation
        if not (cfg.api_description or cfg.changelog or cfg.links):
            r.report.notes.append("No documentation is configured to check: set reviews.documentation.api_description, "
                                  "changelog and links.")
            return {"findings": 0}
        with r.stage("pre"):
            summaries, missing, unread = (daily_summaries((datetime.now(UTC) - timedelta(days=1)).date(), 7)
                                          if cfg.api_description else ([], [], ""))
            versions = service_versions() if cfg.changelog else {}
            deployed = {key.split("/", 1)[0]: (None if v == "unknown" or v.startswith("unreachable") else v)
                        for key, v in versions.items() if key.endswith(f"/{cfg.service}")}
        with r.stage("execute"):
            first = r.env.service_hosts(cfg.service)[0] if cfg.api_description or cfg.changelog else None
            named = {k: render(u, first) for k, u in (("api", cfg.api_description), ("changelog", cfg.changelog))
                     if u and first is not None}
            got = fetch_documents({**named, **{u: u for u in cfg.links}}, cfg.timeout.total_seconds())
        with r.stage("post"):
            review = docs.DocsReview(
                described=_described(r, got.get("api")), served=docs.served_routes(summaries) if summaries else None,
                versions=tuple(docs.changelog_versions(got["changelog"].body.decode(errors="replace")))
                if "changelog" in got and got["changelog"].status == 200 else None,
                deployed=deployed, links={u: (got[u].status, got[u].error) for u in cfg.links})
            if cfg.api_description and not summaries:
                r.report.notes.append(f"Served routes unknown: no log analysis summary for the last 7 days "
                                      f"({unread or ', '.join(missing)}).")
            for name in ("api", "changelog"):
                if name in got and got[name].status != 200:
                    r.report.notes.append(f"The {name} document {got[name].url} could not be read: "
                                          f"{got[name].error or f'HTTP {got[name].status}'}.")
            found = review.findings()
            publish(r, docs.markdown(review), found, summary=review.describe())
        return {"findings": len(found)}


def _described(r: Routine, fetched: Any) -> frozenset[str] | None:
    """The routes the API description documents, or None when it was not read (said in the report)."""
    if fetched is None or fetched.status != 200:
        return None
    try:
        return frozenset(docs.described_routes(json.loads(fetched.body)))
    except (ValueError, ReviewInputError) as exc:  # not JSON, or JSON that is not an OpenAPI document
        r.report.notes.append(f"The API description {fetched.url} is not an OpenAPI JSON document: {exc}.")
        return None
