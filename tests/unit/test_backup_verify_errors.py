"""Verification reports corrupt gzip data and broken S3 streams as failed findings, never as crashes."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Iterator
from typing import Any

import bson
import pytest
from botocore.exceptions import ReadTimeoutError, ResponseStreamingError
from urllib3.exceptions import ProtocolError

from upkeep.backup.manifest import CollectionEntry, FileEntry, Manifest
from upkeep.backup.verify import check_object, restore

DOCS = [bson.encode({"_id": i, "x": "y" * 50}) for i in range(100)]
DUMP = gzip.compress(b"".join(DOCS), mtime=0)
META = b'{"collectionName": "orders", "indexes": [{"key": {"_id": 1}, "name": "_id_", "v": 2}]}'
ENTRY = FileEntry(key="app/orders.bson.gz", size=len(DUMP), sha256=hashlib.sha256(DUMP).hexdigest())


class _Breaking:
    """A body that hands out `good` bytes, then raises `error`."""

    def __init__(self, good: bytes, error: Exception) -> None:
        self.data, self.error = io.BytesIO(good), error

    def read(self, size: int = -1) -> bytes:
        chunk = self.data.read(size)
        if not chunk:
            raise self.error
        return chunk

    def close(self) -> None:
        pass


class _Store:
    """Objects by key; `error` is raised by a read after the first bytes."""

    def __init__(self, objects: dict[str, bytes], error: Exception | None = None) -> None:
        self.objects, self.error = objects, error

    def iter_chunks(self, backup_id: str, relative: str) -> Iterator[bytes]:
        data = self.objects[relative]
        yield data[:10]
        if self.error:
            raise self.error
        yield data[10:]

    def stream(self, backup_id: str, relative: str) -> Any:
        data = self.objects[relative]
        return _Breaking(data[: len(data) // 2], self.error) if self.error else io.BytesIO(data)

    def read_bytes(self, backup_id: str, relative: str) -> bytes:
        return self.objects[relative]


STREAM_ERRORS = [ReadTimeoutError(endpoint_url="http://s3"), ResponseStreamingError(error=ProtocolError("Connection broken"))]


@pytest.mark.parametrize("error", STREAM_ERRORS, ids=["read-timeout", "response-streaming"])
def test_check_object_reports_a_broken_stream(error: Exception) -> None:
    found = check_object(_Store({ENTRY.key: DUMP}, error), "b", ENTRY)  # type: ignore[arg-type]  # a stand-in store
    assert not found.ok and found.subject == ENTRY.key
    assert found.message.startswith(f"cannot read: {type(error).__name__}: ")


class _Client:
    """A MongoClient stand-in: one collection that accepts whatever is inserted; dropped databases recorded."""

    def __init__(self) -> None:
        self.inserted, self.dropped = 0, []

    def get_database(self, name: str, **kwargs: Any) -> _Client:
        return self

    def get_collection(self, name: str) -> _Client:
        return self

    def __getitem__(self, name: str) -> _Client:
        return self

    def insert_many(self, docs: list[Any], ordered: bool = True) -> None:
        self.inserted += len(docs)

    def drop_database(self, name: str) -> None:
        self.dropped.append(name)


def manifest(dump: bytes) -> Manifest:
    data = FileEntry(key="app/orders.bson.gz", size=len(dump), sha256=hashlib.sha256(dump).hexdigest())
    meta = FileEntry(key="app/orders.metadata.json", size=len(META), sha256=hashlib.sha256(META).hexdigest())
    entry = CollectionEntry(database="app", name="orders", count=len(DOCS), data=data, metadata=meta, indexes=["_id_"],
                            content_sha256=hashlib.sha256(b"".join(DOCS)).hexdigest())
    return Manifest(backup_id="20261122T020000Z-abcd", environment="e", created_at="2026-11-22T02:00:00Z",
                    completed_at="2026-11-22T02:01:00Z", source="s", collections=[entry])


def test_restore_reports_corrupt_deflate_data() -> None:
    corrupt = DUMP[:10] + b"\xff" * 40 + DUMP[50:]  # a valid gzip header, then an invalid deflate block: zlib.error
    client = _Client()
    result = restore(client, _Store({"app/orders.bson.gz": corrupt, "app/orders.metadata.json": META}), manifest(corrupt),
                     batch=10)
    assert [(f.ok, f.check) for f in result.findings] == [(False, "restore")]
    assert result.findings[0].message.startswith("restore failed: error: Error -3 while decompressing data")
    assert len(client.dropped) == 1  # the scratch database is dropped all the same


@pytest.mark.parametrize("error", STREAM_ERRORS, ids=["read-timeout", "response-streaming"])
def test_restore_reports_a_stream_that_breaks_mid_object(error: Exception) -> None:
    client = _Client()
    result = restore(client, _Store({"app/orders.bson.gz": DUMP, "app/orders.metadata.json": META}, error), manifest(DUMP),
                     batch=10)
    assert [(f.ok, f.check) for f in result.findings] == [(False, "restore")]
    assert result.findings[0].message.startswith(f"restore failed: {type(error).__name__}: ")
    assert len(client.dropped) == 1


def test_a_failed_bulk_insert_is_reported_by_codes_and_counts_never_its_documents() -> None:
    from pymongo.errors import BulkWriteError

    class _Refusing(_Client):
        def insert_many(self, docs: list[Any], ordered: bool = True) -> None:
            raise BulkWriteError({"nInserted": 7, "writeErrors": [
                {"index": 0, "code": 11000, "errmsg": "E11000 duplicate key: { email: \"ann@example.com\" }",
                 "op": {"_id": 1, "email": "ann@example.com", "card": "4111 1111 1111 1111"}}]})

    client = _Refusing()
    result = restore(client, _Store({"app/orders.bson.gz": DUMP, "app/orders.metadata.json": META}), manifest(DUMP), batch=10)
    (finding,) = result.findings
    assert finding.message == "restore failed: BulkWriteError: 1 write error(s), codes 11000; 7 inserted"
    assert "example.com" not in finding.message and "4111" not in finding.message
    assert len(client.dropped) == 1


def test_the_load_batches_by_bytes_as_well_as_by_count() -> None:
    from upkeep.backup.verify import _load

    big = [bson.encode({"_id": i, "blob": b"x" * 4000}) for i in range(20)]  # ~4 KB each
    dump = gzip.compress(b"".join(big), mtime=0)

    class _Batches(_Client):
        def __init__(self) -> None:
            super().__init__()
            self.sizes: list[int] = []

        def insert_many(self, docs: list[Any], ordered: bool = True) -> None:
            self.sizes.append(len(docs))

    target = _Batches()
    assert _load(_Store({"k": dump}), "b", "k", target, batch=1000, batch_bytes=10_000) == 20  # type: ignore[arg-type]  # stand-in
    assert target.sizes == [3] * 6 + [2]  # 3 documents reach 10 kB; never 1000 at once

