"""The compliance evidence pack: every control's statuses on seeded run records, findings and baselines; the signed
manifest; the pack's keys; the report for people (pure)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from upkeep.backup.manifest import sign
from upkeep.reviews.compliance import evaluate, findings, markdown, summary
from upkeep.reviews.evidence import (
    ComplianceInputs,
    ControlResult,
    EvidenceObject,
    EvidenceRecord,
    manifest,
    manifest_bytes,
    pack_keys,
    verify_pack,
)
from upkeep.runrecords import record_key

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ENV = "production"
MANIFEST_KEY = "production/backups/20261206T020000Z-3f9a/manifest.json"
MANIFEST_SHA = hashlib.sha256(b"manifest").hexdigest()
BACKUP_FACTS = {"backup": "20261206T020000Z-3f9a", "manifest_key": MANIFEST_KEY, "manifest_sha256": MANIFEST_SHA,
                "verified": True}
DR_FACTS = {"backup": "20261106T020000Z-aa01", "rto_seconds": 900.0, "rto_target_seconds": 1800.0, "passed": True}
_runs = iter(range(10_000))


def run(routine: str, ago: timedelta, status: str = "completed", facts: dict[str, Any] | None = None,
        dry_run: bool = False) -> EvidenceRecord:
    """A run record as run_record writes it, ended `ago` before NOW, stored where RunRecordStore keeps it."""
    ended = NOW - ago
    record: dict[str, Any] = {
        "routine": routine, "environment": ENV, "flow_run_id": f"{next(_runs):08d}-0f3c-4a1e-9b7d-{routine[:4]}",
        "started_at": (ended - timedelta(minutes=25)).isoformat(timespec="seconds"),
        "ended_at": ended.isoformat(timespec="seconds"), "status": status, "outcome": f"{status}: all steps",
        "dry_run": dry_run, "steps": {"ok": 3}, "report_sha256": hashlib.sha256(routine.encode()).hexdigest(),
        "report_bytes": 2048, **({"facts": facts} if facts is not None else {})}
    return EvidenceRecord.from_body("upkeep-records", record_key("", record), json.dumps(record, sort_keys=True).encode())


def finding(source: str, host: str, key: str, severity: str, first_seen_ago: timedelta, status: str = "persisting",
            scope: str = "security-check") -> dict[str, Any]:
    first = NOW - first_seen_ago
    return {"id": f"{source}:{host}:{key}", "source": source, "host": host, "key": key, "severity": severity,
            "title": f"{source} {key} on {host}", "detail": "", "fix": "", "first_seen": first, "last_seen": NOW,
            "status": status, "waiver": "x*" if status == "waived" else None, "scope": scope}


def fresh(records: dict[str, list[EvidenceRecord]] | None = None, **changes: Any) -> ComplianceInputs:
    """Evidence for every control, all within its period; `records` replaces some routines' records."""
    base = {"verify-backup": [run("verify-backup", timedelta(days=1, hours=6), facts=BACKUP_FACTS),
                              run("verify-backup", timedelta(hours=6), facts=BACKUP_FACTS)],
            "dr-test": [run("dr-test", timedelta(days=30), facts=DR_FACTS)],
            "security-patches": [run("security-patches", timedelta(days=3))],
            "certificates": [run("certificates", timedelta(days=3))],
            "security-review": [run("security-review", timedelta(days=2), facts={"approved": True, "findings": {}})],
            "security-audit": [run("security-audit", timedelta(days=10), facts={"findings": {"open": 2}})]}
    inputs = ComplianceInputs(
        ENV, NOW, {**base, **(records or {})},
        objects=[EvidenceObject("upkeep-backups", MANIFEST_KEY, MANIFEST_SHA, 12_345, "backup manifest")],
        findings=[finding("security-updates", "web-1", "openssl 3.0.2", "high", timedelta(days=2)),
                  finding("tls", "web-1", "api expiry", "medium", timedelta(days=20)),
                  finding("permissions", "web-2", "/opt/x suid", "high", timedelta(days=40), "waived", "security-audit"),
                  finding("sshd", "web-2", "PermitRootLogin", "critical", timedelta(days=1), "new", "security-audit")],
        baselines=[{"kind": "access", "host": "web-1", "approved_by": "alice", "approved_at": NOW - timedelta(days=2)},
                   {"kind": "access", "host": "web-2", "approved_by": "bob", "approved_at": NOW - timedelta(days=9)},
                   {"kind": "firewall", "host": "web-1", "approved_by": "carol", "approved_at": NOW - timedelta(days=99)}])
    return replace(inputs, **changes)


