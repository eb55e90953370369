"""Backup verification: integrity, completeness, test restore, freshness.

Every check returns findings instead of raising, so one run reports every problem it found.
Nothing here writes to the backup it checks; a test restore goes to a scratch database that is
always dropped afterwards.
"""

from __future__ import annotations

import gzip
import hashlib
import queue
import random
import secrets
import threading
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from blake3 import blake3
from botocore.exceptions import BotoCoreError
from bson.raw_bson import RawBSONDocument
from pydantic import ValidationError
from pymongo import IndexModel
from pymongo.errors import BulkWriteError, PyMongoError

from upkeep import humanize
from upkeep.backup.dump import RAW, iter_bson, parse_index_metadata
from upkeep.backup.manifest import FileEntry, Manifest, signature_problem
from upkeep.backup.store import BackupRef, BackupStore, MissingObject, StoreError


@dataclass(frozen=True)
class Finding:
    check: str  # integrity | completeness | restore | freshness | manifest
    ok: bool
    subject: str
    message: str


@dataclass
class RestoreResult:
    database: str
    documents: int = 0
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    @property
    def docs_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0


def load_signed_manifest(store: BackupStore, backup_id: str, key: bytes | None) -> tuple[Manifest | None, list[Finding]]:
    """The manifest, if its signature and structure are valid."""
    try:
        data, sig = store.manifest(backup_id)
    except MissingObject as exc:
        return None, [Finding("manifest", False, backup_id, f"manifest or signature missing: {exc}")]
    problem = signature_problem(data, sig, key)
    if problem is not None:
        return None, [Finding("manifest", False, backup_id, f"manifest {problem}")]
    try:
        manifest = Manifest.model_validate_json(data)
    except ValidationError as exc:
        return None, [Finding("manifest", False, backup_id, f"manifest structure invalid: {exc.errors()[0]['msg']}")]
    if manifest.backup_id != backup_id:
        return None, [Finding("manifest", False, backup_id, f"manifest names backup {manifest.backup_id!r}")]
    if not key:
        return manifest, [Finding("manifest", True, backup_id, "checksum and structure valid; unsigned (no manifest key "
                                  "configured): corruption is detected, a deliberate change is not")]
    return manifest, [Finding("manifest", True, backup_id, "signature and structure valid")]


def check_object(store: BackupStore, backup_id: str, entry: FileEntry) -> Finding:
    """Stream one object; compare its size and digest with the manifest (BLAKE3, or SHA-256 for a
    backup written before BLAKE3 digests were recorded)."""
    algo, expected = ("blake3", entry.blake3) if entry.blake3 else ("sha256", entry.sha256)
    sha, size = (blake3() if algo == "blake3" else hashlib.sha256()), 0
    try:
        for chunk in store.iter_chunks(backup_id, entry.key):
            sha.update(chunk)
            size += len(chunk)
    except MissingObject:
        return Finding("integrity", False, entry.key, "missing object")
    except (StoreError, BotoCoreError) as exc:  # BotoCoreError: a read timeout or a broken stream mid-object
        return Finding("integrity", False, entry.key, f"cannot read: {type(exc).__name__}: {str(exc)[:300]}")
    if size != entry.size:
        return Finding("integrity", False, entry.key,
                       f"size mismatch: the manifest says {entry.size:,} bytes, {size:,} are stored (truncated or replaced)")
    if sha.hexdigest() != expected:
        return Finding("integrity", False, entry.key,
                       f"checksum mismatch ({algo}): manifest {expected[:12]}…, stored {sha.hexdigest()[:12]}…")
    exact = f" ({size:,} bytes)" if size >= 1000 else ""
    return Finding("integrity", True, entry.key, f"{humanize.size(size)}{exact}, {algo} digest matches")


def sample(entries: Sequence[FileEntry], share: float, seed: int | None = None) -> list[FileEntry]:
    """A random subset of about `share` of the objects (at least one), like restic --read-data-subset."""
    if share >= 1 or not entries:
        return list(entries)
    k = max(1, round(len(entries) * share))
    return random.Random(seed).sample(list(entries), k)


def completeness(manifest: Manifest, required: Iterable[str], config_files: Iterable[tuple[str, str]]) -> list[Finding]:
    have = {c.qualified for c in manifest.collections}
    out = [Finding("completeness", name in have, name,
                   "present" if name in have else "required collection missing from the backup")
           for name in required]
    files = {(c.host, c.path) for c in manifest.config_files}
    out += [Finding("completeness", (h, p) in files, f"{h}:{p}",
                    "present" if (h, p) in files else "configuration file missing from the backup")
            for h, p in config_files]
    if not manifest.collections:
        out.append(Finding("completeness", False, manifest.backup_id, "backup holds no collection"))
    return out


