"""Retention over verification status: slots from verified backups, grace for the rest, orphans finished."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from upkeep.backup.manifest import new_backup_id
from upkeep.backup.records import Status
from upkeep.backup.retention import plan
from upkeep.backup.store import BackupRef, Orphan
from upkeep.config.models import RetentionPolicy

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def ref(t: datetime) -> BackupRef:
    return BackupRef(new_backup_id(t), t)


def daily(days: int, hour: int = 2) -> list[BackupRef]:
    """One backup a day at `hour`, the newest today."""
    today = NOW.replace(hour=hour, minute=0)
    return [ref(today - timedelta(days=i)) for i in range(days)]


def test_failed_backup_at_month_end_does_not_take_the_months_slot() -> None:
    """60 daily verified backups and one failed backup late on 31 October: October's slot is its
    newest *verified* backup, and the failed one goes once its grace is over."""
    verified = daily(60)
    failed = ref(datetime(2026, 10, 31, 23, 0, tzinfo=UTC))
    statuses: dict[str, Status] = {r.backup_id: "verified" for r in verified} | {failed.backup_id: "failed"}
    decided = plan([*verified, failed], statuses, RetentionPolicy(last=3, daily=7, weekly=4, monthly=12), NOW)
    october_end = next(r for r in verified if r.created_at == datetime(2026, 10, 31, 2, 0, tzinfo=UTC))
    september_end = next(r for r in verified if r.created_at == datetime(2026, 9, 30, 2, 0, tzinfo=UTC))
    assert decided.keep[october_end.backup_id] == "verified, monthly"
    assert decided.keep[september_end.backup_id] == "verified, monthly"
    assert decided.delete[failed.backup_id] == "failed verification, past its grace of 7 days"
    assert all(statuses[b] == "verified" for b in decided.keep)
    assert set(decided.keep) | set(decided.delete) == set(statuses) and not set(decided.keep) & set(decided.delete)
    assert f"delete backup {failed.backup_id}: failed verification, past its grace of 7 days" in decided.lines()


def test_a_run_of_failed_verifications_never_deletes_the_verified_backups() -> None:
    """Ten days of failed verifications: the slots are not filled with them; the newest verified
    backup and the verified ones of the slots stay; failed ones within the grace stay too."""
    backups = daily(40)
    statuses: dict[str, Status] = {r.backup_id: ("failed" if i < 10 else "verified") for i, r in enumerate(backups)}
    policy = RetentionPolicy(last=1, daily=3, weekly=0, monthly=0)
    decided = plan(backups, statuses, policy, NOW)
    newest_verified = backups[10]
    assert decided.keep[newest_verified.backup_id] == "verified, last 1"
    assert {b for b in decided.keep if statuses[b] == "verified"} == {r.backup_id for r in backups[10:13]}
    # failed: the 3 days of the grace (daily = 3) stay, older ones go
    assert {b for b in decided.keep if statuses[b] == "failed"} == {r.backup_id for r in backups[:3]}
    assert decided.keep[backups[0].backup_id].startswith("failed verification, grace until 2026-11-25 02:00Z")
    assert {r.backup_id for r in backups[3:10]} <= set(decided.delete)


def test_the_newest_verified_backup_is_kept_even_when_old() -> None:
    old = ref(NOW - timedelta(days=400))
    newer = [ref(NOW - timedelta(days=i)) for i in range(1, 30)]
    statuses: dict[str, Status] = {old.backup_id: "verified"} | {r.backup_id: "unverified" for r in newer}
    decided = plan([old, *newer], statuses, RetentionPolicy(last=1, daily=1, weekly=0, monthly=0), NOW, grace=timedelta(days=2))
    assert old.backup_id in decided.keep
    assert set(decided.keep) == {old.backup_id, newer[0].backup_id}  # newer[0] is a day old: within the 2-day grace
    assert decided.delete[newer[1].backup_id] == "not verified (no thorough passing run), past its grace of 2 days"


def test_backups_without_a_status_are_unverified_and_none_is_verified() -> None:
    backups = daily(10)
    decided = plan(backups, {}, RetentionPolicy(last=3, daily=4, weekly=0, monthly=0), NOW)
    assert set(decided.keep) == {r.backup_id for r in backups[:4]}  # the 4-day grace, no slot
    assert set(decided.delete) == {r.backup_id for r in backups[4:]}


def test_orphans_past_their_grace_are_planned_for_deletion() -> None:
    stale = Orphan("20261119T020000Z-aaaa", 7, NOW - timedelta(days=2))
    in_progress = Orphan("20261122T055000Z-bbbb", 3, NOW - timedelta(minutes=2))
    written_yesterday = Orphan("20261121T020000Z-cccc", 4, NOW - timedelta(hours=23))
    decided = plan([], {}, RetentionPolicy(), NOW, orphans=[stale, in_progress, written_yesterday])
    assert decided.orphans == {stale.backup_id: "7 objects without a manifest, newest written 2026-11-20 06:00Z"}
    assert decided.lines()[0] == (f"delete orphan {stale.backup_id}: "
                                  "7 objects without a manifest, newest written 2026-11-20 06:00Z")
    assert plan([], {}, RetentionPolicy(), NOW).lines() == ["delete nothing", "keep nothing"]


def test_the_grace_of_unverified_backups_is_configurable() -> None:
    failed = ref(NOW - timedelta(days=10))
    statuses: dict[str, Status] = {failed.backup_id: "failed"}
    assert failed.backup_id in plan([failed], statuses, RetentionPolicy(daily=7), NOW).delete
    kept = plan([failed], statuses, RetentionPolicy(daily=7, unverified_days=14), NOW).keep[failed.backup_id]
    assert kept.startswith("failed verification, grace until ")

