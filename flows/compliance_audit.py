"""The quarterly compliance audit (the Event Manager guide's schedule: compliance_audit): an evidence pack an auditor
can check — each control mapped to its evidence, the durable run records in S3 (routine, Prefect run id, times, outcome,
report checksum) and the objects they cite, so the evidence outlives the Prefect database's retention. Read-only.

pre: the run records of the routines the controls cite (S3) · the open security findings and the approved access
reviews (the monitoring store) · the verified backups' manifests as they are stored now
execute: every control judged: backups verified, DR test within its RTO, patches within `security.patch_sla`,
certificates valid, access reviewed and approved, audit findings handled or waived — Ready, Needs renewal, Failing
post: the manifest (JSON) signed with the environment's manifest key, its signature and the readable report stored in
S3; the report and a table of the controls on the run's page; a Failing control notifies
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import flow

from flows._review import publish
from flows._routine import Routine
from tasks.monitoring import baselines_of, open_findings
from tasks.review_store import evidence_objects, evidence_records, store_pack
from upkeep.reviews import compliance, evidence
from upkeep.routines import (
    CERTIFICATES,
    COMPLIANCE_AUDIT,
    DR_TEST,
    SECURITY_AUDIT,
    SECURITY_CHECK,
    SECURITY_PATCHES,
    SECURITY_REVIEW,
    VERIFY_BACKUP,
)

CITED = [VERIFY_BACKUP.id, DR_TEST.id, SECURITY_PATCHES.id, CERTIFICATES.id, SECURITY_REVIEW.id, SECURITY_AUDIT.id]
LOOKBACK = timedelta(days=2 * 92 + 7)  # twice the longest period (a quarter): older evidence is Failing anyway


@flow(name=COMPLIANCE_AUDIT.flow)
def compliance_audit(environment: str = "development", config: str | None = None) -> dict[str, Any]:
    with Routine(COMPLIANCE_AUDIT, environment, config) as r:
        now = datetime.now(UTC)
        with r.stage("pre"):
            stored = evidence_records(CITED, now - LOOKBACK)
            manifests = sorted({(f["manifest_bucket"], f["manifest_key"]) for runs in stored.values() for x in runs
                                if {"manifest_bucket", "manifest_key"} <= set(f := x["record"].get("facts", {}))})
            heads = evidence_objects(manifests) if manifests else {}
            found = open_findings([SECURITY_CHECK.id, SECURITY_AUDIT.id, CERTIFICATES.id])
            approved = baselines_of("access", r.select_hosts())
        with r.stage("execute"):
            inputs = evidence.ComplianceInputs(
                environment=r.environment, now=now,
                records={rt: [evidence.EvidenceRecord(x["record"], x["bucket"], x["key"], x["sha256"], x["size"])
                              for x in runs] for rt, runs in stored.items()},
                objects=[evidence.EvidenceObject(b, k, h["sha256"], h["size"], "backup manifest")
                         for b, k in manifests if (h := heads.get(f"{b}/{k}")) is not None],
                findings=found, baselines=approved, patch_sla=r.env.security.patch_sla,
                rto_target=r.env.dr.rto_target if r.env.dr is not None else None)
            results = compliance.evaluate(inputs)
        with r.stage("post"):
            report = compliance.markdown(results, inputs)
            where = r.env.s3.records_location() if r.env.s3 is not None else None
            pack = store_pack(evidence.pack_keys(where.prefix if where else "", r.environment, now),
                              evidence.manifest_bytes(evidence.manifest(inputs, results, now)), report)
            r.report.notes += [f"Evidence pack: {v}" for v in pack.values()]
            publish(r, report + "\n## The pack\n\n" + "\n".join(f"- `{v}`" for v in pack.values()),
                    compliance.findings(results), summary=compliance.summary(results),
                    tables={"controls": [{"control": x.control.id, "status": x.status, "reason": x.reason,
                                          "renew_by": x.renew_by.date().isoformat() if x.renew_by else "",
                                          "evidence": "; ".join(e.describe() for e in x.evidence)} for x in results]})
        return {"controls": {x.control.id: x.status for x in results}, "pack": pack}