def judged(inputs: ComplianceInputs) -> dict[str, ControlResult]:
    return {r.control.id: r for r in evaluate(inputs)}


def test_fresh_evidence_makes_every_control_ready_with_its_renewal_date() -> None:
    results = judged(fresh())
    assert {k: r.status for k, r in results.items()} == dict.fromkeys(
        ["backups-verified", "dr-test-passed", "patches-within-sla", "certificates-valid", "access-reviewed",
         "audit-findings-handled"], "Ready")
    backups = results["backups-verified"]
    assert backups.evidence_at == NOW - timedelta(hours=6) and backups.renew_by == NOW + timedelta(days=2, hours=-6)
    assert backups.reason == ("backup 20261206T020000Z-3f9a verified by verify-backup on 2026-12-06 06:00 UTC (6 h ago); "
                              "renew by 2026-12-08")
    record, obj = (e.document() for e in backups.evidence)  # the newest run and the manifest it verified
    assert record["kind"] == "run-record" and record["routine"] == "verify-backup" and record["status"] == "completed"
    assert record["bucket"] == "upkeep-records" and record["key"].startswith("production/verify-backup/2026/12/06/")
    assert record["started_at"] == "2026-12-06T05:35:00+00:00" and len(record["sha256"]) == 64 and record["report_sha256"]
    assert obj == {"kind": "s3-object", "what": "backup manifest of 20261206T020000Z-3f9a", "bucket": "upkeep-backups",
                   "key": MANIFEST_KEY, "sha256": MANIFEST_SHA, "size": 12_345}
    dr = results["dr-test-passed"].reason
    assert "restored in 15 min, within its 30 min RTO target, on 2026-11-06 12:00 UTC (30 days ago)" in dr
    access = results["access-reviewed"]
    assert [e.describe() for e in access.evidence[1:]] == [
        "access baseline of web-1, approved by alice on 2026-12-04 12:00 UTC",
        "access baseline of web-2, approved by bob on 2026-11-27 12:00 UTC"]  # the firewall baseline is not cited
    assert "1 waived" in results["audit-findings-handled"].reason
    assert findings(results.values()) == []


def test_evidence_past_its_period_needs_renewal_and_says_since_when_and_what_to_run() -> None:
    stale = fresh({"verify-backup": [run("verify-backup", timedelta(days=3), facts=BACKUP_FACTS)],
                   "dr-test": [run("dr-test", timedelta(days=100), facts=DR_FACTS)],
                   "security-patches": [run("security-patches", timedelta(days=10))],
                   "certificates": [run("certificates", timedelta(days=10))],
                   "security-review": [run("security-review", timedelta(days=10), facts={"approved": True})],
                   "security-audit": [run("security-audit", timedelta(days=40))]})
    results = judged(stale)
    assert {r.status for r in results.values()} == {"Needs renewal"}
    dr = results["dr-test-passed"]
    assert dr.reason == ("the DR test of backup 20261106T020000Z-aa01 restored in 15 min, within its 30 min RTO target, "
                         "on 2026-08-28 12:00 UTC, but that is 100 days old, past its 92-day period since 2026-11-28; "
                         "run dr-test-production to renew")
    assert "run verify-backup-production to renew" in results["backups-verified"].reason
    assert "past its 2-day period since 2026-12-05" in results["backups-verified"].reason
    assert "run security-audit-production" in results["audit-findings-handled"].reason
    assert {f.level for f in findings(results.values())} == {"warning"}


def test_evidence_older_than_twice_its_period_fails_and_reads_as_the_guide_says() -> None:
    results = evaluate(fresh({"dr-test": [run("dr-test", timedelta(days=188), facts=DR_FACTS)],
                              "security-audit": [run("security-audit", timedelta(days=40))]}))
    assert summary(results) == ("4 of 6 controls Ready, 1 Needs renewal, 1 Failing: dr-test-passed — no DR test within "
                                "92 days (the last, 2026-06-01, is 188 days old); run dr-test-production.")
    dr = next(r for r in results if r.control.id == "dr-test-passed")
    assert dr.renew_by == datetime(2026, 9, 1, 12, tzinfo=UTC)
    assert dr.describe().startswith("dr-test-passed: Failing — no DR test within 92 days")


