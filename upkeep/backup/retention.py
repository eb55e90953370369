"""Which backups to keep: grandfather-father-son over verified backups (pure)."""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Hashable, Sequence

from upkeep.backup.store import BackupRef
from upkeep.config.models import RetentionPolicy


def _newest_per(refs: Sequence[BackupRef], bucket: Callable[[datetime], Hashable], n: int) -> set[str]:
    seen: dict[Hashable, str] = {}
    for ref in sorted(refs, key=lambda r: r.created_at, reverse=True):
        b = bucket(ref.created_at)
        if b not in seen:
            if len(seen) == n:
                break
            seen[b] = ref.backup_id
    return set(seen.values())


def to_keep(refs: Sequence[BackupRef], policy: RetentionPolicy) -> set[str]:
    """The newest backup of each of the last `daily` days, `weekly` ISO weeks, `monthly` months
    (like restic's --keep-daily/--keep-weekly/--keep-monthly), and the `last` most recent."""
    newest_first = sorted(refs, key=lambda r: r.created_at, reverse=True)
    keep = {r.backup_id for r in newest_first[: policy.last]}
    keep |= _newest_per(refs, lambda t: t.date(), policy.daily)
    keep |= _newest_per(refs, lambda t: t.isocalendar()[:2], policy.weekly)
    keep |= _newest_per(refs, lambda t: (t.year, t.month), policy.monthly)
    return keep


def to_delete(refs: Sequence[BackupRef], policy: RetentionPolicy) -> list[str]:
    keep = to_keep(refs, policy)
    return sorted(r.backup_id for r in refs if r.backup_id not in keep)
