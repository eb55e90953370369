"""Index metadata keeps a compound index's key order; the restore check compares keys in order and options."""

from __future__ import annotations

import hashlib
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from bson.son import SON

from upkeep.backup.dump import index_metadata, parse_index_metadata
from upkeep.backup.manifest import CollectionEntry, FileEntry
from upkeep.backup.verify import _compare, index_findings, index_spec

ID = SON([("v", 2), ("key", SON([("_id", 1)])), ("name", "_id_")])
# not alphabetical: sorting the key document gives {createdAt: -1, status: 1}, another index
STATUS = SON([("v", 2), ("key", SON([("status", 1), ("createdAt", -1)])), ("name", "status_1_createdAt_-1")])
EMAIL = SON([("v", 2), ("key", SON([("email", 1)])), ("name", "email_1"), ("unique", True), ("sparse", True)])
TTL = SON([("v", 2), ("key", SON([("seen", 1)])), ("name", "seen_1"), ("expireAfterSeconds", 3600),
           ("partialFilterExpression", SON([("kind", SON([("$eq", "temp")])), ("seen", SON([("$exists", True)]))]))])


class _Collection:
    """What index_metadata reads of a pymongo collection: its name and listIndexes' SON documents."""

    def __init__(self, indexes: list[SON], name: str = "orders") -> None:
        self.indexes, self.name = indexes, name

    def list_indexes(self) -> list[SON]:
        return list(self.indexes)


def test_index_metadata_keeps_the_order_of_compound_index_keys() -> None:
    parsed = parse_index_metadata(index_metadata(_Collection([ID, STATUS, EMAIL, TTL])))
    by_name = {ix["name"]: ix for ix in parsed}
    assert list(by_name["status_1_createdAt_-1"]["key"].items()) == [("status", 1), ("createdAt", -1)]
    assert by_name["email_1"]["unique"] is True and by_name["email_1"]["sparse"] is True
    assert by_name["seen_1"]["expireAfterSeconds"] == 3600
    assert list(by_name["seen_1"]["partialFilterExpression"]) == ["kind", "seen"]


def test_index_metadata_bytes_are_deterministic() -> None:
    """The same indexes give the same bytes (the manifest records the file's digest), whatever
    order the server lists an index's options in; the key order is what it is."""
    shuffled = SON([("sparse", True), ("name", "email_1"), ("unique", True), ("key", SON([("email", 1)])), ("v", 2)])
    a = index_metadata(_Collection([ID, STATUS, EMAIL]))
    assert a == index_metadata(_Collection([ID, STATUS, EMAIL]))
    assert a == index_metadata(_Collection([ID, STATUS, shuffled]))
    assert b'"key": {"status": 1, "createdAt": -1}' in a


def test_restore_check_names_a_reordered_compound_index() -> None:
    reordered = SON([("v", 2), ("key", SON([("createdAt", -1), ("status", 1)])), ("name", "status_1_createdAt_-1")])
    found = index_findings("app.orders", [dict(ID), dict(STATUS)], [ID, reordered])
    assert [(f.ok, f.message) for f in found] == [
        (False, "index status_1_createdAt_-1 keys differ: "
                "metadata {status: 1, createdAt: -1}, restored {createdAt: -1, status: 1}")]
    ok = index_findings("app.orders", [dict(ID), dict(STATUS)], [ID, STATUS])
    assert [f.ok for f in ok] == [True] and "2 index definitions" in ok[0].message


def test_restore_check_compares_index_options() -> None:
    plain_email = SON([("v", 2), ("key", SON([("email", 1)])), ("name", "email_1"), ("sparse", True)])
    other_ttl = SON([*((k, v) for k, v in TTL.items() if k not in ("expireAfterSeconds", "partialFilterExpression")),
                     ("expireAfterSeconds", 60), ("partialFilterExpression", SON([("kind", SON([("$eq", "temp")]))]))])
    found = index_findings("app.orders", [dict(EMAIL), dict(TTL)], [plain_email, other_ttl])
    assert [f.message for f in found] == [
        "index email_1 options differ: unique: metadata True, restored None",
        "index seen_1 options differ: expireAfterSeconds: metadata 3600, restored 60, partialFilterExpression: "
        "metadata {'kind': {'$eq': 'temp'}, 'seen': {'$exists': True}}, restored {'kind': {'$eq': 'temp'}}"]
    # a false unique/sparse is no option; SON and dict, int and float directions compare alike;
    # v/ns/background are bookkeeping
    same = SON([("v", 1), ("key", SON([("email", 1.0)])), ("name", "email_1"), ("unique", True), ("sparse", True),
                ("hidden", False), ("background", True), ("ns", "app.orders")])
    assert index_spec(same) == index_spec(parse_index_metadata(index_metadata(_Collection([EMAIL])))[0])
    assert [f.ok for f in index_findings("app.orders", [dict(EMAIL)], [same])] == [True]


class _Store:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def read_bytes(self, backup_id: str, relative: str) -> bytes:
        return self.objects[relative]


class _Target:
    """A collection to restore into: its documents, and the indexes createIndexes was given, as listIndexes shows them."""

    def __init__(self, docs: list[RawBSONDocument]) -> None:
        self.docs, self.indexes = docs, [ID]

    def find(self, *args: Any, **kwargs: Any) -> _Target:
        return self

    def hint(self, *args: Any) -> list[RawBSONDocument]:
        return self.docs

    def create_indexes(self, models: list[Any]) -> None:
        self.indexes += [SON([("v", 2), *m.document.items()]) for m in models]

    def list_indexes(self) -> list[SON]:
        return list(self.indexes)


def test_restore_builds_a_compound_index_in_the_source_key_order() -> None:
    """Source indexes → metadata → restore: the restored index has the source's key order and options."""
    meta = index_metadata(_Collection([ID, STATUS, EMAIL, TTL]))
    docs = [RawBSONDocument(bson.encode({"_id": i, "status": "new"})) for i in range(3)]
    f = FileEntry(key="app/orders.metadata.json", size=len(meta), sha256=hashlib.sha256(meta).hexdigest())
    entry = CollectionEntry(database="app", name="orders", count=3, data=f, metadata=f,
                            content_sha256=hashlib.sha256(b"".join(d.raw for d in docs)).hexdigest(),
                            indexes=sorted(ix["name"] for ix in (ID, STATUS, EMAIL, TTL)))
    target = _Target(docs)
    findings = _compare(_Store({f.key: meta}), "b", entry, target)  # type: ignore[arg-type]  # a stand-in store
    assert all(x.ok for x in findings), findings
    restored = {ix["name"]: ix for ix in target.indexes}
    assert list(restored["status_1_createdAt_-1"]["key"].items()) == [("status", 1), ("createdAt", -1)]
    assert restored["email_1"]["unique"] is True and restored["seen_1"]["expireAfterSeconds"] == 3600
