"""BackupStore over an in-memory S3: checked deletes, orphans, verification records read newest first, read errors."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from upkeep.backup.records import new_record
from upkeep.backup.store import BackupStore, Orphan, StoreError

NOW = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
OLD = "20261110T020000Z-aaaa"
NEW = "20261121T020000Z-bbbb"


class _Raw(io.BytesIO):
    """A urllib3 response stand-in whose read fails after `fail_after` bytes."""

    def __init__(self, data: bytes, fail_after: int | None, error: Exception) -> None:
        super().__init__(data)
        self.fail_after, self.error = fail_after, error

    def read(self, size: int | None = -1) -> bytes:
        end = len(self.getbuffer()) if size is None or size < 0 else self.tell() + size
        if self.fail_after is not None and end > self.fail_after:
            raise self.error
        return super().read(size)


class FakeS3:
    """Just enough of boto3's S3 client; `refuse` keys fail in DeleteObjects, `broken` keys' bodies fail mid-read."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self.refuse: set[str] = set()
        self.broken: dict[str, Exception] = {}
        self.calls: list[tuple[str, Any]] = []

    def put(self, key: str, data: bytes = b"x", at: datetime = NOW - timedelta(days=10)) -> None:
        self.objects[key] = (data, at)

    def get_paginator(self, name: str) -> FakeS3:
        return self

    def paginate(self, Bucket: str, Prefix: str, Delimiter: str | None = None) -> Iterator[dict[str, Any]]:  # noqa: N803 - boto3's parameter names
        keys = sorted(k for k in self.objects if k.startswith(Prefix))
        if Delimiter:
            prefixes = sorted({Prefix + k[len(Prefix):].split(Delimiter)[0] + Delimiter
                               for k in keys if Delimiter in k[len(Prefix):]})
            keys = [k for k in keys if Delimiter not in k[len(Prefix):]]
            yield {"Contents": [self._obj(k) for k in keys], "CommonPrefixes": [{"Prefix": p} for p in prefixes]}
        else:
            yield {"Contents": [self._obj(k) for k in keys]}

    def _obj(self, key: str) -> dict[str, Any]:
        return {"Key": key, "Size": len(self.objects[key][0]), "LastModified": self.objects[key][1]}

    def head_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter names
        if Key not in self.objects:
            raise ClientError({"Error": {"Code": "404"}}, "HeadObject")
        return {"ContentLength": len(self.objects[Key][0])}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter names
        self.calls.append(("get", Key))
        data = self.head_object(Bucket, Key) and self.objects[Key][0]
        error = self.broken.get(Key)
        raw = _Raw(data, len(data) // 2 if error else None, error or Exception())
        return {"Body": StreamingBody(raw, len(data))}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **kwargs: Any) -> None:  # noqa: N803 - boto3's parameter names
        self.put(Key, Body, NOW)

    def delete_object(self, Bucket: str, Key: str) -> None:  # noqa: N803 - boto3's parameter names
        self.calls.append(("delete", Key))
        self.objects.pop(Key, None)

    def delete_objects(self, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 - boto3's parameter names
        keys = [o["Key"] for o in Delete["Objects"]]
        self.calls.append(("delete_objects", keys))
        for k in keys:
            if k not in self.refuse:
                self.objects.pop(k, None)
        return {"Errors": [{"Key": k, "Code": "AccessDenied", "Message": "Access Denied"} for k in keys if k in self.refuse]}


@pytest.fixture
def s3() -> FakeS3:
    s3 = FakeS3()
    for backup_id in (OLD, NEW):
        for rel in ("manifest.json", "manifest.sig", "app/orders.bson.gz", "app/orders.metadata.json"):
            s3.put(f"p/{backup_id}/{rel}")
    return s3


def record(store: BackupStore, backup_id: str, ok: bool, at: datetime, sample: float = 1.0) -> None:
    """One verification run's record (test restore done), stored as the flow stores it."""
    store.record_verification(backup_id, new_record(backup_id, ok, sample=sample, test_restore=True, at=at))


def test_delete_backup_raises_naming_the_keys_the_store_refused(s3: FakeS3) -> None:
    store = BackupStore(s3, "bucket", "p/")
    s3.refuse = {f"p/{OLD}/app/orders.bson.gz"}
    with pytest.raises(StoreError,
                       match=rf"failed for 1 of 3 objects: p/{OLD}/app/orders.bson.gz \(AccessDenied: Access Denied\)"):
        store.delete_backup(OLD)
    assert s3.calls[0] == ("delete", f"p/{OLD}/manifest.json")  # the manifest first: never listed half-deleted
    assert [r.backup_id for r in store.list_backups()] == [NEW]
    # what is left is an orphan, which retention finishes
    assert store.list_orphans() == [Orphan(OLD, 1, NOW - timedelta(days=10))]
    s3.refuse = set()
    assert store.delete_orphan(OLD, before=NOW - timedelta(days=1)) == 1
    assert store.list_orphans() == [] and not any(k.startswith(f"p/{OLD}/") for k in s3.objects)


def test_delete_backup_counts_what_it_deleted(s3: FakeS3) -> None:
    store = BackupStore(s3, "bucket", "p/")
    record(store, OLD, True, NOW)
    record(store, NEW, True, NOW)
    assert store.delete_backup(OLD) == 4
    assert not [k for k in s3.objects if k.startswith(f"p/_verifications/{OLD}/")]  # its records went with it
    assert [k for k in s3.objects if k.startswith(f"p/_verifications/{NEW}/")]
    del s3.objects[next(k for k in s3.objects if k.startswith(f"p/_verifications/{NEW}/"))]
    assert sorted(s3.objects) == sorted(f"p/{NEW}/{r}" for r in ("manifest.json", "manifest.sig", "app/orders.bson.gz",
                                                                 "app/orders.metadata.json"))


def test_orphans_are_backup_ids_without_a_manifest_and_recent_objects_stay(s3: FakeS3) -> None:
    store = BackupStore(s3, "bucket", "p/")
    s3.put("p/20261122T050000Z-cccc/app/orders.bson.gz", at=NOW - timedelta(days=2))
    s3.put("p/20261122T050000Z-cccc/app/users.bson.gz", at=NOW - timedelta(minutes=5))  # still being written
    s3.put("p/not-a-backup/readme.txt")
    s3.put("p/_verifications/x/1.json")
    assert store.list_orphans() == [Orphan("20261122T050000Z-cccc", 2, NOW - timedelta(minutes=5))]
    assert store.delete_orphan("20261122T050000Z-cccc", before=NOW - timedelta(days=1)) == 1
    assert "p/20261122T050000Z-cccc/app/users.bson.gz" in s3.objects and "p/not-a-backup/readme.txt" in s3.objects
    assert store.delete_orphan(NEW, before=NOW) == 0  # it has a manifest: not an orphan
    assert f"p/{NEW}/app/orders.bson.gz" in s3.objects


def test_verification_records_are_read_newest_first_until_one_settles_the_status(s3: FakeS3) -> None:
    store = BackupStore(s3, "bucket", "p/")
    t = NOW - timedelta(days=1)
    record(store, OLD, True, t)
    record(store, OLD, False, t + timedelta(hours=1))
    record(store, NEW, True, t, sample=0.5)
    assert not store.verified_ok(OLD)  # passed once, failed since
    assert not store.verified_ok(NEW)  # sampled
    assert store.verification_statuses([OLD, NEW, "20261122T000000Z-dddd"]) == {
        OLD: "failed", NEW: "unverified", "20261122T000000Z-dddd": "unverified"}
    record(store, NEW, True, t + timedelta(hours=2))
    s3.calls.clear()
    assert store.verified_ok(NEW)
    newest = f"p/_verifications/{NEW}/" + (t + timedelta(hours=2)).strftime("%Y%m%dT%H%M%S.%fZ") + ".json"
    assert [c for c in s3.calls if c[0] == "get"] == [("get", newest)]
    s3.put(f"p/_verifications/{NEW}/29991231T000000.000000Z.json", b"{not json")
    assert store.verification_statuses([NEW]) == {NEW: "failed"}  # an unreadable newest record proves nothing
    assert json.loads(s3.objects[f"p/_verifications/{OLD}/" + t.strftime("%Y%m%dT%H%M%S.%fZ") + ".json"][0])["mode"] == {
        "sample": 1.0, "test_restore": True}


def test_a_later_sampled_pass_keeps_a_backup_verified_and_does_not_clear_a_failure(s3: FakeS3) -> None:
    store = BackupStore(s3, "bucket", "p/")
    t = NOW - timedelta(days=3)
    record(store, OLD, True, t)
    record(store, OLD, True, t + timedelta(days=1), sample=0.1)
    record(store, NEW, True, t)
    record(store, NEW, False, t + timedelta(days=1), sample=0.1)
    record(store, NEW, True, t + timedelta(days=2), sample=0.1)
    s3.calls.clear()
    assert store.verification_statuses([OLD, NEW]) == {OLD: "verified", NEW: "failed"}
    assert len([c for c in s3.calls if c[0] == "get"]) == 4  # OLD: 2 records, NEW: the 2 newest; never the 5th


@pytest.mark.parametrize("error", [ReadTimeoutError(None, "/", "Read timed out."), ProtocolError("Connection broken")])
def test_a_read_that_breaks_mid_object_is_a_store_error(s3: FakeS3, error: Exception) -> None:
    store = BackupStore(s3, "bucket", "p/")
    s3.put(f"p/{OLD}/app/orders.bson.gz", b"0123456789" * 10)
    s3.broken[f"p/{OLD}/app/orders.bson.gz"] = error
    failed = rf"reading s3://bucket/p/{OLD}/app/orders.bson.gz failed: (ReadTimeoutError|ResponseStreamingError)"
    with pytest.raises(StoreError, match=failed):
        list(store.iter_chunks(OLD, "app/orders.bson.gz", chunk=10))
    with pytest.raises(StoreError, match="(ReadTimeoutError|ResponseStreamingError)"):
        body = store.stream(OLD, "app/orders.bson.gz")
        while body.read(10):
            pass
    with pytest.raises(StoreError):
        store.read_bytes(OLD, "app/orders.bson.gz")
