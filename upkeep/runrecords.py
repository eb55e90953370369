"""Durable run records: one small JSON object per routine run in S3 (routine, environment, Prefect
flow run id, times, outcome, a checksum of its report), written when the run ends and never
changed. They outlive the Prefect database's retention, so a compliance audit can cite a DR test
or an approval whose flow run has long been pruned. Keys sort by time within a routine:
`<prefix><environment>/<routine>/<YYYY>/<MM>/<DD>/<started>-<flow run id>.json`."""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from upkeep.errors import StoreError
from upkeep.report import RoutineReport

TIME_FORMAT = "%Y%m%dT%H%M%SZ"


def run_record(report: RoutineReport, flow_run_id: str, ended_at: datetime | None = None, *,
               failed: bool = False) -> dict[str, Any]:
    """The record of one run, from its report (pure); `failed`: the run ended by an exception, whatever its
    outcome line says ("stopped before execute: …")."""
    ended = (ended_at or datetime.now(UTC)).astimezone(UTC)
    outcome = report.outcome
    status = ("failed" if failed or outcome.startswith("failed") else "skipped" if outcome.startswith("skipped")
              else "completed")
    text = report.markdown()
    return {"routine": report.routine, "environment": report.environment, "flow_run_id": flow_run_id,
            "started_at": report.started_at.astimezone(UTC).isoformat(timespec="seconds"),
            "ended_at": ended.isoformat(timespec="seconds"), "status": status, "outcome": outcome[:500],
            "dry_run": report.dry_run, "steps": report.counts(),
            "report_sha256": hashlib.sha256(text.encode()).hexdigest(), "report_bytes": len(text.encode()),
            **({"facts": report.facts} if report.facts else {})}


def record_key(prefix: str, record: dict[str, Any]) -> str:
    started = datetime.fromisoformat(record["started_at"])
    return (f"{prefix}{record['environment']}/{record['routine']}/{started:%Y/%m/%d}/"
            f"{started.strftime(TIME_FORMAT)}-{record['flow_run_id']}.json")


class RunRecordStore:
    """Run records in one S3 location (bucket and prefix)."""

    def __init__(self, s3: Any, bucket: str, prefix: str = "") -> None:
        self.s3, self.bucket, self.prefix = s3, bucket, prefix
        self._bucket_checked = False

    def put(self, record: dict[str, Any]) -> str:
        """Write one record (its SHA-256 checked by S3); the key."""
        key = record_key(self.prefix, record)
        body = json.dumps(record, sort_keys=True).encode()
        try:
            if not self._bucket_checked:  # the first record of a new location creates its bucket, as backups do
                try:
                    self.s3.head_bucket(Bucket=self.bucket)
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
                        raise  # denied, or anything else: said as it is, not as a bucket to create
                    self.s3.create_bucket(Bucket=self.bucket)
                self._bucket_checked = True
            self._put(key, body)
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"run record not written to s3://{self.bucket}/{key}: {exc}") from exc
        return key

    def _put(self, key: str, body: bytes) -> None:
        checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()  # checked by S3 against the bytes it got
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", ChecksumSHA256=checksum)

    def list(self, environment: str, routine: str) -> list[dict[str, Any]]:
        """Every record of a routine in an environment, oldest first."""
        return [json.loads(body) for _key, body in self.stored(environment, routine)]

    def stored(self, environment: str, routine: str, since: datetime | None = None) -> builtins.list[tuple[str, bytes]]:
        """(key, the stored bytes) of every record of a routine, oldest first (evidence cites the key and the bytes'
        checksum); `since`: only records whose day is not before it (the key's date path)."""
        out: builtins.list[tuple[str, bytes]] = []
        first = f"{self.prefix}{environment}/{routine}/{since:%Y/%m/%d}/" if since is not None else ""
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}{environment}/{routine}/", **({"StartAfter": first} if first else {}))
            for page in pages:
                for obj in page.get("Contents", []):
                    if obj["Key"] >= first:
                        out.append((obj["Key"], bytes(self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])["Body"].read())))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                return []  # no record written there yet
            raise StoreError(f"run records of {routine} on {environment} not readable: {exc}") from exc
        except BotoCoreError as exc:
            raise StoreError(f"run records of {routine} on {environment} not readable: {exc}") from exc
        return out
