"""Backups in an S3 bucket: `<prefix><backup_id>/…` objects, manifest written last.

Only backups with a manifest are listed; verification results live apart, under
`<prefix>_verifications/`, so checking a backup never changes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from botocore.exceptions import BotoCoreError, ClientError
from botocore.response import StreamingBody

from upkeep.backup.manifest import MANIFEST, SIGNATURE, Manifest, backup_time
from upkeep.errors import UpkeepError

CHUNK = 1024 * 1024
SINGLE_PUT_LIMIT = 256 * 1024 * 1024


class StoreError(UpkeepError):
    """The object store failed or refused an operation."""


class MissingObject(StoreError):
    """An object the manifest names is not in the store."""


@dataclass(frozen=True)
class BackupRef:
    backup_id: str
    created_at: datetime


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
    def list_backups(self) -> list[BackupRef]:
        """Complete backups (those with a manifest), oldest first."""
        refs = []
        paginator = self.s3.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix, Delimiter="/"):
                for cp in page.get("CommonPrefixes", []):
                    backup_id = cp["Prefix"][len(self.prefix):].rstrip("/")
                    if backup_id.startswith("_"):
                        continue
                    if self.exists(backup_id, MANIFEST):
                        refs.append(BackupRef(backup_id, backup_time(backup_id)))
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(f"listing s3://{self.bucket}/{self.prefix} failed: {exc}") from exc
        return sorted(refs, key=lambda r: r.backup_id)

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
        return self._call("download", self.s3.get_object, Key=self.key(backup_id, relative))["Body"].read()

    def stream(self, backup_id: str, relative: str) -> Any:
        """A file-like body, read in chunks (never the whole object in memory)."""
        return self._call("download", self.s3.get_object, Key=self.key(backup_id, relative))["Body"]

    def iter_chunks(self, backup_id: str, relative: str, chunk: int = CHUNK) -> Iterator[bytes]:
        """The object's bytes as received, for a caller that hashes them itself (check_object).

        botocore >= 1.36 validates a stored `x-amz-checksum-sha256` on GetObject by hashing the whole body
        a second time (StreamingChecksumBody.read); the base class's read skips that second SHA-256 and
        still raises IncompleteReadError on a short body.
        """
        body = self.stream(backup_id, relative)
        try:
            while block := StreamingBody.read(body, chunk):
                yield block
        finally:
            body.close()

    def manifest(self, backup_id: str) -> tuple[bytes, str]:
        """(manifest bytes, signature)."""
        return self.read_bytes(backup_id, MANIFEST), self.read_bytes(backup_id, SIGNATURE).decode()

    def load_manifest(self, backup_id: str) -> Manifest:
        return Manifest.model_validate_json(self.read_bytes(backup_id, MANIFEST))

    # -- verification records and retention ------------------------------------------------------
    def record_verification(self, backup_id: str, result: dict[str, Any]) -> None:
        key = f"{self.prefix}_verifications/{backup_id}/{result['verified_at']}.json"
        self._call("upload", self.s3.put_object, Key=key, Body=json.dumps(result, default=str).encode())

    def verified_ok(self, backup_id: str) -> bool:
        """Has any verification of this backup passed?"""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{self.prefix}_verifications/{backup_id}/")
        for page in pages:
            for obj in sorted(page.get("Contents", []), key=lambda o: o["Key"], reverse=True):
                record = json.loads(self._call("download", self.s3.get_object, Key=obj["Key"])["Body"].read())
                if record.get("ok"):
                    return True
        return False

    def delete_backup(self, backup_id: str) -> int:
        """Delete a backup: its manifest first (so it is never listed half-deleted), then the rest."""
        self._call("delete", self.s3.delete_object, Key=self.key(backup_id, MANIFEST))
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.key(backup_id, "")):
            keys += [{"Key": o["Key"]} for o in page.get("Contents", [])]
        for i in range(0, len(keys), 1000):
            self._call("delete", self.s3.delete_objects, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
        return len(keys) + 1
