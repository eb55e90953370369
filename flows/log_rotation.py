"""Rotate, compress and archive the application's logs (the guide's Log Rotation: daily or over
100M, compressed, 30 kept; archived to S3 for 90 days)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from prefect import flow

from flows._routine import Routine
from flows._slots import hold
from tasks.logs import HostRotation, rotate_host_logs
from tasks.s3 import ensure_log_retention, logs_past_retention
from upkeep.errors import RotationBusy
from upkeep.humanize import duration, size
from upkeep.rotation.targets import hosts_with_logs
from upkeep.routines import LOG_ROTATION

WAIT = timedelta(minutes=30)


@flow(name=LOG_ROTATION.flow)
def log_rotation(environment: str = "development", config: str | None = None, hosts: list[str] | None = None,
                 dry_run: bool = False, force: bool = False) -> dict[str, str]:
    """pre: the archive bucket and its lifecycle rule · execute: every host's log files rotated,
    compressed, archived and pruned · post: archives the store failed to expire, notice on errors."""
    with Routine(LOG_ROTATION, environment, config, dry_run=dry_run) as r:
        targets = [h for h in r.select_hosts(hosts) if h in hosts_with_logs(r.env)]
        with r.stage("pre"):
            r.report.notes.append(ensure_log_retention(dry_run))
        # one rotation per environment at a time: two on one log would race for its file names
        with r.stage("execute"), hold(f"upkeep-log-rotation-{environment}", WAIT) as got:
            if not got:
                raise RotationBusy(f"another log rotation of {environment} kept running for {duration(WAIT)}: nothing "
                                   "rotated; the next run does it")
            try:
                result = r.fan_out(rotate_host_logs, targets, dry_run=dry_run, force=force)
            except Exception as exc:
                r.notify(f"log rotation failed on some hosts (files stay on them, the next run resumes): {exc}", "warning")
                raise
        with r.stage("post"):
            late = [] if dry_run else logs_past_retention()
            if late:
                r.report.notes.append(f"{len(late)} archived log(s) are past the retention and were not expired by the "
                                      f"store ({size(sum(o['size'] for o in late))}); check the bucket's lifecycle processing")
        rotations = result.returned()
        r.report.notes.append(_summary(rotations.values()))
        return {h: v.describe() for h, v in rotations.items()}


def _summary(rotations: Iterable[HostRotation]) -> str:
    """The run in one sentence, with sizes and line counts."""
    logs = [o for h in rotations for o in h.logs]
    rotated = sum(len(o.rotated) for o in logs)
    raw, packed = sum(o.bytes_raw for o in logs), sum(o.bytes_compressed for o in logs)
    lines = sum(o.lines for o in logs)
    return (f"{rotated} log file(s) rotated on {len({o.host for o in logs if o.rotated})} host(s); "
            f"{size(raw)} compressed ({lines:,} lines), {sum(len(o.archived) for o in logs)} archived ({size(packed)}), "
            f"{sum(len(o.deleted) for o in logs)} beyond retention deleted")
