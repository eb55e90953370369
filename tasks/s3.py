"""Tasks that touch the object store: backup manifests, integrity reads, listings, retention."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from functools import partial
from typing import Any

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.backup.manifest import MANIFEST, SIGNATURE, CollectionEntry, ConfigFileEntry, Manifest, new_backup_id, sign
from upkeep.backup.records import new_record
from upkeep.backup.retention import ORPHAN_GRACE, plan
from upkeep.backup.store import BackupRef, StoreError
from upkeep.backup.verify import check_object, load_signed_manifest, sample
from upkeep.errors import ConfigError


@step("new-backup-id")
def allocate_backup_id() -> str:
    """The id of this run's backup (the same on a retry of the run: the result is cached)."""
    resources().backup_store().ensure_bucket()
    return new_backup_id()


@step("write-manifest")
def write_manifest(backup_id: str, created_at: datetime, collections: list[CollectionEntry],
                   config_files: list[ConfigFileEntry]) -> Manifest:
    """Signature first, manifest last: until the manifest exists the backup is not listed."""
    res = resources()
    store = res.backup_store()
    assert res.env.mongodb is not None
    manifest = Manifest(
        backup_id=backup_id, environment=res.environment, created_at=created_at,
        completed_at=datetime.now(UTC), source=f"mongodb databases {', '.join(res.env.mongodb.databases)}",
        collections=sorted(collections, key=lambda c: c.qualified), config_files=config_files,
    )
    data = manifest.model_dump_json(indent=2).encode()
    store.put_bytes(backup_id, SIGNATURE, sign(data, res.manifest_key()).encode())
    store.put_bytes(backup_id, MANIFEST, data)
    get_run_logger().info("backup %s complete: %d collections, %d documents", backup_id, len(collections),
                          manifest.document_count)
    return manifest


@step("list-backups", cache=False)
def list_backups() -> list[BackupRef]:
    return resources().backup_store().list_backups()


@step("manifest-object", cache=False)
def manifest_object(backup_id: str) -> dict[str, str]:
    """Where a backup's manifest is and the SHA-256 of its bytes: what a verification run's record cites, so the
    compliance audit can show the verified manifest is still the one stored."""
    store = resources().backup_store()
    data, _signature = store.manifest(backup_id)
    return {"manifest_bucket": store.bucket, "manifest_key": store.key(backup_id, MANIFEST),
            "manifest_sha256": hashlib.sha256(data).hexdigest()}


@step("load-manifest", cache=False)
def load_manifest(backup_id: str) -> tuple[Manifest | None, list[dict[str, Any]]]:
    res = resources()
    manifest, findings = load_signed_manifest(res.backup_store(), backup_id, res.manifest_key())
    return manifest, [asdict(f) for f in findings]


@step("integrity", cache=False)
def check_integrity(backup_id: str, manifest: Manifest, share: float, threads: int = 4) -> list[dict[str, Any]]:
    """Stream every object (or a sampled share) and compare sizes and SHA-256 with the manifest."""
    store = resources().backup_store()
    entries = sample(manifest.files(), share)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        findings = list(pool.map(lambda e: check_object(store, backup_id, e), entries))
    bad = [f for f in findings if not f.ok]
    get_run_logger().info("integrity of %s: %d objects read, %d bad", backup_id, len(findings), len(bad))
    return [asdict(f) for f in findings]


@step("record-verification", cache=False)
def record_verification(backup_id: str, ok: bool, summary: dict[str, Any], share: float, test_restore: bool) -> None:
    """Keep the verdict and its mode (share read, test restore or not) beside (not inside) the
    backup: later runs, retention and the DR test read it."""
    record = new_record(backup_id, ok, sample=share, test_restore=test_restore, summary=summary)
    resources().backup_store().record_verification(backup_id, record)
    get_run_logger().info("verification of %s recorded: %s (%.0f%% of the objects read, %s)", backup_id,
                          "passed" if ok else "FAILED", share * 100, "test restore" if test_restore else "no test restore")


@step("latest-verified", cache=False)
def latest_verified_backup() -> str | None:
    """The newest verified backup (a thorough verification passed, none failed since; upkeep.backup.records)."""
    store = resources().backup_store()
    for ref in reversed(store.list_backups()):
        if store.verified_ok(ref.backup_id):
            return ref.backup_id
    return None