@pytest.mark.parametrize(("records", "expected"), [
    ([], "no verified backup on record; run verify-backup-production"),
    ([run("verify-backup", timedelta(hours=30), facts=BACKUP_FACTS), run("verify-backup", timedelta(hours=2), "failed")],
     "the last verify-backup run, 2026-12-06 10:00 UTC, failed (failed: all steps); fix its cause and run "
     "verify-backup-production"),
    ([run("verify-backup", timedelta(hours=2), facts={})],
     "the verify-backup record of 2026-12-06 has no facts.verified (written before that fact was recorded); run "
     "verify-backup-production for a record that has it"),
    ([run("verify-backup", timedelta(hours=2), facts={**BACKUP_FACTS, "verified": False})],
     "backup 20261206T020000Z-3f9a did not pass verification (verify-backup, 2026-12-06 10:00 UTC)"),
    ([run("verify-backup", timedelta(hours=2), facts={**BACKUP_FACTS, "manifest_sha256": "0" * 64})],
     "it changed after verification"),
])
def test_backups_fail_without_a_passing_verification(records: list[EvidenceRecord], expected: str) -> None:
    result = judged(fresh({"verify-backup": records}))["backups-verified"]
    assert result.status == "Failing" and expected in result.reason


def test_a_backup_run_that_verified_counts_and_dry_or_skipped_runs_do_not() -> None:
    records = {"verify-backup": [run("verify-backup", timedelta(hours=1), "skipped"),
                                 run("verify-backup", timedelta(minutes=30), facts={"verified": False}, dry_run=True)],
               "backup": [run("backup", timedelta(hours=3), facts=BACKUP_FACTS), run("backup", timedelta(hours=1))]}
    result = judged(fresh(records))["backups-verified"]
    assert result.status == "Ready" and result.reason.endswith("verified by backup on 2026-12-06 09:00 UTC (3 h ago); "
                                                                "renew by 2026-12-08")


def test_a_manifest_not_among_the_objects_is_cited_from_the_facts() -> None:
    result = judged(fresh(objects=[]))["backups-verified"]
    assert result.status == "Ready" and result.evidence[1].location == MANIFEST_KEY
    assert result.evidence[1].describe() == (f"backup manifest of 20261206T020000Z-3f9a {MANIFEST_KEY} · "
                                             f"sha256 {MANIFEST_SHA[:8]}…")


@pytest.mark.parametrize(("facts", "rto_target", "expected"), [
    ({**DR_FACTS, "rto_seconds": 2700.0}, None, "took 45 min to recover, over its 30 min RTO target"),
    ({"rto_seconds": 900.0}, timedelta(minutes=10), "took 15 min to recover, over its 10 min RTO target"),
    ({"rto_seconds": 900.0}, None, "has no facts.rto_target_seconds and no rto_target is configured; set dr.rto_target"),
    ({**DR_FACTS, "passed": False}, None, "did not pass (an RPO or read check failed"),
    ({"backup": "b"}, timedelta(minutes=30), "has no facts.rto_seconds"),
])
def test_dr_test_fails_over_its_rto_or_without_its_facts(facts: dict[str, Any], rto_target: timedelta | None,
                                                          expected: str) -> None:
    result = judged(fresh({"dr-test": [run("dr-test", timedelta(days=5), facts=facts)]}, rto_target=rto_target))
    assert result["dr-test-passed"].status == "Failing" and expected in result["dr-test-passed"].reason


def test_the_configured_rto_target_serves_when_the_record_has_none() -> None:
    inputs = fresh({"dr-test": [run("dr-test", timedelta(days=5), facts={"rto_seconds": 900.0})]},
                   rto_target=timedelta(minutes=20))
    assert judged(inputs)["dr-test-passed"].status == "Ready"


