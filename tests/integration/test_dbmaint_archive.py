"""Archive-then-delete and stale-session removal on SecantusDB and SeaweedFS (upkeep/dbmaint/archive.py):
exactly the archived set deleted, nothing deleted when S3 fails or a chunk is corrupt, a run stopped
mid-delete finished by the next."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pymongo
import pytest
from bson import decode_all

from sandbox.faultproxy import FaultProxy
from sandbox.stack import SECRETS, Stack
from upkeep.dbmaint.archive import DataArchive, StaleRule, run_rule, verified_ids
from upkeep.errors import ArchiveError

pytestmark = pytest.mark.stack
NOW = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
BUCKET = "em-data-archive"
RULE = StaleRule("events", "ts", timedelta(days=365), {"status": "closed"})


def s3_client(url: str) -> Any:
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id=SECRETS["UPKEEP_SANDBOX_S3_KEY"],
                        aws_secret_access_key=SECRETS["UPKEEP_SANDBOX_S3_SECRET"], config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def db(stack: Stack) -> Iterator[Any]:
    """A database of its own: 500 events over two years (every 4th still open), and sessions."""
    client: Any = pymongo.MongoClient(stack.mongo_uri, tz_aware=True)
    client.drop_database("upkeep_archive_test")
    d = client["upkeep_archive_test"]
    d.events.insert_many([{"title": f"event {i}", "status": "open" if i % 4 == 0 else "closed",
                           "ts": NOW - timedelta(days=2 * i), "body": "x" * (i % 50)} for i in range(500)])
    d.sessions.insert_many([{"user": i, "expires": NOW + timedelta(hours=12 - i)} for i in range(40)])
    yield d
    client.drop_database("upkeep_archive_test")
    client.close()


@pytest.fixture
def archive(stack: Stack) -> Iterator[DataArchive]:
    s3 = s3_client(stack.s3_url)
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    a = DataArchive(s3, BUCKET, "archive/", "test")
    yield a
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for o in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=o["Key"])


def stale(db: Any) -> list[dict[str, Any]]:
    return list(db.events.find(RULE.query(NOW), sort=[("_id", 1)]))


def test_stale_sessions_removed_exactly_per_rule_and_a_dry_run_changes_nothing(db: Any) -> None:
    rule = StaleRule("sessions", "expires", timedelta(hours=1), {}, archive=False)  # expired over an hour ago
    expected = {s["_id"] for s in db.sessions.find({"expires": {"$lt": NOW - timedelta(hours=1)}})}
    assert len(expected) == 26  # expires from 12 h ahead to 27 h ago
    dry = run_rule(db.sessions, rule, None, now=NOW, archive_id="dry", dry_run=True, batch=10)
    assert (dry.matching, dry.deleted) == (26, 0) and db.sessions.count_documents({}) == 40
    result = run_rule(db.sessions, rule, None, now=NOW, archive_id="r1", dry_run=False, batch=10)
    assert result.deleted == 26 and "26 deleted (not archived" in result.describe()
    assert not expected & {s["_id"] for s in db.sessions.find()} and db.sessions.count_documents({}) == 14
    again = run_rule(db.sessions, rule, None, now=NOW, archive_id="r2", dry_run=False, batch=10)
    assert (again.matching, again.deleted) == (0, 0)  # idempotent


def test_the_archive_holds_exactly_what_was_deleted(db: Any, archive: DataArchive) -> None:
    before = stale(db)
    assert len(before) == 238  # closed and over 365 days old
    dry = run_rule(db.events, RULE, archive, now=NOW, archive_id="dry", dry_run=True)
    assert dry.matching == 238 and db.events.count_documents({}) == 500
    assert archive.manifests("upkeep_archive_test", "events") == []
    result = run_rule(db.events, RULE, archive, now=NOW, archive_id="20261206T030000Z", dry_run=False, chunk_docs=100)
    assert (result.archived, result.deleted) == (238, 238) and stale(db) == []
    assert db.events.count_documents({}) == 262  # the open ones and the recent ones stay
    (manifest,) = archive.manifests("upkeep_archive_test", "events")
    assert manifest["status"] == "deleted" and manifest["documents"] == manifest["deleted"] == 238
    assert [c["documents"] for c in manifest["chunks"]] == [100, 100, 38]
    # re-read here, independently of Upkeep: gzip'd BSON (mongorestore's format), hashes as the manifest says
    archived = []
    for c in manifest["chunks"]:
        packed = archive.get(c["key"])
        assert hashlib.sha256(packed).hexdigest() == c["sha256"]
        archived += decode_all(gzip.decompress(packed), codec_options=db.codec_options)
    assert archived == before  # every field of every deleted document, in _id order


def test_s3_failing_mid_archive_deletes_nothing(stack: Stack, db: Any) -> None:
    with FaultProxy(stack.s3_url, fail=("PUT", r"chunk-000002")) as proxy:
        flaky = DataArchive(s3_client(proxy.url), BUCKET, "archive/", "test")
        with pytest.raises(ArchiveError, match="upload of .*chunk-000002.* failed"):
            run_rule(db.events, RULE, flaky, now=NOW, archive_id="a1", dry_run=False, chunk_docs=100)
    assert len(stale(db)) == 238  # nothing deleted
    assert flaky.manifests("upkeep_archive_test", "events") == []  # no manifest: the next run starts afresh


class StopAfterFirstDelete:
    """The real collection, with the run stopped (as a killed worker would be) after its first delete batch."""

    def __init__(self, coll: Any) -> None:
        self.coll, self.deletes = coll, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.coll, name)

    def delete_many(self, *args: Any, **kwargs: Any) -> Any:
        if self.deletes:
            raise KeyboardInterrupt("worker killed")
        self.deletes += 1
        return self.coll.delete_many(*args, **kwargs)


def test_a_run_stopped_mid_delete_is_finished_exactly_by_the_next(db: Any, archive: DataArchive) -> None:
    before = stale(db)
    with pytest.raises(KeyboardInterrupt):
        run_rule(StopAfterFirstDelete(db.events), RULE, archive, now=NOW, archive_id="a1", dry_run=False, batch=50)
    assert len(stale(db)) == 238 - 50
    (manifest,) = archive.manifests("upkeep_archive_test", "events")
    assert manifest["status"] == "archived"
    db.events.insert_one({"title": "new stale one", "status": "closed", "ts": NOW - timedelta(days=900)})
    # the next run (with a later clock: the rule's cutoff moved) first finishes a1 exactly, then archives what is new
    result = run_rule(db.events, RULE, archive, now=NOW + timedelta(days=1), archive_id="a2", dry_run=False, batch=50)
    assert result.resumed == 238 - 50 and stale(db) == []
    first, second = archive.manifests("upkeep_archive_test", "events")
    assert (first["status"], first["deleted"]) == ("deleted", 238 - 50)
    assert [d["_id"] for d in before] == [i for chunk in verified_ids(archive, first) for i in chunk]
    assert second["documents"] >= 1 and second["status"] == "deleted"


def test_a_corrupt_chunk_stops_the_delete(db: Any, archive: DataArchive) -> None:
    with pytest.raises(KeyboardInterrupt):
        run_rule(StopAfterFirstDelete(db.events), RULE, archive, now=NOW, archive_id="a1", dry_run=False, batch=50,
                 chunk_docs=100)
    (manifest,) = archive.manifests("upkeep_archive_test", "events")
    key = manifest["chunks"][1]["key"]
    archive.s3.put_object(Bucket=BUCKET, Key=key, Body=archive.get(key)[:-10] + b"corrupted!")
    left = len(stale(db))
    with pytest.raises(ArchiveError, match="chunk-000002.bson.gz: SHA-256 does not match the manifest: nothing deleted"):
        run_rule(db.events, RULE, archive, now=NOW, archive_id="a2", dry_run=False)
    assert len(stale(db)) == left  # not one more document deleted
    assert json.loads(archive.get(manifest["folder"] + "manifest.json"))["status"] == "archived"
