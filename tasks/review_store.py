"""Tasks that touch the object store for the reviews: charts, snapshots, the durable run records as evidence, the
compliance pack (upkeep.reviews.store: beside the run records, `s3.records` else the backups bucket)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger

from tasks._base import resources, step
from upkeep.backup.manifest import sign
from upkeep.errors import ConfigError
from upkeep.reviews.store import ReviewStore


def _store() -> ReviewStore:
    res = resources()
    store = res.review_store()
    if store is None:
        raise ConfigError(f"environments.{res.environment}.s3 is not configured: the reviews keep their charts, "
                          "snapshots and evidence packs beside the run records (s3.records, else s3.backups)")
    return store


@step("publish-charts", retries=2, cache=False)
def store_charts(routine: str, charts: dict[str, bytes]) -> dict[str, str]:
    """Each PNG (name → bytes) stored under the routine's reviews/<date>/ and linked by a presigned URL (7 days), what
    the run's image artifacts show."""
    store, day = _store(), datetime.now(UTC).strftime("%Y-%m-%d/%H%M%S")
    out = {}
    for name, png in charts.items():
        key = store.key(routine, f"charts/{day}/{name}.png")
        store.put(key, png, "image/png")
        out[name] = store.presigned(key)
    get_run_logger().info("%d chart(s) stored beside the run records", len(out))
    return out


@step("keep-snapshot", retries=2)
def keep_snapshot(routine: str, data: dict[str, Any]) -> str:
    """A review's snapshot as JSON under `<routine>/snapshots/<timestamp>.json`; the key (the next review's baseline)."""
    store = _store()
    key = store.key(routine, f"snapshots/{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json")
    store.put(key, json.dumps(data, sort_keys=True, default=str).encode(), "application/json")
    get_run_logger().info("snapshot kept at s3://%s/%s", store.bucket, key)
    return key


@step("last-snapshot", retries=1, cache=False)
def last_snapshot(routine: str) -> dict[str, Any] | None:
    """The newest snapshot a review of `routine` kept, or None before the first."""
    return _store().latest_json(routine, "snapshots/")


@step("evidence-records", retries=1, cache=False)
def evidence_records(routines: list[str], since: datetime) -> dict[str, list[dict[str, Any]]]:
    """routine → its durable run records since `since`, oldest first, each with where it is and the stored bytes'
    SHA-256 (what the evidence pack cites: it outlives Prefect's own database)."""
    res = resources()
    records = res.run_records()
    if records is None:
        return {r: [] for r in routines}
    out: dict[str, list[dict[str, Any]]] = {}
    for routine in routines:
        out[routine] = [{"record": json.loads(body), "bucket": records.bucket, "key": key,
                         "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)}
                        for key, body in records.stored(res.environment, routine, since)]
    get_run_logger().info("run records since %s: %s", f"{since:%Y-%m-%d}",
                          ", ".join(f"{r} {len(v)}" for r, v in out.items()))
    return out


@step("evidence-objects", retries=1, cache=False)
def evidence_objects(objects: list[tuple[str, str]]) -> dict[str, dict[str, Any] | None]:
    """`bucket/key` → the object's size and SHA-256 (as S3 keeps it, else of its bytes, read once), or None when it is
    gone."""
    store, out = _store(), {}
    for bucket, key in objects:
        found = store.head(bucket, key)
        if found is not None and found["sha256"] is None:
            body = store.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            found = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        out[f"{bucket}/{key}"] = found
    return out


@step("store-pack", retries=2)
def store_pack(keys: tuple[str, str, str], manifest: bytes, report: str) -> dict[str, str]:
    """The evidence pack, signed here with the environment's manifest key (backup.manifest_key: HMAC-SHA256, else a
    plain SHA-256 that detects corruption, not forgery): manifest, signature, the readable report; name →
    `s3://bucket/key sha256:…`."""
    store = _store()
    signature = sign(manifest, resources().manifest_key())
    out = {}
    for key, body, kind in ((keys[0], manifest, "application/json"), (keys[1], signature.encode(), "text/plain"),
                            (keys[2], report.encode(), "text/markdown")):
        out[key.rsplit("/", 1)[-1]] = f"s3://{store.bucket}/{key} sha256:{store.put(key, body, kind)}"
    get_run_logger().info("evidence pack stored: %s", ", ".join(out.values()))
    return out
