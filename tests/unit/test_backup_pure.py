"""Backups, the pure parts: retention, manifest signatures, BSON streams, recovery objectives."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import bson
import pytest

from upkeep.backup.dump import iter_bson
from upkeep.backup.manifest import FileEntry, backup_time, new_backup_id, sign, signature_ok, signature_problem
from upkeep.backup.retention import plan, to_keep
from upkeep.backup.store import BackupRef
from upkeep.backup.verify import completeness, freshness, sample
from upkeep.config.models import RetentionPolicy
from upkeep.decisions.recovery import recovery_verdict

T0 = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)


def refs_every(hours: int, count: int) -> list[BackupRef]:
    out = []
    for i in range(count):
        t = T0 - timedelta(hours=hours * i)
        out.append(BackupRef(new_backup_id(t), t))
    return out


def test_retention_grandfather_father_son() -> None:
    daily = refs_every(24, 400)  # one backup a day for 400 days
    keep = to_keep(daily, RetentionPolicy(last=1, daily=7, weekly=4, monthly=12))
    kept = sorted((r.created_at for r in daily if r.backup_id in keep), reverse=True)
    assert kept[:7] == [T0 - timedelta(days=i) for i in range(7)]  # the last 7 days
    assert len(keep) <= 7 + 4 + 12 and len(keep) >= 12
    assert min(kept) > T0 - timedelta(days=366)  # nothing older than a year survives
    all_verified = {r.backup_id: "verified" for r in daily}
    deleted = set(plan(daily, all_verified, RetentionPolicy(), T0).delete)
    assert deleted == {r.backup_id for r in daily} - to_keep(daily, RetentionPolicy())


def test_retention_keeps_the_last_n_of_one_day() -> None:
    same_day = refs_every(1, 5)
    policy = RetentionPolicy(last=3, daily=1, weekly=0, monthly=0)
    newest_three = {r.backup_id for r in same_day[:3]}
    assert to_keep(same_day, policy) == newest_three
    assert plan([], {}, policy, T0).delete == {}


def test_backup_ids_sort_by_time() -> None:
    a, b = new_backup_id(T0), new_backup_id(T0 + timedelta(seconds=1))
    assert a < b and backup_time(a) == T0


def test_manifest_signature() -> None:
    body = b'{"backup_id": "x"}'
    assert signature_ok(body, sign(body, b"key"), b"key")
    assert not signature_ok(body + b" ", sign(body, b"key"), b"key")
    assert not signature_ok(body, sign(body, b"key"), b"other")
    assert sign(body, None).startswith("sha256:") and sign(body, b"k").startswith("hmac-sha256:")


def test_iter_bson_reads_documents_and_refuses_truncation() -> None:
    docs = [bson.encode({"_id": i, "x": "y" * i}) for i in range(5)]
    assert list(iter_bson(io.BytesIO(b"".join(docs)))) == docs
    with pytest.raises(ValueError, match="truncated"):
        list(iter_bson(io.BytesIO(b"".join(docs)[:-3])))


def test_freshness_and_sampling() -> None:
    refs = refs_every(24, 3)
    assert freshness(refs, T0 + timedelta(hours=2), timedelta(hours=26)).ok
    stale = freshness(refs, T0 + timedelta(hours=30), timedelta(hours=26))
    assert not stale.ok and stale.message.endswith("is 30 h old, older than the allowed 26 h")
    assert not freshness([], T0, timedelta(hours=1)).ok
    entries = [FileEntry(key=f"k{i}", size=1, sha256="0" * 64) for i in range(20)]
    assert len(sample(entries, 0.25, seed=1)) == 5 and len(sample(entries, 1.0)) == 20
    assert len(sample(entries, 0.001)) == 1


def test_recovery_verdict() -> None:
    v = recovery_verdict(12.0, timedelta(hours=3), timedelta(minutes=5), timedelta(hours=26))
    assert v.ok and "RTO 12 s against a target of 5 min: PASS" in v.lines[0]
    late = recovery_verdict(400.0, timedelta(hours=30), timedelta(minutes=5), timedelta(hours=26))
    assert not late.rto_ok and not late.rpo_ok and "FAIL" in late.lines[1]


def test_completeness_names_what_is_missing() -> None:
    from upkeep.backup.manifest import CollectionEntry, ConfigFileEntry, Manifest

    f = FileEntry(key="k", size=1, sha256="0" * 64)
    manifest = Manifest(
        backup_id="b", environment="e", created_at=T0, completed_at=T0, source="s",
        collections=[CollectionEntry(database="em", name="events", count=1, content_sha256="x", data=f, metadata=f,
                                     indexes=["_id_"])],
        config_files=[ConfigFileEntry(host="h1", path="/etc/app.json", file=f)],
    )
    found = completeness(manifest, ["em.events", "em.users"], [("h1", "/etc/app.json"), ("h2", "/etc/app.json")])
    assert [(x.subject, x.ok) for x in found] == [("em.events", True), ("em.users", False), ("h1:/etc/app.json", True),
                                                 ("h2:/etc/app.json", False)]
    assert found[1].message == "required collection missing from the backup"


class _Chunks:
    """Just enough of a BackupStore for check_object: the stored bytes of each key."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def iter_chunks(self, backup_id: str, relative: str) -> Iterator[bytes]:
        data = self.objects[relative]
        yield from (data[i:i + 3] for i in range(0, len(data), 3))


