"""Backup verification (the guide's Backup Verification): integrity, completeness, test restore,
freshness — on the newest backup or any backup id. It never changes the backup it checks."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prefect import flow

from flows._routine import Routine
from tasks.mongo import test_restore
from tasks.s3 import check_integrity, list_backups, load_manifest, manifest_object, record_verification
from upkeep.backup.verify import completeness, freshness
from upkeep.errors import BackupVerificationFailed
from upkeep.humanize import count, duration
from upkeep.routines import VERIFY_BACKUP


@flow(name=VERIFY_BACKUP.flow)
def verify_backup(environment: str = "development", config: str | None = None, backup_id: str | None = None,
                  sample: float | None = None, restore: bool = True) -> dict[str, Any]:
    """`sample` reads only that share of the objects (default: the inventory's verify_sample). The
    record of the run keeps its mode: only a run that read every object and restored the backup
    makes it "verified" (upkeep.backup.records)."""
    with Routine(VERIFY_BACKUP, environment, config) as r:
        findings: list[dict[str, Any]] = []
        share = sample if sample is not None else r.env.backup.verify_sample
        with r.stage("pre"):
            refs = list_backups()
            fresh = freshness(refs, datetime.now(UTC), r.env.backup.max_age)
            findings.append(vars(fresh))
            backup_id = backup_id or (refs[-1].backup_id if refs else None)
            manifest, manifest_findings = load_manifest(backup_id) if backup_id else (None, [])
            findings += manifest_findings
            if manifest is not None and backup_id is not None:  # what the run record cites (the compliance audit)
                r.report.facts.update({"backup": backup_id, **manifest_object(backup_id)})
        restored: dict[str, Any] = {}
        with r.stage("execute"):
            if manifest is not None:
                assert backup_id is not None  # the manifest was loaded by its id
                findings += check_integrity(backup_id, manifest, share)
                required = r.env.backup.required_collections
                files = [(c.host, c.path) for c in r.env.backup.config_files]
                findings += [vars(f) for f in completeness(manifest, required, files)]
                if restore and all(f["ok"] for f in findings if f["check"] in ("manifest", "integrity")):
                    restored = test_restore(backup_id)
                    findings += restored["findings"]
                elif restore:
                    r.report.notes.append("test restore skipped: the backup's objects failed the integrity check")
        with r.stage("post"):
            bad = [f for f in findings if not f["ok"]]
            for f in findings:
                r.report.add("execute", f["check"], "done" if f["ok"] else "failed", host=f["subject"], detail=f["message"])
            if restored:
                r.report.notes.append(f"test restore: {count(restored['documents'], 'document')} "
                                      f"in {duration(restored['seconds'])} "
                                      f"({restored['docs_per_second']:,.0f} documents/s); scratch database dropped")
            summary: dict[str, Any] = {"findings": findings, "restore": {k: v for k, v in restored.items() if k != "findings"}}
            if backup_id:
                record_verification(backup_id, not bad, summary, share=share, test_restore=bool(restored))
                if bad or (share >= 1.0 and restored):  # a sampled pass that found nothing neither verifies nor fails
                    r.report.facts["verified"] = not bad
                r.report.facts["share"] = share
            if bad:
                text = "; ".join(f"{f['subject']}: {f['message']}" for f in bad[:5])
                r.notify(f"backup {backup_id or '-'} FAILED verification: {text}", "critical")
                raise BackupVerificationFailed(f"{len(bad)} check(s) failed: {text}")
        return {"backup_id": backup_id, "ok": True, "checks": len(findings), **summary["restore"]}
