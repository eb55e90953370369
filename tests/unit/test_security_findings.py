"""The findings schema across runs: new, persisting (since when), fixed; waivers hide until they expire."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from upkeep.security.findings import Finding, FindingRecord, Waiver, reconcile

DAY1 = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
SUID = Finding("permissions", "host1", "/usr/local/bin/helper suid", "high", "new SUID file",
               "/usr/local/bin/helper is SUID root", "chmod u-s /usr/local/bin/helper, or approve the baseline")
CVE = Finding("dpkg-osv", "host1", "openssl CVE-2024-5535", "critical", "openssl 3.0.14-1 is vulnerable")
WW = Finding("permissions", "host2", "/srv/upload world-writable", "medium", "world-writable directory without sticky bit")


def test_a_finding_is_new_then_persists_with_its_first_sighting_then_is_fixed() -> None:
    first = reconcile([], [SUID, CVE], DAY1)
    assert [r.finding.id for r in first.new] == [CVE.id, SUID.id]  # most severe first
    assert first.counts() == {"critical": 1, "high": 1, "medium": 0, "low": 0, "info": 0}
    second = reconcile(first.records(), [SUID, WW], DAY1 + timedelta(days=7))
    assert [r.finding.id for r in second.persisting] == [SUID.id] and second.persisting[0].first_seen == DAY1
    assert [r.finding.id for r in second.new] == [WW.id]
    assert [r.finding.id for r in second.fixed] == [CVE.id] and second.fixed[0].status == "fixed"
    third = reconcile(second.records(), [SUID, WW, CVE], DAY1 + timedelta(days=14))
    assert CVE.id in {r.finding.id for r in third.new}  # came back: new again, first seen now
    assert third.fixed == []  # a fix is reported once


def test_a_waiver_hides_until_it_expires_then_the_finding_returns_and_the_waiver_is_reported() -> None:
    waiver = Waiver("permissions:*:/usr/local/bin/helper *", "vendor tool, replaced in Q1", "ops-bob", date(2026, 12, 10))
    first = reconcile([], [SUID, WW], DAY1, [waiver])
    assert [r.finding.id for r in first.waived] == [SUID.id] and first.waived[0].waiver == waiver.pattern
    assert [r.finding.id for r in first.new] == [WW.id] and first.waivers_in_force == [waiver]
    later = reconcile(first.records(), [SUID, WW], datetime(2026, 12, 11, tzinfo=UTC), [waiver])
    assert later.expired_waivers == [waiver] and later.waived == []
    assert [r.finding.id for r in later.persisting] == [SUID.id, WW.id] and later.persisting[0].first_seen == DAY1


def test_records_round_trip_through_the_store_shape() -> None:
    record = reconcile([], [SUID], DAY1).new[0]
    assert FindingRecord.from_document(record.document()) == record
    assert record.document()["id"] == "permissions:host1:/usr/local/bin/helper suid"