def freshness(refs: Sequence[BackupRef], now: datetime, max_age: timedelta) -> Finding:
    if not refs:
        return Finding("freshness", False, "-", "no complete backup exists")
    newest = max(refs, key=lambda r: r.created_at)
    age = now - newest.created_at
    ok = age <= max_age
    text = f"newest backup {newest.backup_id} is {humanize.duration(age)} old"
    return Finding("freshness", ok, newest.backup_id,
                   text + ("" if ok else f", older than the allowed {humanize.duration(max_age)}"))


def _error_text(exc: BaseException) -> str:
    """What a finding may say of an error: a bulk write's error codes and counts, never the documents
    (its text carries the failing documents and duplicate keys, and findings go to Slack and reports)."""
    if isinstance(exc, BulkWriteError):
        errors = exc.details.get("writeErrors", [])
        codes = sorted({str(e.get("code", "?")) for e in errors})
        return f"{len(errors)} write error(s), codes {', '.join(codes) or '?'}; {exc.details.get('nInserted', 0)} inserted"
    return str(exc)[:300]


SCRATCH_PREFIX = "upkeep_verify_"


def scratch_name(backup_id: str, now: datetime | None = None) -> str:
    """A unique scratch database name that says when the test restore started (UTC) and of what."""
    now = now or datetime.now(UTC)
    return f"{SCRATCH_PREFIX}{now.astimezone(UTC):%Y%m%dT%H%M%S}_{backup_id.replace('-', '_')}_{secrets.token_hex(3)}"[:63]


def stale_scratch(names: Iterable[str], now: datetime, max_age: timedelta = timedelta(days=1)) -> list[str]:
    """The scratch databases a test restore left behind (a killed run cannot drop its own): those
    started more than `max_age` ago, by the time in their name (for names from before that time was
    written, the backup's time, which is earlier still). A running restore is never that old."""
    out = []
    for name in names:
        if not name.startswith(SCRATCH_PREFIX):
            continue
        stamp = name[len(SCRATCH_PREFIX):].split("_", 1)[0]
        started = None
        for fmt in ("%Y%m%dT%H%M%S", "%Y%m%dT%H%M%SZ"):
            try:
                started = datetime.strptime(stamp, fmt).replace(tzinfo=UTC)
                break
            except ValueError:
                continue
        if started is not None and now - started > max_age:
            out.append(name)
    return sorted(out)


def restore(client: Any, store: BackupStore, manifest: Manifest, *, into: dict[str, str] | None = None,
            batch: int = 1000) -> RestoreResult:
    """Restore every collection and compare counts, content hashes and indexes with the manifest.

    Without `into`, everything goes to one scratch database (collections named `db.collection`)
    that is always dropped afterwards. With `into` (source database → target database, e.g. the
    DR environment), the targets are emptied first and kept.
    """
    scratch = into is None
    name = scratch_name(manifest.backup_id) if into is None else ", ".join(sorted(set(into.values())))
    result = RestoreResult(name)
    started = time.monotonic()
    try:
        if into is not None:
            for target_db in set(into.values()):
                client.drop_database(target_db)
        for entry in manifest.collections:
            if into is None:
                target = client.get_database(name, codec_options=RAW).get_collection(entry.qualified)
            else:
                target = client.get_database(into.get(entry.database, entry.database), codec_options=RAW)[entry.name]
            result.documents += _load(store, manifest.backup_id, entry.data.key, target, batch)
            result.findings += _compare(store, manifest.backup_id, entry, target)
        result.seconds = time.monotonic() - started
    except (ValueError, OSError, EOFError, zlib.error, StoreError, BotoCoreError, PyMongoError) as exc:
        # zlib.error: corrupt deflate data in a dump (not an OSError); BotoCoreError: the object's
        # stream broke or timed out while it was being read
        result.seconds = time.monotonic() - started
        result.findings.append(Finding("restore", False, name, f"restore failed: {type(exc).__name__}: {_error_text(exc)}"))
    finally:
        if scratch:
            client.drop_database(name)
    return result


#: A batch also ends at this many bytes of BSON: 1000 GridFS chunks (255 KiB each) would be 250 MiB.
BATCH_BYTES = 16 * 1024 * 1024


