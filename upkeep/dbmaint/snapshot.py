"""A database's statistics at one moment, read from the server and kept as plain data (the monitoring store
holds one per run), and back into the analysis' types."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pymongo.errors import OperationFailure

from upkeep.dbmaint.collections import CollectionStats, parse_coll_stats
from upkeep.dbmaint.indexes import IndexSnapshot, IndexUsage, parse_index_stats

NOT_SUPPORTED = (59, 115)  # CommandNotFound, CommandNotSupported


def unsupported(exc: OperationFailure) -> bool:
    """The server does not have this command (SecantusDB: compact, reIndex), which is not a failure."""
    return exc.code in NOT_SUPPORTED or "no such command" in str(exc).lower()


def take_snapshot(db: Any, now: datetime) -> dict[str, Any]:
    """dbStats, and per collection collStats and $indexStats (with listIndexes' options), as plain data."""
    collections, indexes = [], []
    for name in sorted(db.list_collection_names(filter={"type": "collection"})):
        if name.startswith("system."):
            continue
        ns = f"{db.name}.{name}"
        collections.append(asdict(parse_coll_stats(ns, db.command("collStats", name))))
        specs = {ix["name"]: dict(ix) for ix in db[name].list_indexes()}
        stats = list(db[name].aggregate([{"$indexStats": {}}]))
        for doc in stats:  # a server without `spec` in $indexStats (before 4.2.4, SecantusDB): listIndexes' options
            doc.setdefault("spec", specs.get(doc["name"], {}))
        for ix in parse_index_stats(ns, stats):
            indexes.append({**asdict(ix), "key": [list(pair) for pair in ix.key]})
    info = db.command("dbStats")
    return {"database": db.name, "taken_at": now, "collections": collections, "indexes": indexes,
            "db": {k: info.get(k) for k in ("collections", "objects", "dataSize", "storageSize", "indexes", "indexSize")}}


def _aware(value: Any) -> Any:
    return value.replace(tzinfo=UTC) if isinstance(value, datetime) and value.tzinfo is None else value


def index_snapshots(docs: Iterable[Mapping[str, Any]]) -> list[IndexSnapshot]:
    """The stored snapshots' indexes, as the analysis reads them (dates made aware: pymongo reads them naive)."""
    return [IndexSnapshot(_aware(d["taken_at"]), tuple(
        IndexUsage(**{**ix, "key": tuple(tuple(p) for p in ix["key"]), "since": _aware(ix["since"])}) for ix in d["indexes"]))
        for d in docs]


def collection_history(docs: Iterable[Mapping[str, Any]]) -> list[tuple[datetime, list[CollectionStats]]]:
    return [(d["taken_at"], [CollectionStats(**c) for c in d["collections"]]) for d in docs]
