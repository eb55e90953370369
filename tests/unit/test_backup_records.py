"""Verification records: a backup is verified when a thorough run passed and none failed since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from upkeep.backup.records import new_record, status, thorough

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def rec(ok: bool, hours: int = 0, sample: float = 1.0, test_restore: bool = True) -> dict[str, Any]:
    return new_record("b", ok, sample=sample, test_restore=test_restore, at=T0 + timedelta(hours=hours))


def test_a_record_keeps_its_mode_and_summary() -> None:
    r = new_record("b", True, sample=0.25, test_restore=False, at=T0, summary={"findings": [], "restore": {}})
    assert r == {"backup_id": "b", "ok": True, "verified_at": "20261122T120000.000000Z",
                 "mode": {"sample": 0.25, "test_restore": False}, "findings": [], "restore": {}}
    assert thorough(rec(True)) and not thorough(rec(True, sample=0.25)) and not thorough(rec(True, test_restore=False))


def test_a_failure_outweighs_every_earlier_pass() -> None:
    assert status([]) == "unverified"
    assert status([rec(True)]) == "verified"
    # an old pass does not outweigh a newer failure, in whatever order the records come
    assert status([rec(True, 0), rec(False, 1)]) == "failed"
    assert status([rec(False, 1), rec(True, 0)]) == "failed"
    assert status([rec(False, 0), rec(True, 1)]) == "verified"


def test_sampled_runs_and_runs_without_test_restore_neither_verify_nor_undo_a_thorough_pass() -> None:
    assert status([rec(True, 0, sample=0.1)]) == "unverified"
    assert status([rec(True, 0, test_restore=False)]) == "unverified"
    assert status([rec(True, 0), rec(True, 1, sample=0.1)]) == "verified"  # the daily sampled pass keeps it verified
    assert status([rec(True, 0), rec(True, 1, test_restore=False)]) == "verified"
    assert status([rec(False, 0), rec(True, 1, sample=0.1)]) == "failed"  # a sampled pass does not clear a failure
    assert status([rec(True, 0), rec(False, 1, sample=0.1), rec(True, 2, sample=0.1)]) == "failed"
    assert status([rec(False, 0, sample=0.1)]) == "failed"  # a failure is a failure, however little was read


def test_records_written_before_the_mode_was_recorded() -> None:
    """Readable; a pass counts as the thorough run it was by default, so upgrading keeps backups verified."""
    legacy_ok = {"backup_id": "b", "ok": True, "verified_at": "20261101T120000.000000Z", "findings": [],
                 "restore": {"documents": 3000, "seconds": 1.2, "docs_per_second": 2500.0}}
    legacy_failed = {**legacy_ok, "ok": False, "verified_at": "20261102T120000.000000Z"}
    assert thorough(legacy_ok)
    assert status([legacy_ok]) == "verified"
    assert status([legacy_ok, legacy_failed]) == "failed"
    assert status([legacy_failed, rec(True)]) == "verified"  # a thorough run since counts
    assert not thorough({**legacy_ok, "mode": {"sample": True, "test_restore": True}})  # a malformed share is none
    assert not thorough({**legacy_ok, "mode": "full"})
