"""Stale data: archived to S3, verified, then deleted — exactly the archived set, in bounded batches.

One rule (`StaleRule`: collection, date field, age, optional filter) selects documents older than a cutoff.
With `archive`, its documents are written to S3 in chunks (gzip'd BSON, mongodump's `--gzip` format:
`mongorestore` reads a chunk as it is), each uploaded with its SHA-256 checked by the server, and a
manifest written last (counts, hashes, first and last `_id` per chunk, the query). The chunks are then
read back and checked against the manifest (hash, count, BSON), and the `_id`s read *from the archive*
are deleted, a batch at a time, still matching the rule (a document changed since is left alone).

States, all in S3 (the manifest's `status`): no manifest (an interrupted upload: nothing was deleted);
`archived` (deleting may have started); `deleted`. A run first finishes every `archived` manifest of the
collection (re-verified, then deleted: `delete_many` by `_id` is idempotent), so a run killed mid-delete
is completed by the next, exactly. A chunk that fails its check stops the rule before any delete.
Without `archive` (sessions), matching documents are deleted by `_id` in batches, nothing kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId, decode
from bson.codec_options import CodecOptions
from bson.json_util import dumps as ejson_dumps
from bson.json_util import loads as ejson_loads
from bson.raw_bson import RawBSONDocument
from isal import igzip

from upkeep.errors import ArchiveError

RAW = CodecOptions(document_class=RawBSONDocument)
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class StaleRule:
    """Documents of `collection` whose `date_field` is older than `older_than` (and match `filter`)."""

    collection: str
    date_field: str
    older_than: timedelta
    filter: Mapping[str, Any]
    archive: bool = True

    def query(self, now: datetime) -> dict[str, Any]:
        """The MongoDB filter of the documents the rule removes at `now`."""
        return {**self.filter, self.date_field: {"$lt": now - self.older_than}}


class DataArchive:
    """Where archived documents go: `s3://<bucket>/<prefix><environment>/<database>/<collection>/<archive id>/`."""

    def __init__(self, s3: Any, bucket: str, prefix: str, environment: str) -> None:
        self.s3, self.bucket, self.prefix, self.environment = s3, bucket, prefix, environment

    def folder(self, database: str, collection: str, archive_id: str = "") -> str:
        return f"{self.prefix}{self.environment}/{database}/{collection}/" + (f"{archive_id}/" if archive_id else "")

    def ensure_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except Exception:  # noqa: BLE001 - missing (404) or not ours: creating it says which
            try:
                self.s3.create_bucket(Bucket=self.bucket)
            except Exception as exc:  # noqa: BLE001
                raise ArchiveError(f"archive bucket {self.bucket}: {exc}") from exc

    def put(self, key: str, data: bytes, sha256: bytes) -> None:
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ChecksumSHA256=base64.b64encode(sha256).decode())
        except Exception as exc:  # noqa: BLE001 - botocore's errors, a refused connection: the upload failed
            raise ArchiveError(f"upload of s3://{self.bucket}/{key} failed: {exc}") from exc

    def get(self, key: str) -> bytes:
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as exc:  # noqa: BLE001
            raise ArchiveError(f"reading s3://{self.bucket}/{key} failed: {exc}") from exc

    def manifests(self, database: str, collection: str) -> list[dict[str, Any]]:
        """Every manifest of the collection's archives, oldest first."""
        prefix, keys = self.folder(database, collection), []
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith("/" + MANIFEST)]
        except Exception as exc:  # noqa: BLE001
            raise ArchiveError(f"listing s3://{self.bucket}/{prefix} failed: {exc}") from exc
        return [json.loads(self.get(k)) for k in sorted(keys)]

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        data = json.dumps(manifest, indent=1, sort_keys=True).encode()
        self.put(manifest["folder"] + MANIFEST, data, hashlib.sha256(data).digest())


def _first_id(raw: bytes) -> Any:
    """The `_id` of one BSON document: read straight from the bytes when it is the first field and an
    ObjectId (what MongoDB stores), else decoded."""
    if raw[4] == 0x07 and raw[5:9] == b"_id\x00":
        return ObjectId(raw[9:21])
    return decode(raw)["_id"]