def test_an_open_security_update_older_than_the_sla_fails_the_patch_control() -> None:
    old = [finding("security-updates", "web-2", "libssl3 3.0.13", "high", timedelta(days=12)),
           finding("security-updates", "web-2", "libssl3 3.0.13", "high", timedelta(days=9), scope="security-audit"),
           finding("security-updates", "web-3", "curl 8.5", "high", timedelta(days=30), "waived"),
           finding("security-updates", "web-3", "zlib 1.3", "high", timedelta(days=30), "fixed")]
    inputs = fresh(findings=[*fresh().findings, *old])
    result = judged(inputs)["patches-within-sla"]
    assert result.status == "Failing"
    assert result.reason == ("1 security update pending longer than the 7-day patch SLA: web-2 libssl3 3.0.13 (12 days); "
                             "run security-patches-production")  # once, by its earliest first seen
    assert judged(replace(inputs, patch_sla=timedelta(days=14)))["patches-within-sla"].status == "Ready"
    stale = judged(fresh({"security-patches": [run("security-patches", timedelta(days=10))]}, findings=old))
    assert stale["patches-within-sla"].reason.endswith("; the last security-patches run, 2026-11-26, is 10 days old "
                                                       "(period 8 days): run security-patches-production")


def test_certificates_fail_on_a_missing_run_or_a_severe_open_tls_finding() -> None:
    missing = judged(fresh({"certificates": []}))["certificates-valid"]
    assert missing.status == "Failing" and missing.reason == "no certificates run on record; run certificates-production"
    assert missing.evidence_at is None and missing.renew_by is None
    tls = finding("tls", "web-1", "api expired", "critical", timedelta(days=1), "new", "certificates")
    bad = judged(fresh(findings=[tls]))["certificates-valid"]
    assert bad.status == "Failing" and "1 TLS finding open at high or critical: web-1 tls api expired on web-1" in bad.reason


@pytest.mark.parametrize(("facts", "baselines", "expected"), [
    ({"approved": False}, None, "the access review of 2026-12-05 was not approved; approve it in the Prefect UI"),
    ({"findings": {}}, None, "has no facts.approved"),
    ({"approved": True}, [], "no approved access baseline on record; run security-review-production"),
])
def test_access_review_fails_unapproved_or_without_baselines(facts: dict[str, Any], baselines: list[dict[str, Any]] | None,
                                                             expected: str) -> None:
    changes = {} if baselines is None else {"baselines": baselines}
    result = judged(fresh({"security-review": [run("security-review", timedelta(days=1), facts=facts)]},
                          **changes))["access-reviewed"]
    assert result.status == "Failing" and expected in result.reason


def test_audit_findings_must_be_waived_or_within_the_sla() -> None:
    late = finding("sshd", "web-3", "PasswordAuthentication", "high", timedelta(days=20), scope="security-audit")
    other_scope = finding("sshd", "web-4", "X", "critical", timedelta(days=20), scope="security-check")
    result = judged(fresh(findings=[*fresh().findings, late, other_scope]))["audit-findings-handled"]
    assert result.status == "Failing"
    assert result.reason.startswith("1 high or critical audit finding open longer than the 7-day SLA and not waived: "
                                    "web-3 sshd PasswordAuthentication on web-3 (20 days); fix them or waive them")
    waived = {**late, "status": "waived"}
    assert judged(fresh(findings=[waived, other_scope]))["audit-findings-handled"].status == "Ready"
    failed = judged(fresh({"security-audit": [run("security-audit", timedelta(days=1), "failed")]}))
    assert failed["audit-findings-handled"].status == "Failing"


def test_the_manifest_signature_verifies_and_fails_after_one_byte_or_with_another_key() -> None:
    inputs = fresh({"dr-test": []})
    results = evaluate(inputs)
    m = manifest(inputs, results, NOW)
    data = manifest_bytes(m)
    assert data == manifest_bytes(json.loads(data)) and b" " not in data.split(b'"reason"')[0][:20]
    assert m["period"] == {"quarter": "2026-Q4", "from": "2026-10-01T00:00:00+00:00", "to": "2026-12-06T12:00:00+00:00",
                           "evidence_from": "2026-11-26T12:00:00+00:00", "evidence_to": "2026-12-06T06:00:00+00:00"}
    assert m["summary"] == {"Ready": 5, "Needs renewal": 0, "Failing": 1} and len(m["controls"]) == 6
    backups = m["controls"][0]
    assert backups["evidence"][1]["sha256"] == MANIFEST_SHA and backups["renew_by"] == "2026-12-08T06:00:00+00:00"
    key = b"k" * 32
    signature = sign(data, key)
    assert verify_pack(data, signature, key) is None
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 1
    assert verify_pack(bytes(changed), signature, key) == ("compliance pack manifest: signature mismatch: the manifest "
                                                           "was changed after it was written")
    assert verify_pack(data, signature, b"another key") is not None
    assert verify_pack(data, sign(data, None), None) is None and verify_pack(data, sign(data, None), key) is not None
    with pytest.raises(ValueError, match="build it with upkeep.reviews.evidence.manifest"):
        manifest_bytes({"generated_at": NOW})


