"""Tasks that touch MongoDB: ping, dump collections into the backup store, restores."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from pymongo.errors import PyMongoError

from tasks._base import resources, step
from upkeep.backup.dump import dump_collection, file_blake3, file_sha256, index_metadata
from upkeep.backup.manifest import CollectionEntry, FileEntry, Manifest
from upkeep.backup.verify import load_signed_manifest, restore, stale_scratch
from upkeep.errors import DatabaseError
from upkeep.resources import Resources


@step("database-ping", retries=2)
def ping_database() -> str:
    """The database answers (within the configured timeout)."""
    try:
        info = resources().mongo.server_info()
    except PyMongoError as exc:
        raise DatabaseError(f"database unreachable: {exc}") from exc
    get_run_logger().info("database answers (version %s)", info.get("version", "?"))
    return str(info.get("version", "?"))


@step("list-collections", cache=False)
def list_collections() -> list[str]:
    """`db.collection` names of the configured databases: collections only (a view holds no data of
    its own and cannot be dumped like one; views found are logged as not backed up)."""
    res = resources()
    assert res.env.mongodb is not None
    try:
        names = {db: res.mongo[db].list_collection_names(filter={"type": "collection"}) for db in res.env.mongodb.databases}
        views = sorted(f"{db}.{name}" for db in res.env.mongodb.databases
                       for name in res.mongo[db].list_collection_names(filter={"type": "view"}))
    except PyMongoError as exc:
        raise DatabaseError(f"cannot list collections: {exc}") from exc
    if views:
        get_run_logger().warning("views are not backed up (no data of their own; recreate them from their "
                                 "definitions): %s", ", ".join(views))
    return sorted(f"{db}.{name}" for db, found in names.items() for name in found if not name.startswith("system."))


@step("dump", run_name="dump[{qualified}]")
def dump_to_store(qualified: str, backup_id: str) -> CollectionEntry:
    """Dump one collection (gzip'd BSON + index metadata) and upload both, checksums checked."""
    res = resources()
    store = res.backup_store()
    database, name = qualified.split(".", 1)
    collection = res.mongo[database][name]
    work = Path(tempfile.mkdtemp(prefix="upkeep-dump-"))
    try:
        try:
            count, content, dumped = dump_collection(collection, work / "data.bson.gz")
            meta = index_metadata(collection)
            indexes = sorted(ix["name"] for ix in collection.list_indexes())
        except PyMongoError as exc:
            raise DatabaseError(f"dumping {qualified} failed: {exc}") from exc
        data_key, meta_key = f"{database}/{name}.bson.gz", f"{database}/{name}.metadata.json"
        store.put_file(backup_id, data_key, dumped.path, dumped.sha256)
        store.put_bytes(backup_id, meta_key, meta)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    get_run_logger().info("dumped %s: %d documents, %d bytes", qualified, count, dumped.size)
    return CollectionEntry(
        database=database, name=name, count=count, content_sha256=content, indexes=indexes,
        data=FileEntry(key=data_key, size=dumped.size, sha256=dumped.sha256, blake3=dumped.blake3),
        metadata=FileEntry(key=meta_key, size=len(meta), sha256=file_sha256(meta), blake3=file_blake3(meta)),
    )


@step("test-restore", retries=1)
def test_restore(backup_id: str) -> dict[str, Any]:
    """Restore into a scratch database (always dropped) and compare with the manifest. Scratch
    databases that a killed run left behind (copies of production data) are dropped first."""
    res = resources()
    store = res.backup_store()
    try:
        for name in stale_scratch(res.mongo.list_database_names(), datetime.now(UTC)):
            res.mongo.drop_database(name)
            get_run_logger().warning("dropped %s: a scratch database an earlier test restore left behind", name)
    except PyMongoError as exc:
        get_run_logger().warning("leftover scratch databases not checked: %s", exc)
    result = restore(res.mongo, store, store.load_manifest(backup_id))
    get_run_logger().info("test restore of %s: %d documents in %.2fs (%.0f docs/s) into %s (dropped)",
                          backup_id, result.documents, result.seconds, result.docs_per_second, result.database)
    return {"documents": result.documents, "seconds": result.seconds, "docs_per_second": result.docs_per_second,
            "findings": [asdict(f) for f in result.findings]}


@step("restore-dr", retries=0)
def restore_into_dr(backup_id: str) -> dict[str, Any]:
    """Restore a backup into the DR test environment's databases (emptied first, kept)."""
    res = resources()
    assert res.env.dr is not None and res.env.mongodb is not None
    store = res.backup_store()
    # one DR database per database: the inventory check makes the lists the same length
    mapping = dict(zip(res.env.mongodb.databases, res.env.dr.mongodb.databases, strict=True))
    manifest = _signed_manifest(res, backup_id, mapping)
    result = restore(res.dr_mongo(), store, manifest, into=mapping)
    get_run_logger().info("restored %s into %s: %d documents in %.2fs", backup_id, result.database, result.documents,
                          result.seconds)
    return {"documents": result.documents, "seconds": result.seconds, "findings": [asdict(f) for f in result.findings]}


@step("read-query", retries=1, run_name="read-query[{collection}]")
def dr_read_query(collection: str, filter: dict[str, Any], min_count: int,  # noqa: A002 - MongoDB's word
                  database: str | None = None) -> int:
    """A read the application needs works on the restored data (in `database`, default the first DR database)."""
    res = resources()
    assert res.env.dr is not None
    db = res.dr_mongo()[database or res.env.dr.mongodb.databases[0]]
    n: int = db[collection].count_documents(filter)
    if n < min_count:
        raise DatabaseError(f"read query on {collection} {filter} found {n} documents, expected at least {min_count}")
    get_run_logger().info("read query on %s: %d documents", collection, n)
    return n


@step("restore-database", retries=0)
def restore_into_primary(backup_id: str) -> dict[str, Any]:
    """Restore the production databases from a verified backup (emptied first): the last resort
    of an emergency, only ever run behind approval."""
    res = resources()
    assert res.env.mongodb is not None
    store = res.backup_store()
    mapping = {db: db for db in res.env.mongodb.databases}
    manifest = _signed_manifest(res, backup_id, mapping)  # before anything is dropped
    result = restore(res.mongo, store, manifest, into=mapping)
    bad = [f for f in result.findings if not f.ok]
    if bad:
        raise DatabaseError(f"restore of {backup_id} is wrong: {bad[0].subject}: {bad[0].message}")
    get_run_logger().warning("restored %s over %s: %d documents", backup_id, ", ".join(mapping), result.documents)
    return {"documents": result.documents, "seconds": result.seconds}


def _signed_manifest(res: Resources, backup_id: str, mapping: dict[str, str]) -> Manifest:
    """The backup's manifest, checked before a restore that empties its targets: signature and
    structure valid, and every database it holds has a target (never restored under its own name
    by default: on the wrong server that would be production's)."""
    manifest, findings = load_signed_manifest(res.backup_store(), backup_id, res.manifest_key())
    if manifest is None:
        raise DatabaseError(f"not restoring {backup_id}: {findings[0].message}")
    unmapped = sorted({c.database for c in manifest.collections} - set(mapping))
    if unmapped:
        raise DatabaseError(f"not restoring {backup_id}: it holds database(s) {', '.join(unmapped)} that the configuration "
                            "maps to no target (mongodb.databases / dr.mongodb.databases); restore them by hand or add them")
    return manifest