def test_check_object_uses_blake3_when_recorded_and_sha256_for_older_manifests() -> None:
    import hashlib

    from blake3 import blake3

    from upkeep.backup.verify import check_object

    data = b"backup bytes"
    sha, b3 = hashlib.sha256(data).hexdigest(), blake3(data).hexdigest()
    store = _Chunks({"new": data, "old": data, "rotted": b"backup bytez"})
    new = FileEntry(key="new", size=len(data), sha256=sha, blake3=b3)
    assert check_object(store, "b", new).message == "12 B, blake3 digest matches"
    assert check_object(store, "b", FileEntry(key="old", size=len(data), sha256=sha)).message == "12 B, sha256 digest matches"
    bad = check_object(store, "b", FileEntry(key="rotted", size=len(data), sha256=sha, blake3=b3))
    assert not bad.ok and bad.message.startswith("checksum mismatch (blake3): manifest " + b3[:12])


def test_signature_problems_are_named() -> None:
    body = b'{"backup_id": "x"}'
    assert signature_problem(body, sign(body, b"key"), b"key") is None
    changed, after = body + b" ", "the manifest was changed after it was written"
    assert signature_problem(changed, sign(body, b"key"), b"key") == f"signature mismatch: {after}"
    assert signature_problem(changed, sign(body, None), None) == f"checksum mismatch: {after}"
    assert "no manifest key is configured" in signature_problem(body, sign(body, b"key"), None)  # type: ignore[operator]  # a str
    assert "written without a manifest key" in signature_problem(body, sign(body, None), b"key")  # type: ignore[operator]  # a str
    assert signature_problem(body, "hmac-sha256:é" + "0" * 63, b"key") is not None  # not ASCII: a mismatch, not a crash
    assert signature_problem(body, "md5:abc", b"key") == "unknown signature scheme 'md5'"


def test_scratch_names_say_when_and_what_and_stale_ones_are_found() -> None:
    from datetime import datetime, timedelta

    from upkeep.backup.verify import scratch_name, stale_scratch

    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    fresh = scratch_name("20261122T020000Z-abcd", now - timedelta(hours=2))
    old = scratch_name("20261122T020000Z-abcd", now - timedelta(days=2))
    assert fresh.startswith("upkeep_verify_20261123T000000_20261122T020000Z_abcd_") and len(fresh) <= 63
    legacy_old = "upkeep_verify_20261101T020000Z_ffff_a1b2c3"  # before run times were written: the backup's time
    legacy_recent = "upkeep_verify_20261123T013000Z_ffff_a1b2c3"
    names = [fresh, old, legacy_old, legacy_recent, "upkeep_verify_garbage", "eventmanager", "admin"]
    assert stale_scratch(names, now) == sorted([old, legacy_old])

