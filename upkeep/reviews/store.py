"""Where the reviews keep what outlives a Prefect run, beside the durable run records in S3 (`s3.records`, else the
backups bucket): inventory snapshots, charts, compliance packs, under `<prefix><environment>/reviews/<routine>/`."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from upkeep.errors import StoreError


class ReviewStore:
    def __init__(self, s3: Any, bucket: str, prefix: str, environment: str) -> None:
        self.s3, self.bucket, self.prefix, self.environment = s3, bucket, prefix, environment
        self._bucket_checked = False

    def _ensure_bucket(self) -> None:
        """The first write of a new location creates its bucket, as the run records do (S3 refuses a write to a bucket
        that is not there; SeaweedFS says AccessDenied)."""
        if self._bucket_checked:
            return
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                raise
            self.s3.create_bucket(Bucket=self.bucket)
        self._bucket_checked = True

    def key(self, routine: str, name: str) -> str:
        return f"{self.prefix}{self.environment}/reviews/{routine}/{name}"

    def put(self, key: str, body: bytes, content_type: str) -> str:
        """Write one object, its SHA-256 checked by S3; that checksum (hex)."""
        digest = hashlib.sha256(body).digest()
        try:
            self._ensure_bucket()
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                               ChecksumSHA256=base64.b64encode(digest).decode())
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"cannot write s3://{self.bucket}/{key}: {exc}") from exc
        return digest.hex()

    def get(self, key: str) -> bytes | None:
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                return None
            raise StoreError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot read s3://{self.bucket}/{key}: {exc}") from exc

    def keys(self, routine: str, under: str = "") -> list[str]:
        """Every key of a routine's objects (optionally under a sub-path), in key order (timestamps sort)."""
        out: list[str] = []
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.key(routine, under))
            for page in pages:
                out += [obj["Key"] for obj in page.get("Contents", [])]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return []
            raise StoreError(f"cannot list s3://{self.bucket}/{self.key(routine, under)}: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot list s3://{self.bucket}/{self.key(routine, under)}: {exc}") from exc
        return sorted(out)

    def latest_json(self, routine: str, under: str) -> dict[str, Any] | None:
        """The newest JSON object under a routine's sub-path (keys carry a sortable timestamp), or None."""
        found = [k for k in self.keys(routine, under) if k.endswith(".json")]
        body = self.get(found[-1]) if found else None
        return json.loads(body) if body is not None else None

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        """(sha256 hex when S3 kept one, size) of any object, or None when it is not there: evidence of what exists."""
        try:
            got = self.s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket", "NotFound"):
                return None
            raise StoreError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
        checksum = got.get("ChecksumSHA256")
        return {"size": int(got.get("ContentLength", 0)),
                "sha256": base64.b64decode(checksum).hex() if checksum and "-" not in checksum else None}

    def presigned(self, key: str, expires: timedelta = timedelta(days=7)) -> str:
        return str(self.s3.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                  ExpiresIn=int(expires.total_seconds())))