def _load(store: BackupStore, backup_id: str, key: str, target: Any, batch: int, batch_bytes: int = BATCH_BYTES) -> int:
    """Insert the dump's documents `batch` (or `batch_bytes` of BSON) at a time. A reader thread
    streams, gunzips and splits the next batches while the server inserts the current one (at most
    two batches wait in between: memory stays within a few batches, whatever the documents' size)."""
    batches: queue.Queue[list[RawBSONDocument] | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def read() -> None:
        body = store.stream(backup_id, key)
        try:
            docs: list[RawBSONDocument] = []
            size = 0
            with gzip.GzipFile(fileobj=body, mode="rb") as gz:
                for raw in iter_bson(gz):
                    docs.append(RawBSONDocument(raw))
                    size += len(raw)
                    if len(docs) >= batch or size >= batch_bytes:
                        batches.put(docs)
                        docs, size = [], 0
                        if stop.is_set():
                            return
            if docs:
                batches.put(docs)
            batches.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the inserting thread, raised there
            batches.put(exc)
        finally:
            body.close()

    reader = threading.Thread(target=read, name="upkeep-restore-read", daemon=True)
    reader.start()
    n = 0
    try:
        while (item := batches.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            target.insert_many(item, ordered=False)
            n += len(item)
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue, then let it end
            try:
                batches.get(timeout=0.1)
            except queue.Empty:
                pass
        reader.join()
    return n


def _compare(store: BackupStore, backup_id: str, entry: Any, target: Any) -> list[Finding]:
    subject = entry.qualified
    count, sha = 0, hashlib.sha256()
    # one pass counts and hashes (no separate count_documents scan); the _id index is hinted so the
    # server walks it instead of sorting every document (SecantusDB's planner sorts in memory otherwise)
    for doc in target.find({}, sort=[("_id", 1)], batch_size=2000).hint([("_id", 1)]):
        sha.update(doc.raw)
        count += 1
    findings = [
        Finding("restore", count == entry.count, subject,
                f"{humanize.count(count, 'document')} restored" if count == entry.count
                else f"document count mismatch: the manifest says {entry.count:,}, {count:,} were restored"),
        Finding("restore", sha.hexdigest() == entry.content_sha256, subject,
                "content hash matches" if sha.hexdigest() == entry.content_sha256 else "content hash mismatch after restore"),
    ]
    # every index in one createIndexes command: the server builds them in one pass over the documents
    metadata = parse_index_metadata(store.read_bytes(backup_id, entry.metadata.key))
    models = [IndexModel(list(ix["key"].items()), **{k: v for k, v in ix.items() if k not in ("key", "v", "ns")})
              for ix in metadata if ix["name"] != "_id_"]
    if models:
        target.create_indexes(models)
    restored_indexes = list(target.list_indexes())
    restored = sorted(ix["name"] for ix in restored_indexes)
    findings.append(Finding("restore", restored == sorted(entry.indexes), subject,
                            f"indexes {', '.join(restored)}" if restored == sorted(entry.indexes)
                            else f"index mismatch: manifest {sorted(entry.indexes)}, restored {restored}"))
    findings += index_findings(subject, metadata, restored_indexes)
    return findings


# bookkeeping fields of an index document, not part of what the index is; `background` is ignored by
# servers since MongoDB 4.2 (and no longer reported by them)
_NOT_OPTIONS = frozenset({"key", "name", "v", "ns", "background"})
_FALSE_BY_DEFAULT = frozenset({"unique", "sparse", "hidden"})


def index_spec(ix: Mapping[str, Any]) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """(key pairs in index order, options) of an index document as `listIndexes` reports it; a false
    `unique`/`sparse`/`hidden` is the same as none."""
    keys = [(str(k), v) for k, v in ix["key"].items()]
    options = {k: _plain(v) for k, v in ix.items() if k not in _NOT_OPTIONS and not (k in _FALSE_BY_DEFAULT and not v)}
    return keys, options


def _plain(value: Any) -> Any:
    """Nested documents as plain dicts (SON and dict compare alike), lists element by element."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _keys_text(keys: Sequence[tuple[str, Any]]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in keys) + "}"


def index_findings(subject: str, metadata: Sequence[Mapping[str, Any]], restored: Sequence[Mapping[str, Any]]) -> list[Finding]:
    """Every index of the metadata against the restored index of the same name: key pairs in order
    (a compound index's field order is what it is) and options (unique, sparse,
    partialFilterExpression, expireAfterSeconds, collation …). Indexes missing by name are the
    name check's finding."""
    by_name = {ix["name"]: ix for ix in restored}
    out = []
    for ix in metadata:
        got = by_name.get(ix["name"])
        if got is None:
            continue
        (want_keys, want_opts), (got_keys, got_opts) = index_spec(ix), index_spec(got)
        if want_keys != got_keys:
            out.append(Finding("restore", False, subject, f"index {ix['name']} keys differ: metadata {_keys_text(want_keys)}, "
                                                          f"restored {_keys_text(got_keys)}"))
        if want_opts != got_opts:
            names = sorted(k for k in set(want_opts) | set(got_opts) if want_opts.get(k) != got_opts.get(k))
            diff = ", ".join(f"{k}: metadata {want_opts.get(k)!r}, restored {got_opts.get(k)!r}" for k in names)
            out.append(Finding("restore", False, subject, f"index {ix['name']} options differ: {diff}"))
    if not out:
        out.append(Finding("restore", True, subject,
                           f"{len(metadata)} index definitions (keys in order, options) match the metadata"))
    return out
