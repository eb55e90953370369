"""Backups in an S3 bucket: `<prefix><backup_id>/…` objects, manifest written last.

Only backups with a manifest are listed; a backup id's objects without a manifest (a backup in
progress, one that failed, or one half deleted) are an `Orphan`. Verification results live
apart, under `<prefix>_verifications/`, so checking a backup never changes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.response import StreamingBody
from urllib3.exceptions import HTTPError as URLLib3Error

from upkeep.backup.manifest import MANIFEST, SIGNATURE, Manifest, backup_time
from upkeep.backup.records import Status, status, verdict

# re-exported: both were defined here before upkeep.errors
from upkeep.errors import MissingObject as MissingObject
from upkeep.errors import StoreError as StoreError

CHUNK = 1024 * 1024
SINGLE_PUT_LIMIT = 256 * 1024 * 1024


@dataclass(frozen=True)
class BackupRef:
    backup_id: str
    created_at: datetime


@dataclass(frozen=True)
class Orphan:
    """Objects under a backup id without a manifest: when the newest of them was written."""

    backup_id: str
    objects: int
    last_modified: datetime


# what reading a response body raises when the connection breaks or times out mid-object
_STREAM_ERRORS = (BotoCoreError, URLLib3Error)


class _Body:
    """A response body whose read errors are StoreErrors (for a reader such as GzipFile)."""

    def __init__(self, body: Any, where: str) -> None:
        self.body, self.where = body, where

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self.body.read(size if size >= 0 else None))
        except _STREAM_ERRORS as exc:
            raise StoreError(f"reading {self.where} failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.body.close()


class BackupStore:
    def __init__(self, s3: Any, bucket: str, prefix: str = "") -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix

    def key(self, backup_id: str, relative: str) -> str:
        return f"{self.prefix}{backup_id}/{relative}"

    def _call(self, what: str, fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise MissingObject(f"s3://{self.bucket}/{kwargs.get('Key', '')}: missing") from exc
            raise StoreError(f"{what} s3://{self.bucket}/{kwargs.get('Key', '')} failed: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"{what} s3://{self.bucket}: {exc}") from exc

    def ensure_bucket(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._call("create bucket", self.s3.create_bucket)

    # -- writing ----------------------------------------------------------------------------------
    def put_file(self, backup_id: str, relative: str, path: Path, sha256_hex: str) -> None:
        """Upload with the SHA-256 checked by the server (the upload fails if the bytes differ)."""
        key = self.key(backup_id, relative)
        if path.stat().st_size <= SINGLE_PUT_LIMIT:
            checksum = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
            with open(path, "rb") as body:
                self._call("upload", self.s3.put_object, Key=key, Body=body, ChecksumSHA256=checksum)
        else:  # multipart: every part's checksum is checked by the server
            try:
                self.s3.upload_file(str(path), self.bucket, key, ExtraArgs={"ChecksumAlgorithm": "SHA256"})
            except (ClientError, BotoCoreError) as exc:
                raise StoreError(f"upload s3://{self.bucket}/{key} failed: {exc}") from exc

    def put_bytes(self, backup_id: str, relative: str, data: bytes) -> None:
        checksum = base64.b64encode(hashlib.sha256(data).digest()).decode()
        self._call("upload", self.s3.put_object, Key=self.key(backup_id, relative), Body=data, ChecksumSHA256=checksum)

    # -- reading ----------------------------------------------------------------------------------
    def _objects(self, prefix: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every page of a listing under `prefix` (StoreError when the listing fails)."""
        try:
            yield from self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"listing s3://{self.bucket}/{prefix} failed: {exc}") from exc

    def _backup_ids(self) -> Iterator[str]:
        """The backup ids that have objects (with a manifest or not); `_…` prefixes are not backups."""
        for page in self._objects(self.prefix, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                backup_id = cp["Prefix"][len(self.prefix):].rstrip("/")
                if not backup_id.startswith("_"):
                    yield backup_id

    def list_backups(self) -> list[BackupRef]:
        """Complete backups (those with a manifest), oldest first."""
        refs = [BackupRef(b, backup_time(b)) for b in self._backup_ids() if self.exists(b, MANIFEST)]
        return sorted(refs, key=lambda r: r.backup_id)

    def list_orphans(self) -> list[Orphan]:
        """Backup ids whose objects have no manifest, oldest first. Prefixes that are not backup ids
        are never listed (nothing but a backup is ever deleted)."""
        out = []
        for backup_id in self._backup_ids():
            try:
                backup_time(backup_id)
            except ValueError:
                continue
            if self.exists(backup_id, MANIFEST):
                continue
            objects = [o for page in self._objects(self.key(backup_id, "")) for o in page.get("Contents", [])]
            if objects:
                out.append(Orphan(backup_id, len(objects), max(o["LastModified"] for o in objects)))
        return sorted(out, key=lambda o: o.backup_id)

    def exists(self, backup_id: str, relative: str) -> bool:
        try:
            self._call("head", self.s3.head_object, Key=self.key(backup_id, relative))
            return True
        except MissingObject:
            return False

    def head(self, backup_id: str, relative: str) -> int:
        """The object's size."""
        return int(self._call("head", self.s3.head_object, Key=self.key(backup_id, relative))["ContentLength"])

    def read_bytes(self, backup_id: str, relative: str) -> bytes:
        return self._open(self.key(backup_id, relative)).read()

    def stream(self, backup_id: str, relative: str) -> Any:
        """A file-like body, read in chunks (never the whole object in memory); a read that breaks
        or times out raises StoreError."""
        return self._open(self.key(backup_id, relative))

    def _open(self, key: str) -> _Body:
        return _Body(self._call("download", self.s3.get_object, Key=key)["Body"], f"s3://{self.bucket}/{key}")

    def iter_chunks(self, backup_id: str, relative: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The object's bytes as received, for a caller that hashes them itself (check_object).

        botocore >= 1.36 validates a stored `x-amz-checksum-sha256` on GetObject by hashing the whole body
        a second time (StreamingChecksumBody.read); the base class's read skips that second SHA-256 and
        still raises IncompleteReadError on a short body.
        """
        key = self.key(backup_id, relative)
        body = self._call("download", self.s3.get_object, Key=key)["Body"]
        try:
            while block := StreamingBody.read(body, chunk):
                yield block
        except _STREAM_ERRORS as exc:
            raise StoreError(f"reading s3://{self.bucket}/{key} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            body.close()

    def manifest(self, backup_id: str) -> tuple[bytes, str]:
        """(manifest bytes, signature)."""
        return self.read_bytes(backup_id, MANIFEST), self.read_bytes(backup_id, SIGNATURE).decode()

    def load_manifest(self, backup_id: str) -> Manifest:
        return Manifest.model_validate_json(self.read_bytes(backup_id, MANIFEST))

    # -- verification records and retention ------------------------------------------------------
    def record_verification(self, backup_id: str, result: dict[str, Any]) -> None:
        """Store a record (upkeep.backup.records.new_record): its name is its `verified_at`."""
        key = f"{self.prefix}_verifications/{backup_id}/{result['verified_at']}.json"
        self._call("upload", self.s3.put_object, Key=key, Body=json.dumps(result, default=str).encode())

    def _record_keys(self, backup_ids: list[str] | None) -> dict[str, list[str]]:
        """Each backup's verification record keys, newest first (one listing; names sort in time order)."""
        wanted = None if backup_ids is None else set(backup_ids)
        root = f"{self.prefix}_verifications/"
        listed = f"{root}{backup_ids[0]}/" if backup_ids is not None and len(set(backup_ids)) == 1 else root
        keys: dict[str, list[str]] = {}
        for page in self._objects(listed):
            for obj in page.get("Contents", []):
                backup_id = obj["Key"][len(root):].split("/", 1)[0]
                if wanted is None or backup_id in wanted:
                    keys.setdefault(backup_id, []).append(obj["Key"])
        return {b: sorted(k, reverse=True) for b, k in keys.items()}

    def _record(self, backup_id: str, key: str) -> dict[str, Any]:
        try:
            record: dict[str, Any] = json.loads(self._open(key).read())
            return record
        except ValueError:  # an unreadable record proves nothing: a failure
            return {"backup_id": backup_id, "ok": False, "verified_at": key.rsplit("/", 1)[-1].removesuffix(".json")}

    def latest_verifications(self, backup_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """The newest verification record of each backup that has one (of `backup_ids`, else all)."""
        if backup_ids == []:
            return {}
        return {b: self._record(b, keys[0]) for b, keys in self._record_keys(backup_ids).items()}

    def verification_statuses(self, backup_ids: list[str]) -> dict[str, Status]:
        """verified / failed / unverified of each backup (upkeep.backup.records.status): its records
        are read newest first, only until one settles it (a failure, or a thorough pass)."""
        if not backup_ids:
            return {}
        keys = self._record_keys(backup_ids)
        out: dict[str, Status] = {}
        for b in backup_ids:
            out[b] = status([])
            for key in keys.get(b, []):
                settled = verdict(self._record(b, key))
                if settled is not None:
                    out[b] = settled
                    break
        return out

    def verified_ok(self, backup_id: str) -> bool:
        """Is this backup verified: a run that read every object and restored it passed, none failed since?"""
        return self.verification_statuses([backup_id])[backup_id] == "verified"

    def delete_backup(self, backup_id: str) -> int:
        """Delete a backup: its manifest first (so it is never listed half-deleted), then the rest,
        then its verification records (not counted in the objects returned).
        A failed deletion raises StoreError naming the keys left; what is left has no manifest and
        is finished as an orphan by a later retention run."""
        self._call("delete", self.s3.delete_object, Key=self.key(backup_id, MANIFEST))
        keys = [o["Key"] for page in self._objects(self.key(backup_id, "")) for o in page.get("Contents", [])]
        self._delete_keys(keys)
        records = [o["Key"] for page in self._objects(f"{self.prefix}_verifications/{backup_id}/")
                   for o in page.get("Contents", [])]
        self._delete_keys(records)  # its verification records go with it, last
        return len(keys) + 1

    def delete_orphan(self, backup_id: str, before: datetime) -> int:
        """Delete an orphan's objects written before `before` (never one a backup still writes); none
        when the id has a manifest by now. The number deleted."""
        if self.exists(backup_id, MANIFEST):
            return 0
        keys = [o["Key"] for page in self._objects(self.key(backup_id, "")) for o in page.get("Contents", [])
                if o["LastModified"] < before]
        self._delete_keys(keys)
        return len(keys)

    def _delete_keys(self, keys: list[str]) -> None:
        """DeleteObjects in batches of 1000; the per-key errors it answers with raise StoreError."""
        failed: list[str] = []
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i:i + 1000]]
            answer = self._call("delete", self.s3.delete_objects, Delete={"Objects": batch, "Quiet": True})
            failed += [f"{e.get('Key', '?')} ({e.get('Code', '?')}: {e.get('Message', '')})" for e in answer.get("Errors", [])]
        if failed:
            shown = "; ".join(failed[:10]) + (f"; and {len(failed) - 10} more" if len(failed) > 10 else "")
            raise StoreError(f"delete in s3://{self.bucket} failed for {len(failed)} of {len(keys)} objects: {shown}")
