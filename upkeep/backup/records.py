"""Verification records: what a verification run found and how thoroughly it looked (pure).

Records are kept beside the backups, `_verifications/<backup id>/<verified_at>.json`, one per
run, never changed. Each record carries its mode: `{"sample": share of objects read,
"test_restore": whether a test restore ran}`.

A backup is *verified* when a thorough run passed — every object read (`sample` 1) and a test
restore done — and no run failed since. A failure, however little it read, outweighs every earlier
pass; a later sampled pass, or one without a test restore, neither verifies a backup nor undoes the
thorough pass before it (it read too little to say more). No thorough pass and no failure:
"unverified".

Records written before the mode was recorded (no `mode` field) come from Upkeep's verification
before this field existed, which read every object and restored the backup by default: a passing
one counts as thorough, so upgrading never turns the backups verified so far into unverified ones
(which retention would delete after their grace period).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["verified", "failed", "unverified"]

TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # sorts as text in time order: the record's object name


def new_record(backup_id: str, ok: bool, *, sample: float, test_restore: bool, at: datetime | None = None,
               summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A record of one verification run, its mode included."""
    at = at or datetime.now(UTC)
    return {"backup_id": backup_id, "ok": ok, "verified_at": at.astimezone(UTC).strftime(TIME_FORMAT),
            "mode": {"sample": float(sample), "test_restore": bool(test_restore)}, **(summary or {})}


def thorough(record: Mapping[str, Any]) -> bool:
    """Did the run read every object and restore the backup? A record without a mode (written before
    modes were recorded) is taken as the thorough run it was by default."""
    mode = record.get("mode")
    if mode is None:
        return True
    if not isinstance(mode, Mapping):
        return False
    sample = mode.get("sample")
    return isinstance(sample, (int, float)) and not isinstance(sample, bool) and sample >= 1 and mode.get("test_restore") is True


def _at(record: Mapping[str, Any]) -> str:
    return str(record.get("verified_at", ""))


def newest(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return max(records, key=_at, default=None)


def verdict(record: Mapping[str, Any]) -> Status | None:
    """What one record settles when the records are read newest first: a failure "failed", a thorough
    pass "verified", a lighter pass nothing (read on)."""
    if record.get("ok") is not True:
        return "failed"
    return "verified" if thorough(record) else None


def status(records: Iterable[Mapping[str, Any]]) -> Status:
    """`failed` when a run failed after the last thorough pass (or with none), `verified` when a thorough
    run passed and none failed since, else `unverified` (no record, or sampled passes only)."""
    for record in sorted(records, key=_at, reverse=True):
        settled = verdict(record)
        if settled is not None:
            return settled
    return "unverified"
