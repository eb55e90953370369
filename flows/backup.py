"""Daily MongoDB backup to S3 (the guide's BackupManager): dump, manifest last, verify, retention."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from flows._routine import Routine
from flows.verify_backup import verify_backup
from tasks.hosts import backup_config_file
from tasks.mongo import dump_to_store, list_collections, ping_database
from tasks.s3 import allocate_backup_id, apply_retention, write_manifest
from upkeep.routines import BACKUP


@flow(name=BACKUP.flow)
def backup(environment: str = "development", config: str | None = None, retention: bool = True) -> str:
    """pre: database and bucket reachable · execute: dump every collection and the configuration
    files, manifest last · post: verify (test restore included), then apply retention."""
    with Routine(BACKUP, environment, config) as r:
        with r.stage("pre"):
            ping_database()
            backup_id = allocate_backup_id()
            collections = list_collections()
        created_at = datetime.now(UTC)
        with r.stage("execute"):
            dumped = r.fan_out(dump_to_store, collections, backup_id=backup_id)
            files = r.env.backup.config_files
            copied = [backup_config_file(f.host, f.path, backup_id) for f in files]
            write_manifest(backup_id, created_at, list(dumped.returned().values()), copied)
        with r.stage("post"):
            # a full pass (every object, test restore): only that makes the new backup "verified" for retention;
            # raises when it fails
            verify_backup(environment=environment, config=config, backup_id=backup_id, sample=1.0, restore=True)
            if retention:
                apply_retention()
            r.notify(f"backup {backup_id} written and verified")
        r.report.notes.append(f"backup id: `{backup_id}`")
        return backup_id
