"""The monthly configuration review (the Event Editor guide's Monthly Tasks: "review configuration"): every host's
configuration files against the copy last approved, by SHA-256. Nothing on a host is changed.

pre: the approved copy of each host (the monitoring store, kind "config")
execute: the checksum of every file in `reviews.configuration.files` on every host (of `roles`)
post: changed / added / removed / unreadable files reported · the hosts whose live files differ proposed for approval
in the UI (the first review proposes every host); an approved host's live checksums become its approved copy, with who
and when (the compliance audit's evidence)
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows._findings import fail_if_unreached, unreached
from flows._review import publish
from flows._routine import Routine
from tasks.hosts import config_checksums
from tasks.monitoring import approve_baselines, approved_baselines
from upkeep.reviews import configreview as cr
from upkeep.routines import CONFIG_REVIEW


@flow(name=CONFIG_REVIEW.flow)
def config_review(environment: str = "development", config: str | None = None, approve: bool = True) -> dict[str, Any]:
    """`approve` false: report only, ask nobody."""
    with Routine(CONFIG_REVIEW, environment, config) as r:
        cfg = r.env.reviews.configuration
        if not cfg.files:
            r.report.notes.append("No configuration files to review: set reviews.configuration.files (absolute paths "
                                  "on the hosts) to compare them with an approved copy.")
            return {"files": 0}
        hosts = sorted({h for role in cfg.roles for h in r.select_hosts(role=role)}) if cfg.roles else r.select_hosts()
        with r.stage("pre"):
            kept = approved_baselines(cr.KIND, hosts)
            approved = {h: cr.parse_items(b.items) for h, b in kept.items() if b is not None}
        with r.stage("execute"):
            result = r.group(config_checksums, hosts, label="checksums", files=list(cfg.files), become=cfg.become)
            gone = unreached(result)
            observed: dict[str, Any] = {**result.returned(), **gone}
        with r.stage("post"):
            changes = cr.config_changes(observed, approved or None)
            proposed = {h: v for h, v in cr.proposal(observed, approved).items()
                        if kept.get(h) is None or tuple(kept[h].items) != v}  # type: ignore[union-attr]
            publish(r, cr.markdown(observed, approved or None), cr.findings(changes),
                    summary=cr.summary(observed, changes, approved or None),
                    tables={"changes": [{"host": c.host, "path": c.path, "change": c.change, "approved": c.approved or "",
                                         "live": c.live or "", "error": c.error} for c in changes]})
            asked = {f"config:{h}": f"{h}: {len(v)} file(s) — " + ("no approved copy yet" if kept.get(h) is None else
                     f"{sum(c.host == h for c in changes)} change(s) since the copy approved by "
                     f"{kept[h].describe()}") for h, v in proposed.items()}  # type: ignore[union-attr]
            for item in r.approve_items(asked, "baselines") if approve and asked else []:
                host = item.split(":", 1)[1]
                approve_baselines(cr.KIND, {host: list(proposed[host])}, r.approver or "unknown", "configuration review")
            fail_if_unreached(gone)
        return {"changes": len(changes), "proposed": sorted(asked)}
