"""Tasks on the hosts' log files and temp directories: rotation (with its S3 archive) and disk hygiene."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.config.render import host_path
from upkeep.errors import HostError, RotationError
from upkeep.humanize import duration
from upkeep.humanize import size as human_size
from upkeep.hygiene import CleanupPlan, list_temp, plan_cleanup, remove_files
from upkeep.rotation import RotationOutcome, rotate_log
from upkeep.rotation.targets import log_targets


@dataclass
class HostRotation:
    """Every log file of one host after a rotation run."""

    host: str
    logs: list[RotationOutcome] = field(default_factory=list)

    def describe(self) -> str:
        """One sentence for the host's row of the report."""
        if all(o.planned for o in self.logs):
            return "; ".join(p for o in self.logs for p in o.planned)
        rotated = sum(len(o.rotated) for o in self.logs)
        raw, packed = sum(o.bytes_raw for o in self.logs), sum(o.bytes_compressed for o in self.logs)
        parts = [f"rotated {rotated} of {len(self.logs)} log file(s)"]
        if raw:
            parts.append(f"{human_size(raw)} compressed")
        archived = sum(len(o.archived) for o in self.logs)
        if archived:
            parts.append(f"{archived} archived ({human_size(packed)})")
        deleted = sum(len(o.deleted) for o in self.logs)
        if deleted:
            parts.append(f"{deleted} beyond retention deleted")
        held = [h for o in self.logs for h in o.held]
        if held:
            parts.append("kept: " + "; ".join(held))
        lost = sum(o.lost_bytes for o in self.logs)
        if lost:
            parts.append(f"copytruncate lost at least {human_size(lost)}")
        return ", ".join(parts)


@step("rotate-logs", run_name="rotate-logs[{host}]")
def rotate_host_logs(host: str, dry_run: bool = False, force: bool = False) -> HostRotation:
    """Rotate, compress, archive and prune every configured log file of one host. Each file is
    done even when another failed; then the host fails with every error (what failed stays on the
    host, and the next run or a retry resumes it)."""
    res = resources()
    logger = get_run_logger()
    config = res.hosts.get_config(host)
    policy = res.env.logs.rotation if res.env.logs else None
    archive = res.log_archive()
    out = HostRotation(host)
    if policy is None:
        return out
    now = datetime.now(UTC)
    for target in log_targets(res.env, config):
        outcome = rotate_log(res.hosts.get(host), target, policy, archive=archive, now=now, dry_run=dry_run, force=force,
                             metadata={"environment": res.environment})
        out.logs.append(outcome)
        for line in outcome.planned:
            logger.info("%s: would %s (dry run)", host, line)
        for base in outcome.rotated:
            logger.info("%s: rotated %s → %s (%s)", host, target.path, base, outcome.reason)
        for name in outcome.compressed:
            logger.info("%s: compressed %s", host, name)
        for key in outcome.archived:
            logger.info("%s: archived s3://%s/%s", host, archive.bucket if archive else "?", key)
        for name in outcome.deleted:
            logger.info("%s: deleted %s (archive read back and matched)" if archive else "%s: deleted %s", host, name)
        for line in [*outcome.held, *outcome.notes]:
            logger.info("%s: %s", host, line)
        for error in outcome.errors:
            logger.error("%s: %s", host, error)
    errors = [e for o in out.logs for e in o.errors]
    if errors:
        raise RotationError(host, "; ".join(errors))
    return out


@dataclass
class HostCleanup:
    host: str
    plans: list[CleanupPlan] = field(default_factory=list)
    removed: int = 0
    dry_run: bool = True

    def describe(self) -> str:
        found = sum(len(p.remove) for p in self.plans)
        size = human_size(sum(p.bytes for p in self.plans))
        refused = sum(len(p.refused) for p in self.plans)
        verb = f"{found} old temp file(s) ({size}) would be removed (dry run)" if self.dry_run and found else \
            f"removed {self.removed} old temp file(s) ({size})" if found else "no old temp files"
        return verb + (f"; {refused} path(s) outside their directory refused" if refused else "")


@step("clean-temp", run_name="clean-temp[{host}]")
def clean_temp_files(host: str, dry_run: bool | None = None) -> HostCleanup:
    """Old files of the host's configured temp directories: the plan logged first, then removed
    where the directory says `delete: true` (and the run is not a dry run)."""
    res = resources()
    logger = get_run_logger()
    config = res.hosts.get_config(host)
    dirs = [d for d in (res.env.logs.temp_dirs if res.env.logs else []) if d.role is None or d.role in config.roles]
    out = HostCleanup(host, dry_run=True)
    now = datetime.now(UTC)
    errors = []
    for i, d in enumerate(dirs):
        try:
            base, files = list_temp(res.hosts.get(host), host_path(d.path, config, f"logs.temp_dirs[{i}]"))
        except HostError as exc:
            errors.append(str(exc))
            continue
        plan = plan_cleanup(base, files, older_than=d.older_than, patterns=d.patterns, now=now)
        out.plans.append(plan)
        delete = d.delete if dry_run is None else not dry_run
        logger.info("%s: %s: %d file(s), %s, older than %s and matching %s%s", host, base, len(plan.remove),
                    human_size(plan.bytes), duration(d.older_than), ", ".join(d.patterns),
                    "" if delete else " (dry run: nothing removed)")
        verb = "remove" if delete else "would remove"
        for f in plan.remove[:50]:
            logger.info("%s:   %s %s", host, verb, f.path)
        for path in plan.refused:
            logger.warning("%s: refused %s: it is outside %s", host, path, base)
        if delete:
            out.removed += remove_files(res.hosts.get(host), plan, older_than=d.older_than, patterns=d.patterns)
            out.dry_run = False
    if errors:
        raise HostError(host, "; ".join(errors))
    return out
