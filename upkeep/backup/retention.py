"""Which backups to keep (pure): grandfather-father-son over verified backups, a grace period for
the others, and orphans finished.

- The keep-slots (the `last` most recent, the newest of each of the last `daily` days, `weekly`
  ISO weeks and `monthly` months; like restic's --keep-last/--keep-daily/…) are filled from
  verified backups only (upkeep.backup.records: a run that read every object and restored the
  backup passed, and none failed since). A run of failed verifications never pushes a verified
  backup out of its slot.
- The newest verified backup is never deleted.
- A backup that failed verification, or was never (thoroughly) verified, is kept for a grace
  period from its creation (`unverified_days`, by default `daily` days: time to verify it again
  or look at it),
  then deleted.
- An orphan (a backup id's objects without a manifest: a backup that failed half-way, or one
  half deleted) is deleted once its newest object is older than ORPHAN_GRACE, so a backup still
  being written is never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from upkeep.backup.records import Status
from upkeep.backup.store import BackupRef, Orphan
from upkeep.config.models import RetentionPolicy

ORPHAN_GRACE = timedelta(days=1)


@dataclass(frozen=True)
class RetentionPlan:
    """Backup id → why, for what is kept, deleted, and the orphans deleted."""

    keep: dict[str, str]
    delete: dict[str, str]
    orphans: dict[str, str]

    def lines(self) -> list[str]:
        """The plan as log lines: every deletion with its reason, then what is kept."""
        out = [f"delete backup {b}: {why}" for b, why in sorted(self.delete.items())]
        out += [f"delete orphan {b}: {why}" for b, why in sorted(self.orphans.items())]
        if not out:
            out.append("delete nothing")
        out.append("keep " + (", ".join(f"{b} ({why})" for b, why in sorted(self.keep.items())) or "nothing"))
        return out


def _span(d: timedelta) -> str:
    return f"{d.days} days" if d == timedelta(days=d.days) else str(d)


def _newest_per(refs: Sequence[BackupRef], bucket: Callable[[datetime], Hashable], n: int) -> set[str]:
    seen: dict[Hashable, str] = {}
    for ref in sorted(refs, key=lambda r: r.created_at, reverse=True):
        b = bucket(ref.created_at)
        if b not in seen:
            if len(seen) == n:
                break
            seen[b] = ref.backup_id
    return set(seen.values())


def slots(refs: Sequence[BackupRef], policy: RetentionPolicy) -> dict[str, str]:
    """Backup id → the first keep-slot it fills (last, daily, weekly, monthly), over `refs` as given."""
    newest_first = sorted(refs, key=lambda r: r.created_at, reverse=True)
    out = {r.backup_id: f"last {policy.last}" for r in newest_first[: policy.last]}
    for name, bucket, n in (("daily", lambda t: t.date(), policy.daily),
                            ("weekly", lambda t: t.isocalendar()[:2], policy.weekly),
                            ("monthly", lambda t: (t.year, t.month), policy.monthly)):
        for backup_id in sorted(_newest_per(refs, bucket, n)):
            out.setdefault(backup_id, name)
    return out


def to_keep(refs: Sequence[BackupRef], policy: RetentionPolicy) -> set[str]:
    """The backups of `refs` that fill a keep-slot (callers pass verified backups only)."""
    return set(slots(refs, policy))


def plan(refs: Sequence[BackupRef], statuses: Mapping[str, Status], policy: RetentionPolicy, now: datetime, *,
         orphans: Sequence[Orphan] = (), grace: timedelta | None = None,
         orphan_grace: timedelta = ORPHAN_GRACE) -> RetentionPlan:
    """The retention plan at `now` (module docstring). A backup without a status is unverified;
    `grace` defaults to `policy.unverified_days`, else `policy.daily`, days."""
    grace = timedelta(days=policy.unverified_days or policy.daily) if grace is None else grace
    verified = [r for r in refs if statuses.get(r.backup_id, "unverified") == "verified"]
    keep = {b: f"verified, {slot}" for b, slot in slots(verified, policy).items()}
    if verified:
        keep.setdefault(max(verified, key=lambda r: r.created_at).backup_id, "newest verified")
    delete: dict[str, str] = {}
    for ref in refs:
        state = statuses.get(ref.backup_id, "unverified")
        if ref.backup_id in keep:
            continue
        if state == "verified":
            delete[ref.backup_id] = "verified, in no keep-slot"
            continue
        what = "failed verification" if state == "failed" else "not verified (no thorough passing run)"
        until = ref.created_at + grace
        if now < until:
            keep[ref.backup_id] = f"{what}, grace until {until:%Y-%m-%d %H:%M}Z"
        else:
            delete[ref.backup_id] = f"{what}, past its grace of {_span(grace)}"
    done = {o.backup_id: f"{o.objects} objects without a manifest, newest written {o.last_modified:%Y-%m-%d %H:%M}Z"
            for o in orphans if o.last_modified <= now - orphan_grace}
    return RetentionPlan(keep, delete, done)