def iter_documents(data: bytes) -> Iterator[bytes]:
    """The BSON documents of a decompressed chunk, as bytes; ArchiveError if it is cut or malformed."""
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < 5:
            raise ArchiveError(f"chunk cut at byte {pos}")
        (size,) = struct.unpack_from("<i", data, pos)
        if size < 5 or pos + size > end or data[pos + size - 1] != 0:
            raise ArchiveError(f"malformed BSON document at byte {pos}")
        yield data[pos:pos + size]
        pos += size


def archive_documents(collection: Any, query: Mapping[str, Any], archive: DataArchive, folder: str,
                      chunk_docs: int = 20_000, on_chunk: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Upload the documents matching `query` (in `_id` order) as chunks under `folder`; their manifest entries.
    Nothing is written but chunk objects: the caller writes the manifest once every chunk is up."""
    chunks: list[dict[str, Any]] = []
    buf: list[bytes] = []
    first: Any = None

    def flush() -> None:
        nonlocal buf, first
        raw = b"".join(buf)
        packed = igzip.compress(raw, compresslevel=1)
        digest = hashlib.sha256(packed).digest()
        key = f"{folder}chunk-{len(chunks) + 1:06d}.bson.gz"
        archive.put(key, packed, digest)
        chunks.append({"key": key, "documents": len(buf), "bytes": len(packed), "raw_bytes": len(raw),
                       "sha256": digest.hex(), "first_id": ejson_dumps(first), "last_id": ejson_dumps(_first_id(buf[-1]))})
        if on_chunk:
            on_chunk(len(buf))
        buf, first = [], None

    cursor = collection.with_options(codec_options=RAW).find(query, sort=[("_id", 1)], batch_size=min(chunk_docs, 10_000))
    for doc in cursor:
        raw = doc.raw
        if first is None:
            first = _first_id(raw)
        buf.append(raw)
        if len(buf) >= chunk_docs:
            flush()
    if buf:
        flush()
    return chunks


def verified_ids(archive: DataArchive, manifest: Mapping[str, Any]) -> list[list[Any]]:
    """Each chunk read back and checked against the manifest (SHA-256, document count, first and last `_id`,
    the total); the `_id`s per chunk, as the archive holds them. ArchiveError at the first mismatch."""
    out: list[list[Any]] = []
    for entry in manifest["chunks"]:
        packed = archive.get(entry["key"])
        if hashlib.sha256(packed).hexdigest() != entry["sha256"]:
            raise ArchiveError(f"{entry['key']}: SHA-256 does not match the manifest: nothing deleted")
        try:
            ids = [_first_id(d) for d in iter_documents(igzip.decompress(packed))]  # type: ignore[no-untyped-call]
        except (OSError, EOFError, ArchiveError) as exc:
            raise ArchiveError(f"{entry['key']}: unreadable ({exc}): nothing deleted") from exc
        if len(ids) != entry["documents"] or ejson_dumps(ids[0]) != entry["first_id"] or ejson_dumps(ids[-1]) != entry["last_id"]:
            raise ArchiveError(f"{entry['key']}: {len(ids)} documents, the manifest says {entry['documents']} "
                               f"({entry['first_id']}…{entry['last_id']}): nothing deleted")
        out.append(ids)
    total = sum(len(ids) for ids in out)
    if total != manifest["documents"]:
        raise ArchiveError(f"{manifest['folder']}: {total} documents in the chunks, the manifest says {manifest['documents']}")
    return out


def by_ids(query: Mapping[str, Any], ids: list[Any]) -> dict[str, Any]:
    """`query` narrowed to these `_id`s (selected by it), the `_id` clause first: a planner that serves the first
    clause it has an index for (SecantusDB's) then looks the batch up by `_id` instead of walking an index on the
    rule's date field, every matching document, once per batch. mongod plans it the same either way."""
    return {"_id": {"$in": ids}, **{k: v for k, v in query.items() if k != "_id"}}


def delete_by_ids(collection: Any, query: Mapping[str, Any], ids: list[Any], batch: int) -> int:
    """Delete the documents with these `_id`s that still match `query`, `batch` at a time; how many went."""
    deleted = 0
    for i in range(0, len(ids), batch):
        deleted += collection.delete_many(by_ids(query, ids[i:i + batch])).deleted_count
    return deleted


def delete_matching(collection: Any, query: Mapping[str, Any], batch: int) -> int:
    """Delete every document matching `query`, by `_id` in batches of `batch` (no unbounded delete)."""
    deleted = 0
    while True:
        ids = [d["_id"] for d in collection.find(query, {"_id": 1}, sort=[("_id", 1)], limit=batch)]
        if not ids:
            return deleted
        deleted += collection.delete_many(by_ids(query, ids)).deleted_count


def query_text(query: Mapping[str, Any]) -> str:
    """The query as the manifest keeps it (MongoDB Extended JSON, dates and ids typed)."""
    return ejson_dumps(query, sort_keys=True)


def query_from_text(text: str) -> dict[str, Any]:
    return dict(ejson_loads(text))


@dataclass
class RuleResult:
    """What one rule did (or, in a dry run, would do) to its collection."""

    rule: StaleRule
    matching: int = 0  # documents matching the rule when planned
    archived: int = 0
    deleted: int = 0
    resumed: int = 0  # documents deleted from archives an earlier run left `archived`
    archives: list[str] | None = None  # the manifests' folders written or finished

    def describe(self, planned: bool = False) -> str:
        """One sentence: what the rule matched and what became of it (or, `planned`, what a run would do)."""
        r = self.rule
        what = f"{r.collection}: {self.matching:,} document(s) with {r.date_field} older than {_age(r.older_than)}"
        if self.resumed:
            what += f"; finished an earlier run's archive: {self.resumed:,} deleted"
        if planned:
            return what + ("; a run archives them to S3, verifies the archive, then deletes them" if r.archive
                           else "; a run deletes them (not archived: the rule says so)")
        if r.archive:
            return what + f"; {self.archived:,} archived to S3 and verified, {self.deleted:,} deleted"
        return what + f"; {self.deleted:,} deleted (not archived: the rule says so)"


def _age(d: timedelta) -> str:
    days = d.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{d.total_seconds() / 3600:g} h"


def finish_archived(collection: Any, archive: DataArchive, database: str, batch: int) -> tuple[int, list[str]]:
    """Every manifest of the collection still `archived` (a run stopped after archiving): verified again, its
    documents deleted, marked `deleted`. (documents deleted, folders finished)."""
    deleted, folders = 0, []
    for manifest in archive.manifests(database, collection.name):
        if manifest.get("status") != "archived":
            continue
        ids = verified_ids(archive, manifest)
        query = query_from_text(manifest["query"])
        n = sum(delete_by_ids(collection, query, chunk, batch) for chunk in ids)
        archive.write_manifest({**manifest, "status": "deleted", "deleted": manifest.get("deleted", 0) + n})
        deleted += n
        folders.append(manifest["folder"])
    return deleted, folders


def run_rule(collection: Any, rule: StaleRule, archive: DataArchive | None, *, now: datetime, archive_id: str,
             dry_run: bool, batch: int = 1000, chunk_docs: int = 20_000) -> RuleResult:
    """One rule on its collection: first what an earlier run left half done, then (unless `dry_run`, which only
    counts) archive → verify → delete, or delete alone for a rule without `archive`."""
    result = RuleResult(rule, archives=[])
    database = collection.database.name
    if rule.archive and archive is None:
        raise ArchiveError(f"the rule for {rule.collection} archives first, but no archive bucket is configured")
    if archive is not None and rule.archive and not dry_run:
        result.resumed, result.archives = finish_archived(collection, archive, database, batch)
    query = rule.query(now)
    result.matching = collection.count_documents(query)
    if dry_run or result.matching == 0:
        return result
    if not rule.archive:
        result.deleted = delete_matching(collection, query, batch)
        return result
    assert archive is not None
    folder = archive.folder(database, rule.collection, archive_id)
    chunks = archive_documents(collection, query, archive, folder, chunk_docs)
    manifest = {"version": 1, "folder": folder, "environment": archive.environment, "database": database,
                "collection": rule.collection, "query": query_text(query), "created": now.isoformat(),
                "rule": {"date_field": rule.date_field, "older_than_seconds": rule.older_than.total_seconds(),
                         "filter": query_text(rule.filter)},
                "documents": sum(c["documents"] for c in chunks), "chunks": chunks, "status": "archived", "deleted": 0}
    archive.write_manifest(manifest)  # from here on, a later run finishes the delete
    result.archived = manifest["documents"]
    ids = verified_ids(archive, manifest)
    result.deleted = sum(delete_by_ids(collection, query, chunk, batch) for chunk in ids)
    archive.write_manifest({**manifest, "status": "deleted", "deleted": result.deleted})
    result.archives = [*(result.archives or []), folder]
    return result
