"""Prefect result storage in S3, for runs that may resume on another machine (workers): a retried run finds the
results of its completed steps wherever it runs, and reuses them instead of repeating the steps.

A Prefect block whose fields name *where* (bucket, prefix, endpoint) and *which secret* (`env:` / `block:` references,
resolved in the run's process by upkeep.config.secrets — the keys themselves are never stored in the block). One
block per environment, `upkeep-results-<environment>`, saved from the inventory by `upkeep results-block`; the
deployments of prefect.yaml name it (PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK in their job variables).
"""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from prefect._internal.compatibility.async_dispatch import async_dispatch
from prefect.filesystems import WritableFileSystem
from pydantic import Field, PrivateAttr

from upkeep.config.secrets import resolve_secret
from upkeep.errors import StoreError

SLUG = "upkeep-s3-results"


def block_name(environment: str) -> str:
    """`upkeep-results-production`: the result storage block of an environment."""
    return f"upkeep-results-{environment}"


def block_reference(environment: str) -> str:
    """What PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK names: `upkeep-s3-results/upkeep-results-production`."""
    return f"{SLUG}/{block_name(environment)}"


class S3ResultStorage(WritableFileSystem):
    """Task and flow results as S3 objects under `prefix` (boto3; SeaweedFS, MinIO or AWS)."""

    _block_type_name = "Upkeep S3 result storage"
    _block_type_slug = SLUG
    _description = "Prefect results in S3; credentials as env:/block: references, resolved where the run executes."

    bucket: str = Field(description="the bucket (created on first write when missing)")
    prefix: str = Field("", description="key prefix, e.g. event-manager/_results/production/")
    endpoint_url: str | None = Field(None, description="S3 endpoint (default: AWS)")
    region: str = "us-east-1"
    access_key_id: str | None = Field(None, description="a secret reference (env:NAME or block:NAME), never the key")
    secret_access_key: str | None = Field(None, description="a secret reference (env:NAME or block:NAME)")
    _client: Any = PrivateAttr(None)
    _bucket_checked: bool = PrivateAttr(False)

    def s3(self) -> Any:
        if self._client is None:
            import boto3

            key_id = secret = None  # None: boto3's own credential chain
            if self.access_key_id and self.secret_access_key:
                key_id = resolve_secret(self.access_key_id).get_secret_value()
                secret = resolve_secret(self.secret_access_key).get_secret_value()
            self._client = boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                                        aws_access_key_id=key_id, aws_secret_access_key=secret)
        return self._client

    def key(self, path: str) -> str:
        return f"{self.prefix}{path.lstrip('/')}"

    def read(self, path: str) -> bytes:
        try:
            return bytes(self.s3().get_object(Bucket=self.bucket, Key=self.key(path))["Body"].read())
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"result s3://{self.bucket}/{self.key(path)} not readable: {exc}") from exc

    def write(self, path: str, content: bytes) -> None:
        try:
            if not self._bucket_checked:
                try:
                    self.s3().head_bucket(Bucket=self.bucket)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                        raise
                    self.s3().create_bucket(Bucket=self.bucket)
                self._bucket_checked = True
            self.s3().put_object(Bucket=self.bucket, Key=self.key(path), Body=content)
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"result s3://{self.bucket}/{self.key(path)} not written: {exc}") from exc

    # Prefect calls these both ways: awaited, and with `_sync=True` from sync code (ResultStore.write/exists, which
    # tasks/_base.py's Checkpoints use); async_dispatch picks the implementation, as prefect.filesystems' blocks do.
    async def aread_path(self, path: str) -> bytes:
        return await asyncio.to_thread(self.read, path)

    @async_dispatch(aread_path)
    def read_path(self, path: str) -> bytes:  # type: ignore[override]  # sync or async, as Prefect's own blocks
        return self.read(path)

    async def awrite_path(self, path: str, content: bytes) -> str:
        await asyncio.to_thread(self.write, path, content)
        return path

    @async_dispatch(awrite_path)
    def write_path(self, path: str, content: bytes) -> str:  # type: ignore[override]
        self.write(path, content)
        return path