@step("retention", retries=1)
def apply_retention(dry_run: bool = False) -> list[str]:
    """Delete what the retention plan no longer keeps (upkeep.backup.retention: slots from verified
    backups, never the newest verified, a grace period for the others, orphans finished); the ids
    deleted. Every deletion is tried; any that failed fail the task, named."""
    res = resources()
    store = res.backup_store()
    now = datetime.now(UTC)
    refs = store.list_backups()
    decided = plan(refs, store.verification_statuses([r.backup_id for r in refs]), res.env.backup.retention, now,
                   orphans=store.list_orphans())
    logger = get_run_logger()
    logger.info("retention plan%s:\n%s", " (dry run)" if dry_run else "", "\n".join(decided.lines()))
    if dry_run:
        return sorted(decided.delete) + sorted(decided.orphans)
    jobs = [(b, "backup", partial(store.delete_backup, b)) for b in sorted(decided.delete)]
    jobs += [(b, "orphan", partial(store.delete_orphan, b, before=now - ORPHAN_GRACE)) for b in sorted(decided.orphans)]
    failed, deleted = [], []
    for backup_id, what, delete in jobs:  # every deletion is tried; failures are collected
        try:
            n = delete()
        except StoreError as exc:
            failed.append(f"{what} {backup_id}: {exc}")
            logger.error("deleting %s %s failed: %s", what, backup_id, exc)
            continue
        deleted.append(backup_id)
        logger.info("deleted %s %s (%d objects)", what, backup_id, n)
    if failed:
        raise StoreError(f"retention: {len(failed)} deletion(s) failed: " + "; ".join(failed)[:1500])
    return deleted



@step("log-retention")
def ensure_log_retention(dry_run: bool = False) -> str:
    """The s3.logs bucket exists and expires archived logs after `logs.archive_retention` (a lifecycle rule)."""
    res = resources()
    archive = res.log_archive()
    if archive is None:
        return "no s3.logs configured: rotated logs stay on the hosts only"
    days = max(1, int(res.env.logs.archive_retention.total_seconds() // 86400)) if res.env.logs else 90
    if dry_run:
        return f"would ensure a {days}-day lifecycle rule on s3://{archive.bucket}/{archive.prefix} (dry run)"
    archive.ensure_bucket()
    said = archive.ensure_lifecycle(days)
    get_run_logger().info("%s", said)
    return said


@step("past-retention", cache=False)
def logs_past_retention() -> list[dict[str, Any]]:
    """Archived logs older than the retention (plus two days' grace) that the store did not expire."""
    res = resources()
    archive = res.log_archive()
    if archive is None or res.env.logs is None:
        return []
    days = max(1, int(res.env.logs.archive_retention.total_seconds() // 86400))
    late = archive.past_retention(days)
    if late:
        get_run_logger().warning("%d archived log(s) are past the %d-day retention and were not expired by the store, "
                                  "oldest %s", len(late), days, min(o["last_modified"] for o in late).isoformat())
    return [{**o, "last_modified": o["last_modified"].isoformat()} for o in late]


@step("promotion-evidence", cache=False)
def promotion_evidence(source: str) -> dict[str, str]:
    """What the `source` environment's update runs applied successfully, and when first (from its run records):
    versioned id → ISO time."""
    from upkeep.packages.promotion import UPDATE_ROUTINES, proven
    from upkeep.resources import Resources

    res = resources()
    with Resources(res.inventory, source, resolve=res.resolve) as other:
        store = other.run_records()
        if store is None:
            raise ConfigError(f"environments.{source}.s3 keeps no run records: the promotion gate of {res.environment} "
                              "has no evidence to read (configure s3.records or s3.backups there)")
        records = [rec for routine in UPDATE_ROUTINES for rec in store.list(source, routine)]
    evidence = proven(records)
    get_run_logger().info("promotion evidence from %s: %d update run(s), %d version(s) applied successfully", source,
                          len(records), len(evidence))
    return {item: when.isoformat() for item, when in evidence.items()}