def test_pack_keys_by_environment_quarter_and_time() -> None:
    assert pack_keys("audit/", ENV, datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "audit/production/compliance/2027-Q1/20270102T030405Z/manifest.json",
        "audit/production/compliance/2027-Q1/20270102T030405Z/manifest.sig",
        "audit/production/compliance/2027-Q1/20270102T030405Z/report.md")


def test_markdown_reads_as_a_sentence_a_table_and_the_evidence() -> None:
    inputs = fresh({"dr-test": [run("dr-test", timedelta(days=188), facts=DR_FACTS)],
                    "security-audit": [run("security-audit", timedelta(days=40))]})
    results = evaluate(inputs)
    text = markdown(results, inputs)
    lines = text.splitlines()
    assert lines[0] == "## Compliance evidence: production, 2026-Q4 (as of 2026-12-06 12:00 UTC)"
    assert lines[2] == summary(results)
    assert "| control | status | evidence date | renew by | evidence |" in lines
    assert any(line.startswith("| dr-test-passed | **Failing** | 2026-06-01 | 2026-09-01 | dr-test run ") for line in lines)
    assert "### audit-findings-handled: Audit findings are handled — Needs renewal" in lines
    assert f"backup manifest of 20261206T020000Z-3f9a s3://upkeep-backups/{MANIFEST_KEY} · 12 KB · sha256 " in text
    record = results[0].evidence[0]
    assert f"- run-record: verify-backup run {record.flow_run_id}, completed 2026-12-06 06:00 UTC (took 25 min); " \
           f"record s3://upkeep-records/{record.key} · " in text
    assert "{" not in text and "datetime(" not in text and "EvidenceItem(" not in text


def test_findings_are_critical_for_failing_and_warnings_for_renewals() -> None:
    results = evaluate(fresh({"dr-test": [], "security-audit": [run("security-audit", timedelta(days=40))]}))
    found = {f.subject: f for f in findings(results)}
    assert {s: f.level for s, f in found.items()} == {"control dr-test-passed": "critical",
                                                       "control audit-findings-handled": "warning"}
    assert found["control dr-test-passed"].title == "no DR test on record; run dr-test-production."
    assert found["control audit-findings-handled"].evidence == "evidence 2026-10-27, renew by 2026-11-28; 1 item cited"


def test_bad_inputs_say_what_and_how_to_fix() -> None:
    with pytest.raises(ValueError, match=r"run record s3://b/k has no ended_at, status: .* pass only run records"):
        EvidenceRecord({"routine": "x", "flow_run_id": "1", "started_at": "2026-01-01T00:00:00+00:00"}, "b", "k", "0", 1)
    with pytest.raises(ValueError, match="is not JSON"):
        EvidenceRecord.from_body("b", "k", b"{not json")
    with pytest.raises(ValueError, match="set security.patch_sla to a positive duration"):
        ComplianceInputs(ENV, NOW, patch_sla=timedelta(0))


def test_a_sampled_pass_is_not_evidence_either_way() -> None:
    """The midday sampled verification (a share of the objects, nothing found) neither verifies a backup nor fails
    the control: the newest full pass decides."""
    sampled = {k: v for k, v in BACKUP_FACTS.items() if k != "verified"} | {"share": 0.1}
    results = evaluate(fresh({"verify-backup": [run("verify-backup", timedelta(hours=20), facts=BACKUP_FACTS),
                                                run("verify-backup", timedelta(hours=2), facts=sampled)]}))
    backups = next(r for r in results if r.control.id == "backups-verified")
    assert backups.status == "Ready", backups.reason
