"""Recovery objectives of a disaster-recovery test (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from upkeep.humanize import duration


@dataclass(frozen=True)
class RecoveryVerdict:
    rto_seconds: float
    rpo_seconds: float
    rto_target: float
    rpo_target: float
    rto_ok: bool
    rpo_ok: bool

    @property
    def ok(self) -> bool:
        return self.rto_ok and self.rpo_ok

    @property
    def lines(self) -> list[str]:
        return [
            f"RTO {duration(self.rto_seconds)} against a target of {duration(self.rto_target)}: "
            f"{'PASS' if self.rto_ok else 'FAIL'}",
            f"RPO {duration(self.rpo_seconds)} (age of the restored data) against a target of {duration(self.rpo_target)}: "
            f"{'PASS' if self.rpo_ok else 'FAIL'}",
        ]


def recovery_verdict(rto_seconds: float, data_age: timedelta, rto_target: timedelta, rpo_target: timedelta) -> RecoveryVerdict:
    rpo = data_age.total_seconds()
    rto_t, rpo_t = rto_target.total_seconds(), rpo_target.total_seconds()
    return RecoveryVerdict(rto_seconds, rpo, rto_t, rpo_t, rto_seconds <= rto_t, rpo <= rpo_t)
