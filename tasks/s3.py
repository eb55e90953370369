"""Tasks that touch the object store: backup manifests, integrity reads, listings, retention."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.backup.manifest import MANIFEST, SIGNATURE, CollectionEntry, ConfigFileEntry, Manifest, new_backup_id, sign
from upkeep.backup.retention import to_delete
from upkeep.backup.store import BackupRef
from upkeep.backup.verify import check_object, load_signed_manifest, sample


@step("pre", "new-backup-id")
def allocate_backup_id() -> str:
    """The id of this run's backup (the same on a retry of the run: the result is cached)."""
    resources().backup_store().ensure_bucket()
    return new_backup_id()


@step("execute", "write-manifest")
def write_manifest(backup_id: str, created_at: datetime, collections: list[CollectionEntry],
                   config_files: list[ConfigFileEntry]) -> Manifest:
    """Signature first, manifest last: until the manifest exists the backup is not listed."""
    res = resources()
    store = res.backup_store()
    assert res.env.mongodb is not None
    manifest = Manifest(
        backup_id=backup_id, environment=res.environment, created_at=created_at,
        completed_at=datetime.now(timezone.utc), source=f"mongodb databases {', '.join(res.env.mongodb.databases)}",
        collections=sorted(collections, key=lambda c: c.qualified), config_files=config_files,
    )
    data = manifest.model_dump_json(indent=2).encode()
    store.put_bytes(backup_id, SIGNATURE, sign(data, res.manifest_key()).encode())
    store.put_bytes(backup_id, MANIFEST, data)
    get_run_logger().info("backup %s complete: %d collections, %d documents", backup_id, len(collections), manifest.document_count)
    return manifest


@step("pre", "list-backups", cache=False)
def list_backups() -> list[BackupRef]:
    return resources().backup_store().list_backups()


@step("pre", "load-manifest", cache=False)
def load_manifest(backup_id: str) -> tuple[Manifest | None, list[dict[str, Any]]]:
    res = resources()
    manifest, findings = load_signed_manifest(res.backup_store(), backup_id, res.manifest_key())
    return manifest, [asdict(f) for f in findings]


@step("execute", "integrity", cache=False)
def check_integrity(backup_id: str, manifest: Manifest, share: float, threads: int = 4) -> list[dict[str, Any]]:
    """Stream every object (or a sampled share) and compare sizes and SHA-256 with the manifest."""
    store = resources().backup_store()
    entries = sample(manifest.files(), share)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        findings = list(pool.map(lambda e: check_object(store, backup_id, e), entries))
    bad = [f for f in findings if not f.ok]
    get_run_logger().info("integrity of %s: %d objects read, %d bad", backup_id, len(findings), len(bad))
    return [asdict(f) for f in findings]


@step("post", "record-verification", cache=False)
def record_verification(backup_id: str, ok: bool, summary: dict[str, Any]) -> None:
    """Keep the verdict beside (not inside) the backup: later runs and the DR test read it."""
    record = {"backup_id": backup_id, "ok": ok, "verified_at": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ"), **summary}
    resources().backup_store().record_verification(backup_id, record)
    get_run_logger().info("verification of %s recorded: %s", backup_id, "passed" if ok else "FAILED")


@step("pre", "latest-verified", cache=False)
def latest_verified_backup() -> str | None:
    store = resources().backup_store()
    for ref in reversed(store.list_backups()):
        if store.verified_ok(ref.backup_id):
            return ref.backup_id
    return None


@step("post", "retention", retries=1)
def apply_retention(dry_run: bool = False) -> list[str]:
    """Delete the verified backups the retention policy no longer keeps (never the newest)."""
    res = resources()
    store = res.backup_store()
    doomed = to_delete(store.list_backups(), res.env.backup.retention)
    logger = get_run_logger()
    logger.info("retention plan: delete %s", ", ".join(doomed) or "nothing")
    if not dry_run:
        for backup_id in doomed:
            store.delete_backup(backup_id)
            logger.info("deleted backup %s", backup_id)
    return doomed
